"""Read what ``augtool expand`` wrote, folder or HDF5, into arrays for training.

This module imports numpy, h5py and OpenCV only (never albumentations), so
training code on a GPU machine can use it. The formats are described in
``docs/dataset-format.md``.
"""

from __future__ import annotations

import csv
import hashlib
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
    "fold",
)
#: Columns every manifest has; ``fold`` came later (empty when the run made no folds).
REQUIRED_COLUMNS = MANIFEST_COLUMNS[:-1]
#: Fold of an image in a dataset made without ``--folds``.
NO_FOLD = -1


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
                "this dataset has no cross-validation folds; "
                "make it with `augtool expand --folds K`"
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


#: Errors h5py and the parsers raise on damaged files; all mean "not a complete augtool output".
_DAMAGE = (KeyError, OSError, ValueError, RuntimeError, IndexError, TypeError)


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


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """Read ``manifest.csv`` of a folder output.

    Raises:
        InputError: If the manifest is missing, lacks columns, is not UTF-8
            CSV, or has a row with too few or too many fields (truncated).
    """
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        raise InputError(
            f"{folder}: no {MANIFEST_NAME}; is this an `augtool expand` output folder?"
        )
    try:
        with manifest.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{manifest}: missing columns {', '.join(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{manifest}: unreadable or damaged ({err.__class__.__name__})") from err
    for i, row in enumerate(rows):
        if None in row or None in row.values():  # DictReader's marks of a short or long row
            raise InputError(
                f"{manifest}: line {i + 2} does not have {len(reader.fieldnames or [])} fields; "
                "the manifest is truncated or damaged"
            )
    return rows


def read_recipe(folder: Path) -> dict:
    """Read ``augtool.json`` of a folder output (empty dict when absent).

    Raises:
        InputError: If the file is not valid UTF-8 JSON (truncated or damaged).
    """
    recipe = folder / RECIPE_NAME
    if not recipe.is_file():
        return {}
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{recipe}: unreadable or damaged ({err.__class__.__name__})") from err
    if not isinstance(data, dict):
        raise InputError(f"{recipe}: damaged (not a JSON object)")
    return data


def decode_file(path: Path, sha256: str | None = None) -> np.ndarray:
    """Decode an 8-bit image file written by augtool into an RGB array.

    Args:
        path: The image file.
        sha256: When given, the file's bytes must have this hash.

    Raises:
        InputError: If the file cannot be read or decoded, or its hash differs.
    """
    import cv2

    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from err
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise InputError(_CHANGED.format(what=path, where=path.parent))
    bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
        target = folder / row["name"]
        img = decode_file(target, row["sha256"] if check_hashes else None)
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
    import h5py

    try:
        fh = h5py.File(path, "r")
    except _DAMAGE as err:
        raise InputError(f"{path}: not a readable HDF5 file, truncated or damaged ({err})") from err
    with fh:
        try:
            n = fh["images"].shape[0]
            for key in ("labels", "split", "source_index", "name", "transform", "sha256"):
                if fh[key].shape != (n,):
                    raise InputError(
                        f"{path}: dataset {key!r} has shape {fh[key].shape}, expected ({n},): "
                        "the file is damaged; run `augtool verify` on it or expand again"
                    )
            split_names = [to_str(s) for s in fh["split"].attrs["names"]]
            codes = fh["split"][()]
            splits = np.array(split_names, dtype=object)[codes]
            keep = np.arange(len(codes)) if split is None else np.flatnonzero(splits == split)
            images = np.empty((len(keep), *fh["images"].shape[1:]), dtype=np.uint8)
            for j, start, stop in _runs(keep):
                fh["images"].read_direct(images, np.s_[start:stop], np.s_[j : j + stop - start])
            if check_hashes:
                hashes = fh["sha256"][()][keep]
                for i, image in enumerate(images):
                    if hashlib.sha256(image).hexdigest().encode("ascii") != hashes[i]:
                        what = f"{path}: image {int(keep[i])}"
                        raise InputError(_CHANGED.format(what=what, where=path))
            src_index = fh["source_index"][()][keep]
            groups_table = [to_str(g) for g in fh["sources/group"][()]]
            attrs = {k: attr_value(v) for k, v in fh.attrs.items()}
            if isinstance(attrs.get("recipe"), str):
                attrs["recipe"] = json.loads(attrs["recipe"])
            class_names = [to_str(c) for c in fh.attrs["class_names"]]
            return Dataset(
                images=images,
                labels=_labels(fh["labels"][()][keep], len(class_names), path),
                splits=splits[keep],
                class_names=class_names,
                names=[to_str(n) for n in fh["name"][()][keep]],
                transforms=[to_str(t) for t in fh["transform"][()][keep]],
                groups=[groups_table[i] for i in src_index],
                attrs=attrs,
                folds=read_hdf5_folds(fh, n, keep, path),
            )
        except _DAMAGE as err:
            raise InputError(
                f"{path}: not a complete augtool HDF5 file ({err}); "
                "run `augtool verify` on it or expand again"
            ) from err


def read_hdf5_folds(fh: object, n: int, keep: np.ndarray, path: Path) -> np.ndarray | None:
    """The ``fold`` dataset at ``keep``, or ``None`` for a file without folds (older, or none)."""
    if "fold" not in fh:  # type: ignore[operator]
        return None
    folds = fh["fold"]  # type: ignore[index]
    if folds.shape != (n,):
        raise InputError(f"{path}: dataset 'fold' has shape {folds.shape}, expected ({n},)")
    values = folds[()].astype(np.int64)
    if not len(values) or (values == NO_FOLD).all():
        return None
    if values.min() < 0:
        raise InputError(f"{path}: some images have no fold and others do: the file is damaged")
    return values[keep]


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


def to_str(value: object) -> str:
    """An HDF5 string value (bytes or str) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def attr_value(value: object) -> object:
    """An HDF5 attribute as plain Python (str, list, int, float)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [attr_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
