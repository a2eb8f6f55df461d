"""Read what ``augtool expand`` wrote, folder or HDF5, into arrays for training.

This module imports numpy, h5py and OpenCV only (never albumentations), so
training code on a GPU machine can use it. The formats are described in
``docs/dataset-format.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augtool.errors import InputError
from augtool.store.guard import check_allocation, decode_member, recorded_size, shown
from augtool.store.schema import DAMAGE, IMAGES, folds_of, incomplete, open_hdf5, read_hdf5_records
from augtool.store.schema import MANIFEST_COLUMNS as MANIFEST_COLUMNS
from augtool.store.schema import MANIFEST_NAME as MANIFEST_NAME
from augtool.store.schema import NO_FOLD as NO_FOLD
from augtool.store.schema import RECIPE_NAME as RECIPE_NAME
from augtool.store.schema import attr_value as attr_value
from augtool.store.schema import read_manifest as read_manifest
from augtool.store.schema import read_recipe as read_recipe
from augtool.store.schema import to_str as to_str

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
#: ``Dataset.attrs["source"]`` of images read from a raw ``RAW/<class>/`` folder
#: (:func:`augtool.tools.image_folder.load_image_folder`), not from an expand output.
RAW_FOLDER_SOURCE = "raw image folder"


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
        folds: ``(N,)`` int cross-validation fold of each image (``--folds``), or
            ``None`` when the dataset was made without folds.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    class_names: list[str]
    names: list[str]
    transforms: list[str]
    groups: list[str]
    attrs: dict = field(default_factory=dict)
    folds: np.ndarray | None = None

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
        return self.take(np.flatnonzero(self.splits == split))

    @property
    def fold_count(self) -> int:
        """Number of cross-validation folds K recorded by ``--folds`` (0 when none)."""
        if self.folds is None:
            return 0
        recorded = self.attrs.get("folds")
        if isinstance(recorded, int) and recorded >= 2:
            return recorded
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def in_folds(self, folds: set[int]) -> Dataset:
        """Return the images whose fold is in ``folds``.

        Raises:
            InputError: If the dataset was made without ``--folds``.
        """
        if self.folds is None:
            raise InputError(
                "this dataset has no cross-validation folds; make it with {expand.folds} K",
                refs=True,
            )
        return self.take(np.flatnonzero(np.isin(self.folds, sorted(folds))))

    def take(self, keep: np.ndarray) -> Dataset:
        """Return the images at the indices ``keep``, in that order."""
        return Dataset(
            images=self.images[keep],
            labels=self.labels[keep],
            splits=self.splits[keep],
            class_names=list(self.class_names),
            names=[self.names[i] for i in keep],
            transforms=[self.transforms[i] for i in keep],
            groups=[self.groups[i] for i in keep],
            attrs=dict(self.attrs),
            folds=None if self.folds is None else self.folds[keep],
        )


def is_hdf5_path(path: Path) -> bool:
    """True when ``path`` names an HDF5 file by its suffix."""
    return path.suffix.lower() in HDF5_SUFFIXES


def open_dataset(path: str | Path, split: str | None = None, check_hashes: bool = True) -> Dataset:
    """Read an ``augtool expand`` output (folder or HDF5) into memory.

    Args:
        path: The output folder (with ``manifest.csv``) or the HDF5 file.
        split: Load only this split (saves memory); ``None`` loads all.
        check_hashes: Compare every image with its recorded SHA-256, so a
            changed or damaged file is refused rather than trained on (about
            0.3 s per 1,700 images of 227x227).

    Returns:
        The dataset, images in plan order.

    Raises:
        InputError: If ``path`` is not an augtool output, is truncated or
            damaged, or (with ``check_hashes``) an image differs from its record.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        data = _open_folder(path, split, check_hashes)
    else:
        data = _open_hdf5(path, split, check_hashes)
    if split is not None and len(data) == 0:
        raise InputError(f"{path}: split {split!r} is empty or absent")
    return data


def decode_file(
    folder: Path, name: str, sha256: str | None = None, meta: dict | None = None
) -> np.ndarray:
    """Decode the image ``name`` of the folder output ``folder`` into an RGB array.

    Goes through :func:`augtool.store.guard.decode_member`: the path must stay inside
    the folder, the header must show the recorded size (``meta``: the
    output's ``augtool.json``) within the pixel limit before anything is
    decoded, and with ``sha256`` the bytes must have that hash.

    Raises:
        InputError: If the file cannot be read or decoded, or a check fails.
    """
    try:
        return decode_member(folder, name, sha256, recorded_size(meta or {}))
    except FileNotFoundError as err:
        raise InputError(f"{folder / shown(name)}: cannot read (no such file)") from err
    except OSError as err:
        raise InputError(f"{folder / shown(name)}: cannot read ({err.strerror})") from err


_CHANGED = (
    "{what}: the image differs from its recorded SHA-256: the output was changed or damaged "
    "after expand; run `augtool verify {where}` for the full list, or expand again"
)


def _open_folder(folder: Path, split: str | None, check_hashes: bool = True) -> Dataset:
    try:
        return _read_folder(folder, split, check_hashes)
    except (KeyError, ValueError, IndexError, TypeError) as err:
        raise InputError(
            f"{folder}: manifest.csv or augtool.json is damaged ({err.__class__.__name__}: "
            f"{err}); run `augtool verify {folder}` or expand again"
        ) from err


def _read_folder(folder: Path, split: str | None, check_hashes: bool) -> Dataset:
    rows = read_manifest(folder)
    recipe = read_recipe(folder)
    counts = recipe.get("counts")
    if isinstance(counts, dict) and sum(int(v) for v in counts.values()) != len(rows):
        raise InputError(
            f"{folder}: {MANIFEST_NAME} lists {len(rows)} images but {RECIPE_NAME} records "
            f"{sum(int(v) for v in counts.values())}; the output is truncated or damaged"
        )
    if split is not None:
        rows = [r for r in rows if r["split"] == split]
    class_names = recipe.get("class_names") or sorted({r["class"] for r in rows})
    images = None
    for i, row in enumerate(rows):
        img = decode_file(folder, row["name"], row["sha256"] if check_hashes else None, recipe)
        if images is None:
            check_allocation(len(rows) * img.nbytes, str(folder))
            images = np.empty((len(rows), *img.shape), dtype=np.uint8)
        if img.shape != images.shape[1:]:
            raise InputError(
                f"{folder / shown(row['name'])}: shape {img.shape}, expected {images.shape[1:]}"
            )
        images[i] = img
    if images is None:
        size = int(recipe.get("size", 0))
        images = np.empty((0, size, size, 3), dtype=np.uint8)
    return Dataset(
        images=images,
        labels=_labels(np.array([int(r["label"]) for r in rows]), len(class_names), folder),
        splits=np.array([r["split"] for r in rows], dtype=object),
        class_names=list(class_names),
        names=[r["name"] for r in rows],
        transforms=[r["transform"] for r in rows],
        groups=[r["group"] for r in rows],
        attrs=recipe,
        folds=_manifest_folds(rows, folder),
    )


def _manifest_folds(rows: list[dict[str, str]], folder: Path) -> np.ndarray | None:
    """The ``fold`` column as ints, or ``None`` for a manifest without folds."""
    values = [r.get("fold") or "" for r in rows]
    if not rows or all(v == "" for v in values):
        return None
    if any(v == "" for v in values):
        raise InputError(f"{folder}: {MANIFEST_NAME} gives a fold for some images only: damaged")
    folds = np.array([int(v) for v in values], dtype=np.int64)
    if folds.min() < 0:
        raise InputError(f"{folder}: {MANIFEST_NAME} has a negative fold: damaged")
    return folds


def _open_hdf5(path: Path, split: str | None, check_hashes: bool = True) -> Dataset:
    with open_hdf5(path) as fh:
        records = read_hdf5_records(fh, path)
        splits = records.splits
        keep = np.arange(records.n) if split is None else np.flatnonzero(splits == split)
        check_allocation(len(keep) * int(np.prod(records.image_shape)), str(path))
        try:
            images = np.empty((len(keep), *records.image_shape), dtype=np.uint8)
            for j, start, stop in _runs(keep):
                fh[IMAGES].read_direct(images, np.s_[start:stop], np.s_[j : j + stop - start])
        except DAMAGE as err:
            raise incomplete(path, f"images unreadable ({err})") from err
    if check_hashes:
        hashes = records.sha256[keep]
        for i, image in enumerate(images):
            if hashlib.sha256(image).hexdigest().encode("ascii") != hashes[i]:
                what = f"{path}: image {int(keep[i])}"
                raise InputError(_CHANGED.format(what=what, where=path))
    groups = records.groups
    folds = folds_of(records, path)
    return Dataset(
        images=images,
        labels=records.labels[keep],
        splits=splits[keep],
        class_names=records.class_names,
        names=[records.names[i] for i in keep],
        transforms=[records.transforms[i] for i in keep],
        groups=[groups[i] for i in keep],
        attrs=records.attrs,
        folds=None if folds is None else folds[keep],
    )


def _labels(values: np.ndarray, n_classes: int, path: Path) -> np.ndarray:
    """Labels as int64, refused when outside the class list (a damaged file)."""
    labels = values.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise InputError(
            f"{path}: labels outside 0..{n_classes - 1} (the class list has {n_classes}): "
            "the output is damaged; run `augtool verify` on it or expand again"
        )
    return labels


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
