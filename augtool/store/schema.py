"""The output schema of ``augtool expand``, in one place (``docs/dataset-format.md``).

Column names, dtypes, required attributes and one record reader for the HDF5
form, the manifest columns and file names of the folder form. The writer
(:mod:`augtool.store.writers`) writes what this module lists; every reader
(:mod:`augtool.store.dataset`, :mod:`augtool.engine.verify`, :mod:`model.stream` and through
them the rest of ``model/``) reads through :func:`read_hdf5_records` and
:func:`read_manifest`, so a file missing a required key is refused by all of
them with the same message, naming the key.

Imports numpy only (h5py is handed in as an open file), so the GPU machine's
training code can use it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import InputError
from augtool.store.guard import (
    MAX_RECORD_BYTES,
    check_image_shape,
    check_recorded,
    check_schema_version,
    member,
    read_member,
    shown,
    whole,
)
from augtool.store.guard import SCHEMA_VERSION as SCHEMA_VERSION

# --- folder form ------------------------------------------------------------------------------

MANIFEST_NAME = "manifest.csv"
RECIPE_NAME = "augtool.json"
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

# --- HDF5 form --------------------------------------------------------------------------------

#: Fold of an image in a dataset made without ``--folds``.
NO_FOLD = -1
#: Split code of a source when the run split by image.
NO_SPLIT = 255
#: The image dataset, ``(N, S, S, 3)`` uint8.
IMAGES = "images"
#: Attribute of the ``split`` dataset listing the split names its codes index.
SPLIT_NAMES_ATTR = "names"
#: Marks a file whose run did not finish (removed when it does).
PARTIAL_ATTR = "partial"
#: Root attributes a reader needs.
REQUIRED_ATTRS = ("schema_version", "class_names")
#: Root attributes stored as JSON text (dicts and lists other than ``class_names``).
JSON_ATTRS = (
    "recipe",
    "counts",
    "fold_counts",
    "skipped",
    "duplicates",
    "versions",
    "annotations",
)
#: Segmentation runs (``expand --segmentation``): each image's instance-id map, ``(N, S, S)``
#: uint16 (0: none; ``k``: the ``k``-th entry of its row of :data:`MASK_INSTANCES`).
MASK_IDS = "mask_ids"
#: Segmentation runs with class-index maps (``png``, ``voc``): ``(N, S, S)`` uint8 or uint16;
#: the dataset attribute ``class_names`` names the values.
CLASS_MAP = "class_map"

#: dtype names of the columns: numpy dtypes, ``text`` (vlen UTF-8), ``S64`` (ASCII hex hash).
TEXT = "text"


@dataclass(frozen=True)
class Column:
    """One 1-D dataset of the HDF5 form.

    Attributes:
        key: Path in the file (``labels``, ``sources/path``).
        dtype: ``int16``, ``int32``, ``uint8``, ``S64`` or :data:`TEXT`.
        required: False for the later, optional extensions (``fold``).
    """

    key: str
    dtype: str
    required: bool = True


#: One row per image, ``(N,)``, in plan order.
IMAGE_COLUMNS = (
    Column("labels", "int16"),
    Column("split", "uint8"),
    Column("source_index", "int32"),
    Column("copy", "int16"),
    Column("transform", TEXT),
    Column("params", TEXT),
    Column("name", TEXT),
    Column("sha256", "S64"),
    Column("fold", "int16", required=False),
)
#: One row per source, ``(M,)``.
SOURCE_COLUMNS = (
    Column("sources/path", TEXT),
    Column("sources/sha256", "S64"),
    Column("sources/label", "int16"),
    Column("sources/group", TEXT),
    Column("sources/split", "uint8"),
    Column("sources/fold", "int16", required=False),
)
#: Segmentation runs with instances, one row per image: JSON ``[{"class", "box"}]`` of its ids.
MASK_COLUMNS = (Column("mask_instances", TEXT, required=False),)
COLUMNS = {c.key: c for c in (*IMAGE_COLUMNS, *SOURCE_COLUMNS, *MASK_COLUMNS)}

#: Errors h5py and the parsers raise on damaged files; all mean "not a complete augtool output".
DAMAGE = (KeyError, OSError, ValueError, RuntimeError, IndexError, TypeError, AttributeError)


def open_hdf5(path: Path) -> Any:
    """Open an HDF5 file for reading, as an :class:`InputError` when it cannot be.

    Raises:
        InputError: If h5py cannot open it (not HDF5, truncated, damaged).
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except DAMAGE as err:
        raise InputError(f"{path}: not a readable HDF5 file, truncated or damaged ({err})") from err


def incomplete(path: Path, what: str) -> InputError:
    """The one error every reader raises for an HDF5 file that breaks the schema."""
    return InputError(
        f"{path}: not a complete augtool HDF5 file: {what}; "
        "run `augtool verify` on it or expand again"
    )


def missing(path: Path, key: str) -> InputError:
    """The error for a required dataset ``key`` that is not in the file."""
    return incomplete(path, f"dataset {key!r} is missing")


def images_of(fh: Any, path: Path) -> Any:
    """The image dataset of an open file, for readers that need nothing else.

    Raises:
        InputError: If the file has none (the same message as :func:`read_hdf5_records`).
    """
    if IMAGES not in fh:
        raise missing(path, IMAGES)
    return fh[IMAGES]


def write_column(fh: Any, key: str, values: Any) -> None:
    """Write one column of :data:`COLUMNS` with its schema dtype.

    Args:
        fh: An ``h5py.File`` open for writing.
        key: A key of :data:`COLUMNS`.
        values: One value per row.
    """
    import h5py

    dtype = COLUMNS[key].dtype
    if dtype == TEXT:
        fh.create_dataset(key, data=list(values), dtype=h5py.string_dtype("utf-8"))
    else:  # assigned, as schema version 1 files always were (the same layout, byte for byte)
        fh[key] = np.asarray(values, dtype=dtype)


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


@dataclass
class Hdf5Records:
    """The records of an HDF5 output, checked against the schema; images stay in the file.

    Attributes:
        n: Number of images.
        image_shape: ``(S, S, 3)``.
        class_names: Class names, index = label.
        split_names: Names the split codes index.
        split_codes: ``(N,)`` split code of each image.
        labels: ``(N,)`` int64 labels, all in ``0..len(class_names) - 1``.
        source_index: ``(N,)`` row of each image's source in the source table.
        names: Folder-output path of each image.
        transforms: Transform name of each image.
        sha256: ``(N,)`` ``S64`` hash of each image.
        fold_values: ``(N,)`` int64 fold of each image (:data:`NO_FOLD` when
            none), or ``None`` for a file without the ``fold`` column.
        source_paths: Path of each source (``(M,)``).
        source_sha256: Hash of each source.
        source_groups: Split group of each source.
        attrs: Root attributes as plain Python, JSON ones (:data:`JSON_ATTRS`) decoded.
    """

    n: int
    image_shape: tuple[int, ...]
    class_names: list[str]
    split_names: list[str]
    split_codes: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray
    names: list[str]
    transforms: list[str]
    sha256: np.ndarray
    fold_values: np.ndarray | None
    source_paths: list[str]
    source_sha256: list[str]
    source_groups: list[str]
    attrs: dict

    @property
    def splits(self) -> np.ndarray:
        """``(N,)`` split name of each image (object array)."""
        return np.array(self.split_names, dtype=object)[self.split_codes]

    @property
    def groups(self) -> list[str]:
        """Split group of each image's source."""
        return [self.source_groups[i] for i in self.source_index]


def read_hdf5_records(fh: Any, path: Path) -> Hdf5Records:
    """Read and check the records of an open augtool HDF5 file.

    Checks that every required dataset and attribute is there, that every
    image column has one row per image and every source column one per
    source, and that split codes, labels and source rows point inside their
    tables.

    Args:
        fh: An ``h5py.File`` open for reading.
        path: The file's path, for messages.

    Returns:
        The records.

    Raises:
        InputError: The file breaks the schema (:func:`incomplete`: the
            message names the missing or wrong key) or h5py cannot read it.
    """
    try:
        return _read(fh, path)
    except InputError:
        raise
    except DAMAGE as err:
        raise incomplete(path, f"{err.__class__.__name__}: {err}") from err


def _read(fh: Any, path: Path) -> Hdf5Records:
    import h5py

    # Attributes first, the order verify always read them in and the seeded fuzzing test
    # (tests/test_robustness.py) ran on every damaged file; read after the datasets, one
    # of those files crashed h5py (a segmentation fault), which no except can catch.
    attrs = {k: attr_value(v) for k, v in fh.attrs.items()}
    for key in (IMAGES, *(c.key for c in (*IMAGE_COLUMNS, *SOURCE_COLUMNS) if c.required)):
        if key not in fh:
            raise missing(path, key)
    for key in (IMAGES, *COLUMNS):
        if key in fh and not isinstance(fh[key], h5py.Dataset):
            raise incomplete(path, f"{key!r} is not a dataset")
    for name in REQUIRED_ATTRS:
        if name not in fh.attrs:
            raise incomplete(path, f"root attribute {name!r} is missing")
    if SPLIT_NAMES_ATTR not in fh["split"].attrs:
        raise incomplete(path, f"attribute {SPLIT_NAMES_ATTR!r} of dataset 'split' is missing")
    check_schema_version(attrs["schema_version"], str(path))
    shape = tuple(int(d) for d in fh[IMAGES].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise incomplete(path, f"dataset {IMAGES!r} has shape {shape}, expected (N, S, S, 3)")
    check_image_shape(shape, str(path), attrs.get("size"))
    if fh[IMAGES].dtype != np.uint8:
        raise incomplete(path, f"dataset {IMAGES!r} holds {fh[IMAGES].dtype}, not uint8")
    n = shape[0]
    m = int(fh["sources/path"].shape[0]) if fh["sources/path"].ndim == 1 else -1
    for columns, rows, what in ((IMAGE_COLUMNS, n, "images"), (SOURCE_COLUMNS, m, "sources")):
        for column in columns:
            if column.key in fh and fh[column.key].shape != (rows,):
                raise incomplete(
                    path,
                    f"dataset {column.key!r} has shape {fh[column.key].shape}, "
                    f"expected ({rows},) like {what}",
                )
    class_names = [to_str(c) for c in np.atleast_1d(fh.attrs["class_names"])]
    split_names = [to_str(s) for s in np.atleast_1d(fh["split"].attrs[SPLIT_NAMES_ATTR])]
    codes = fh["split"][()]
    if n and int(codes.max()) >= len(split_names):
        raise incomplete(path, f"dataset 'split' has codes outside 0..{len(split_names) - 1}")
    labels = fh["labels"][()].astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise incomplete(
            path,
            f"dataset 'labels' has labels outside 0..{len(class_names) - 1} "
            f"(the class list has {len(class_names)})",
        )
    source_index = fh["source_index"][()].astype(np.int64)
    if n and (source_index.min() < 0 or source_index.max() >= m):
        raise incomplete(path, f"dataset 'source_index' has rows outside 0..{m - 1}")
    for key in JSON_ATTRS:
        if isinstance(attrs.get(key), str):
            attrs[key] = json.loads(attrs[key])
    check_recorded(attrs, str(path))
    return Hdf5Records(
        n=n,
        image_shape=shape[1:],
        class_names=class_names,
        split_names=split_names,
        split_codes=codes,
        labels=labels,
        source_index=source_index,
        names=[to_str(v) for v in fh["name"][()]],
        transforms=[to_str(t) for t in fh["transform"][()]],
        sha256=fh["sha256"][()],
        fold_values=fh["fold"][()].astype(np.int64) if "fold" in fh else None,
        source_paths=[to_str(p) for p in fh["sources/path"][()]],
        source_sha256=[to_str(h) for h in fh["sources/sha256"][()]],
        source_groups=[to_str(g) for g in fh["sources/group"][()]],
        attrs=attrs,
    )


def folds_of(records: Hdf5Records, path: Path) -> np.ndarray | None:
    """The fold of each image, or ``None`` for a file made without ``--folds``.

    Raises:
        InputError: If some images have a fold and others do not.
    """
    values = records.fold_values
    if values is None or not len(values) or (values == NO_FOLD).all():
        return None
    if values.min() < 0:
        raise incomplete(path, "some images have no fold and others do")
    return values


# --- folder form: manifest and recipe -----------------------------------------------------------


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """Read ``manifest.csv`` of a folder output.

    Raises:
        InputError: If the manifest is missing, lacks columns, is not UTF-8
            CSV, or has a row with too few or too many fields (truncated).
    """
    manifest = folder / MANIFEST_NAME
    try:
        manifest = member(folder, MANIFEST_NAME)
    except FileNotFoundError:
        raise InputError(
            f"{folder}: no {MANIFEST_NAME}; is this an `augtool expand` output folder?"
        ) from None
    try:
        with manifest.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise InputError(f"{manifest}: missing columns {', '.join(missing)}")
            unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
            if unknown or len(set(columns)) != len(columns):
                named = ", ".join(shown(repr(c)) for c in unknown) or "a column twice"
                raise InputError(
                    f"{manifest}: unknown columns {named}; written by another augtool, "
                    "or changed by hand"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{manifest}: unreadable or damaged ({err.__class__.__name__})") from err
    for i, row in enumerate(rows):
        if None in row or None in row.values():  # DictReader's marks of a short or long row
            raise InputError(
                f"{manifest}: line {i + 2} does not have {len(columns)} fields; "
                "the manifest is truncated or damaged"
            )
        _check_row(row, f"{manifest}: line {i + 2}")
    return rows


#: Bounds of the manifest's whole-number columns.
_ROW_NUMBERS = {"label": (0, 2**15 - 1), "copy": (0, 2**31 - 1), "seed": (0, 2**63 - 1)}


def _check_row(row: dict[str, str], where: str) -> None:
    """One manifest row: numbers are whole and in range, hashes are hashes, no NUL anywhere.

    Raises:
        InputError: Naming the line and the column.
    """
    for column, value in row.items():
        if "\x00" in value:
            raise InputError(f"{where}: a NUL character in {column}")
    for column, (low, high) in _ROW_NUMBERS.items():
        whole(row[column], low, high, f"{where}: {column}")
    if row.get("fold"):
        whole(row["fold"], 0, 2**15 - 1, f"{where}: fold")
    for column in ("sha256", "source_sha256"):
        value = row[column]
        if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
            raise InputError(f"{where}: {column} {shown(repr(value[:80]))} is not a SHA-256")


def read_recipe(folder: Path) -> dict:
    """Read ``augtool.json`` of a folder output (empty dict when absent).

    Raises:
        InputError: If the file is not valid UTF-8 JSON (truncated or damaged).
    """
    recipe = folder / RECIPE_NAME
    if not recipe.is_file() and not recipe.is_symlink():
        return {}
    try:
        data = json.loads(read_member(folder, RECIPE_NAME, MAX_RECORD_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # JSON and UTF-8 errors are ValueErrors
        raise InputError(f"{recipe}: unreadable or damaged ({err.__class__.__name__})") from err
    if not isinstance(data, dict):
        raise InputError(f"{recipe}: damaged (not a JSON object)")
    check_recorded(data, str(recipe))
    return data
