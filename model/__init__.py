"""Train and evaluate LeukemiaNet (and a stronger network) on ``augtool expand`` outputs.

Imports torch, numpy and h5py (through :mod:`augtool.io`) only, never
albumentations: training runs on GPU machines that have nothing else.

Modules:
    networks: the architecture registry (``create_model``, ``list_models``).
    data: device-resident uint8 datasets, normalisation, raw-folder loading.
    train: ``train_one_epoch``, ``evaluate``, ``fit``, checkpoints.
    stream: HDF5 sets larger than the memory budget, streamed from disk.
    torch_dataset: a ``torch.utils.data.Dataset`` over an expand output.
    metrics: the paper's Table 1 metrics, Wilson interval, macro F1.
    report: Table 1 text and the confusion-matrix picture.
    run: whole runs behind ``augtool train``, ``evaluate`` and ``predict``.
"""

from model.networks import create_model, list_models

__all__ = ["create_model", "list_models"]
