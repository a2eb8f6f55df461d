"""A raw ``RAW/<class>/<image>`` folder read into memory, as ``expand`` makes its originals.

For scoring a model on images that were never expanded (``augtool evaluate
RUN RAW/``): the folder is checked by the same scan as ``expand`` (every bad
file named at once, the pixel limit, groups from ``cells.csv``), then each
image is decoded and squashed to ``size x size`` by
:func:`augtool.store.decode.load_resized`, the function ``expand`` uses for
the original copy of each source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augtool.engine.scan import scan
from augtool.progress import NoProgress, Progress
from augtool.store.dataset import RAW_FOLDER_SOURCE, Dataset
from augtool.store.decode import load_resized


def load_image_folder(path: str | Path, size: int, progress: Progress | None = None) -> Dataset:
    """Read a ``RAW/<class>/<image>`` folder preprocessed like ``expand``'s originals.

    Args:
        path: The folder, one sub-folder per class.
        size: Side of the output images (a model's input size).
        progress: Told of the ``load`` phase, one step per image; ``None``: silent.

    Returns:
        A dataset with split ``all`` and transform ``original`` for every image,
        ``attrs["source"]`` :data:`augtool.store.dataset.RAW_FOLDER_SOURCE`.

    Raises:
        InputError: On a missing folder, no class folders or unusable images.
    """
    found = scan(path)
    root = Path(path)
    images = np.empty((len(found.sources), size, size, 3), dtype=np.uint8)
    progress = progress or NoProgress()
    progress.start("load", len(found.sources))
    for i, src in enumerate(found.sources):
        images[i] = load_resized(root / src.path, size)
        progress.advance(1)
    n = len(found.sources)
    return Dataset(
        images=images,
        labels=np.array([s.label for s in found.sources], dtype=np.int64),
        splits=np.array(["all"] * n, dtype=object),
        class_names=list(found.classes),
        names=[s.path for s in found.sources],
        transforms=["original"] * n,
        groups=[s.group for s in found.sources],
        attrs={"source": RAW_FOLDER_SOURCE, "size": size},
    )
