"""Train and evaluate LeukemiaNet (and a stronger network) on ``augtool expand`` outputs.

Imports torch, numpy and h5py (through :mod:`augtool.io`) only, never
albumentations: training runs on GPU machines that have nothing else.

Modules:
    archs: the registry's names, options and training defaults (no torch).
    config: ``TrainConfig``, every training setting, checked without torch.
    networks: the architecture registry (``create_model``, ``list_models``).
    data: device-resident uint8 datasets, normalisation, raw-folder loading.
    train: ``train_one_epoch``, ``evaluate``, ``fit``.
    checkpoint: ``model.pt`` files, saved and loaded without unpickling code.
    stream: HDF5 sets larger than the memory budget, streamed from disk.
    torch_dataset: a ``torch.utils.data.Dataset`` over an expand output.
    metrics: the paper's Table 1 metrics, Wilson interval, macro F1.
    report: Table 1 text, the pictures, the cells of tables over folds.
    rundir: a run folder's file names and how they are written.
    folds: the train, val and test parts of a run: splits, folds, groups.
    run: one training run behind ``augtool train``.
    cv: every fold of a ``--folds`` dataset, and the summary over them.
    scoring: a fold's model, ensembles, and every fold of a run scored.
    evaluation: ``augtool evaluate`` and ``predict`` on one model or an ensemble.
    selection: choosing among cross-validated configurations on val folds.
"""

from typing import Any

__all__ = ["create_model", "list_models"]


def __getattr__(name: str) -> Any:
    """``model.create_model`` and ``model.list_models``, importing torch only when used.

    ``model.archs`` and ``model.config`` stay torch-free (``augtool train --help``).
    """
    if name in __all__:
        from model import networks

        return getattr(networks, name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
