"""Train and evaluate LeukemiaNet (and a stronger network) on ``augtool expand`` outputs.

Imports torch, numpy and h5py (through :mod:`augtool.store.dataset`) only, never
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

import importlib
from typing import Any

#: The public names, and the module each lives in (imported on first use).
_HOME = {
    "create_model": "model.networks",
    "list_models": "model.networks",
    "TrainConfig": "model.config",
    "train_run": "model.run",
    "cv_run": "model.cv",
    "evaluate_run": "model.evaluation",
    "predict_files": "model.evaluation",
    "evaluate_folds": "model.scoring",
}
__all__ = list(_HOME)


def __getattr__(name: str) -> Any:
    """A public name of :data:`_HOME`, importing its module (and torch) only when used.

    ``import model`` loads nothing; ``model.archs`` and ``model.config`` stay
    torch-free (``augtool train --help``).
    """
    if name not in _HOME:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    """The public names (:data:`__all__`)."""
    return sorted(__all__)
