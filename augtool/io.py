"""Read what ``augtool expand`` wrote, folder or HDF5, into arrays for training.

This module imports numpy, h5py and OpenCV only (never albumentations), so
training code on a GPU machine can use it. The formats are described in
``docs/dataset-format.md``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augtool.errors import InputError

MANIFEST_NAME = "manifest.csv"
RECIPE_NAME = "augtool.json"
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
MANIFEST_COLUMNS = (
    "name",
    "split",
    "class",
    "label",
    "source",
    "source_sha256",
    "group",
    "copy",
    "transform",
    "params",
    "seed",
    "sha256",
)


@dataclass
class Dataset:
    """An expanded dataset in memory.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 RGB images.
        labels: ``(N,)`` int64 class indices into ``class_names``.
        splits: ``(N,)`` split name of each image (``train``, ``val``, ``test``, ``all``).
        class_names: Class names, index = label.
        names: Folder-output relative path of each image (its identity).
        transforms: Transform name of each image (``original`` for the originals).
        groups: Split group of each image's source.
        attrs: Recipe and provenance (seed, size, tool version, ...).
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    class_names: list[str]
    names: list[str]
    transforms: list[str]
    groups: list[str]
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def split_names(self) -> list[str]:
        """Split names present, in the order train, val, test, all."""
        order = ["train", "val", "test", "all"]
        present = set(self.splits.tolist())
        return [s for s in order if s in present] + sorted(present - set(order))

    def subset(self, split: str) -> Dataset:
        """Return the images of one split.

        Args:
            split: A split name present in the dataset.

        Raises:
            InputError: If the dataset has no such split.
        """
        if split not in self.split_names:
            raise InputError(
                f"split {split!r} not in this dataset; it has {', '.join(self.split_names)}"
            )
        keep = np.flatnonzero(self.splits == split)
        return Dataset(
            images=self.images[keep],
            labels=self.labels[keep],
            splits=self.splits[keep],
            class_names=list(self.class_names),
            names=[self.names[i] for i in keep],
            transforms=[self.transforms[i] for i in keep],
            groups=[self.groups[i] for i in keep],
            attrs=dict(self.attrs),
        )


def is_hdf5_path(path: Path) -> bool:
    """True when ``path`` names an HDF5 file by its suffix."""
    return path.suffix.lower() in HDF5_SUFFIXES


def open_dataset(path: str | Path, split: str | None = None) -> Dataset:
    """Read an ``augtool expand`` output (folder or HDF5) into memory.

    Args:
        path: The output folder (with ``manifest.csv``) or the HDF5 file.
        split: Load only this split (saves memory); ``None`` loads all.

    Returns:
        The dataset, images in plan order.

    Raises:
        InputError: If ``path`` is not an augtool output or is damaged.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    data = _open_folder(path, split) if path.is_dir() else _open_hdf5(path, split)
    if split is not None and len(data) == 0:
        raise InputError(f"{path}: split {split!r} is empty or absent")
    return data


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """Read ``manifest.csv`` of a folder output.

    Raises:
        InputError: If the manifest is missing or lacks columns.
    """
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise InputError(
            f"{folder}: no {MANIFEST_NAME}; is this an `augtool expand` output folder?"
        )
    with manifest.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{manifest}: missing columns {', '.join(missing)}")
        return list(reader)


def read_recipe(folder: Path) -> dict:
    """Read ``augtool.json`` of a folder output (empty dict when absent)."""
    recipe = folder / RECIPE_NAME
    if not recipe.is_file():
        return {}
    return json.loads(recipe.read_text(encoding="utf-8"))


def decode_file(path: Path) -> np.ndarray:
    """Decode an 8-bit image file written by augtool into an RGB array.

    Raises:
        InputError: If the file cannot be read or decoded.
    """
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from err
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open_folder(folder: Path, split: str | None) -> Dataset:
    rows = read_manifest(folder)
    recipe = read_recipe(folder)
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
    class_names = recipe.get("class_names") or sorted({r["class"] for r in rows})
    images = None
    for i, row in enumerate(rows):
        target = folder / row["name"]
        img = decode_file(target)
        if images is None:
            images = np.empty((len(rows), *img.shape), dtype=np.uint8)
        if img.shape != images.shape[1:]:
            raise InputError(f"{target}: shape {img.shape}, expected {images.shape[1:]}")
        images[i] = img
    if images is None:
        size = int(recipe.get("size", 0))
        images = np.empty((0, size, size, 3), dtype=np.uint8)
    return Dataset(
        images=images,
        labels=np.array([int(r["label"]) for r in rows], dtype=np.int64),
        splits=np.array([r["split"] for r in rows], dtype=object),
        class_names=list(class_names),
        names=[r["name"] for r in rows],
        transforms=[r["transform"] for r in rows],
        groups=[r["group"] for r in rows],
        attrs=recipe,
    )


def _open_hdf5(path: Path, split: str | None) -> Dataset:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from err
    with fh:
        try:
            split_names = [_to_str(s) for s in fh["split"].attrs["names"]]
            codes = fh["split"][()]
            splits = np.array(split_names, dtype=object)[codes]
            keep = np.arange(len(codes)) if split is None else np.flatnonzero(splits == split)
            images = np.empty((len(keep), *fh["images"].shape[1:]), dtype=np.uint8)
            for j, start, stop in _runs(keep):
                fh["images"].read_direct(images, np.s_[start:stop], np.s_[j : j + stop - start])
            src_index = fh["source_index"][()][keep]
            groups_table = [_to_str(g) for g in fh["sources/group"][()]]
            attrs = {k: _attr_value(v) for k, v in fh.attrs.items()}
            if isinstance(attrs.get("recipe"), str):
                attrs["recipe"] = json.loads(attrs["recipe"])
            return Dataset(
                images=images,
                labels=fh["labels"][()][keep].astype(np.int64),
                splits=splits[keep],
                class_names=[_to_str(c) for c in fh.attrs["class_names"]],
                names=[_to_str(n) for n in fh["name"][()][keep]],
                transforms=[_to_str(t) for t in fh["transform"][()][keep]],
                groups=[groups_table[i] for i in src_index],
                attrs=attrs,
            )
        except (KeyError, OSError, ValueError) as err:
            raise InputError(
                f"{path}: not a complete augtool HDF5 file ({err}); "
                "run `augtool verify` on it or expand again"
            ) from err


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Split sorted indices into contiguous runs (position in output, start, stop)."""
    runs: list[tuple[int, int, int]] = []
    if len(indices) == 0:
        return runs
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    pos = 0
    for chunk in np.split(indices, breaks):
        runs.append((pos, int(chunk[0]), int(chunk[-1]) + 1))
        pos += len(chunk)
    return runs


def _to_str(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _attr_value(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_attr_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
