"""A :class:`torch.utils.data.Dataset` over an ``augtool expand`` output, for your own loop.

``augtool train`` does not need it (it keeps the set on the device, or streams
it, see :mod:`model.data` and :mod:`model.stream`). It is for users who train
with their own code and a :class:`torch.utils.data.DataLoader`: one item is one
image, read when asked for, so the set never has to fit in memory.

* HDF5 output: the metadata is read once; each item reads one image from the
  file, through a handle each worker process opens for itself (h5py handles
  must not cross a fork).
* Folder output: the manifest is read once; each item decodes one image file
  (checked against its SHA-256 unless ``check_hashes=False``).

Select the images with ``split`` (``train``, ``val``, ``test``, ``all``) and/or
``rows`` (positions in the whole output, e.g. one fold of a cross-validation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augtool.errors import InputError
from augtool.store.dataset import decode_file
from augtool.store.schema import IMAGES, read_manifest, read_recipe
from model.stream import open_h5, open_lazy


class AugtoolImages(torch.utils.data.Dataset):
    """Images of an expand output as ``(image, label)`` items.

    Args:
        path: The HDF5 file or the output folder (with ``manifest.csv``).
        split: Keep only this split; ``None`` keeps every image.
        rows: Keep only these positions of the output (after ``split``, when
            both are given, the positions are still those of the whole output).
        transform: Called on each image, a ``(3, S, S)`` uint8 tensor; its
            result is the item's image. ``None`` returns the uint8 tensor.
        check_hashes: Folder output only: compare each decoded file with its
            recorded SHA-256.

    Attributes:
        class_names: Class names, index = label.
        labels: ``(N,)`` int64 labels of the kept images.
        names: Output name of each kept image.
        transforms: Transform name of each kept image.
        groups: Split group of each kept image's source (smear, patient).
        rows: Position in the output of each kept image.

    Raises:
        InputError: Unreadable output, an unknown split, or rows out of range.
    """

    def __init__(
        self,
        path: str | Path,
        split: str | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
        check_hashes: bool = True,
    ) -> None:
        self.path = Path(path)
        self.transform = transform
        self.check_hashes = check_hashes
        if self.path.is_dir():
            manifest = read_manifest(self.path)
            recipe = read_recipe(self.path)
            self.class_names = list(
                recipe.get("class_names") or sorted({r["class"] for r in manifest})
            )
            splits = np.array([r["split"] for r in manifest], dtype=object)
            labels = np.array([int(r["label"]) for r in manifest], dtype=np.int64)
            names = [r["name"] for r in manifest]
            transforms = [r["transform"] for r in manifest]
            groups = [r["group"] for r in manifest]
            self._sha = [r["sha256"] for r in manifest]
            self._meta = recipe
        else:
            data = open_lazy(self.path)
            self.class_names = list(data.class_names)
            splits, labels = data.splits, data.labels
            names, transforms, groups = data.names, data.transforms, data.groups
            self._sha = []
            self._meta = {}
        keep = np.arange(len(labels))
        if split is not None:
            if split not in set(splits.tolist()):
                present = ", ".join(sorted(set(splits.tolist())))
                raise InputError(f"{self.path}: no split {split!r} (it has {present})")
            keep = np.flatnonzero(splits == split)
        if rows is not None:
            wanted = np.asarray(rows, dtype=np.int64)
            if wanted.size and (wanted.min() < 0 or wanted.max() >= len(labels)):
                raise InputError(f"{self.path}: rows outside 0..{len(labels) - 1}")
            keep = wanted[np.isin(wanted, keep)]
        self.rows = keep
        self.labels = labels[keep]
        self.names = [names[i] for i in keep]
        self.transforms = [transforms[i] for i in keep]
        self.groups = [groups[i] for i in keep]
        self._handle: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {len(self.rows)} images")
        row = int(self.rows[index])
        if self.path.is_dir():
            sha = self._sha[row] if self.check_hashes else None
            image = decode_file(self.path, self.names[index], sha, self._meta)
        else:
            image = self._file()[IMAGES][row]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        item = self.transform(tensor) if self.transform is not None else tensor
        return item, int(self.labels[index])

    def _file(self) -> Any:
        """This process's HDF5 handle (opened again after a fork into a worker)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = open_h5(self.path)
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, -1  # a worker opens its own
        return state
