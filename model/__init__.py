"""Train and evaluate LeukemiaNet (and a stronger network) on ``augtool expand`` outputs.

Imports torch, numpy and h5py (through :mod:`augtool.store.dataset`) only, never
albumentations: training runs on GPU machines that have nothing else.

Modules:
    archs: the registry's names, options and training defaults (no torch).
    config: ``TrainConfig``, every training setting, checked without torch.
    networks: the architecture registry (``create_model``, ``list_models``).
    data: device-resident uint8 datasets, normalisation, raw-folder loading.
    train: ``train_one_epoch``, ``evaluate``, ``fit``, checkpoints.
    stream: HDF5 sets larger than the memory budget, streamed from disk.
    torch_dataset: a ``torch.utils.data.Dataset`` over an expand output.
    metrics: the paper's Table 1 metrics, Wilson interval, macro F1.
    report: Table 1 text and the confusion-matrix picture.
    run: whole runs behind ``augtool train``, ``evaluate`` and ``predict``.
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
