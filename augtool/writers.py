"""The single writer of ``expand``: folder tree or HDF5, finished atomically.

Workers hand back encoded bytes or arrays; only this process writes. Output
goes to a temporary sibling (``.<name>.partial``) that is renamed onto the
final path after the last byte, so an interrupted or failed run never leaves
an output that looks complete.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augtool.errors import OutputError
from augtool.io import MANIFEST_COLUMNS, MANIFEST_NAME, RECIPE_NAME

#: File inside every partial output folder, so augtool only ever deletes its own.
PARTIAL_MARKER = ".augtool-partial"
SCHEMA_VERSION = 1


def partial_path(out: Path) -> Path:
    """The temporary sibling an output is written into."""
    return out.parent / f".{out.name}.partial"


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing, non-empty output unless ``overwrite``.

    Raises:
        OutputError: If ``out`` exists (non-empty) and ``overwrite`` is false,
            or its parent folder does not exist.
    """
    if out.exists() or out.is_symlink():
        empty_dir = out.is_dir() and not any(out.iterdir())
        if not empty_dir and not overwrite:
            raise OutputError(f"{out} exists and is not empty; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: no such folder; create it first")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_stale_partial(tmp: Path) -> None:
    """Delete a partial output left by an earlier run, if it is augtool's."""
    if not (tmp.exists() or tmp.is_symlink()):
        return
    if tmp.is_dir() and not (tmp / PARTIAL_MARKER).exists():
        raise OutputError(f"{tmp} exists and was not made by augtool; move it away")
    _remove(tmp)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary output onto ``out`` (replacing it)."""
    if out.is_dir() and not out.is_symlink():
        old = out.parent / f".{out.name}.old"
        _remove(old)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


class FolderWriter:
    """Writes ``OUT/<split>/<class>/<name>`` files, ``manifest.csv`` and ``augtool.json``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tmp = partial_path(out)
        self._dirs: set[Path] = set()

    def open(self) -> None:
        """Create the temporary folder (removing a stale one of ours)."""
        _remove_stale_partial(self.tmp)
        self.tmp.mkdir()
        (self.tmp / PARTIAL_MARKER).write_text("written by augtool expand; safe to delete\n")

    def write(self, index: int, name: str, payload: bytes | np.ndarray) -> None:
        """Write one output file.

        Args:
            index: Plan index (unused by folders; kept for one writer interface).
            name: Relative path inside the output.
            payload: The encoded file.
        """
        target = self.tmp / name
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        with open(target, "wb") as fh:
            fh.write(payload)  # type: ignore[arg-type]

    def finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:
        """Write the manifest and recipe, then move the folder into place."""
        with open(self.tmp / MANIFEST_NAME, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
        meta = dict(attrs)
        meta["sources"] = list(sources)
        (self.tmp / RECIPE_NAME).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (self.tmp / PARTIAL_MARKER).unlink()
        _swap_into_place(self.tmp, self.out)

    def abort(self) -> None:
        """Delete the temporary folder."""
        _remove(self.tmp)


class Hdf5Writer:
    """Writes one HDF5 file per ``docs/dataset-format.md``; images go straight to disk."""

    def __init__(self, out: Path, n: int, size: int, compression: str | None = None) -> None:
        self.out = out
        self.tmp = partial_path(out)
        self.n = n
        self.size = size
        self.compression = compression
        self._fh = None

    def open(self) -> None:
        """Create the temporary file with the image dataset allocated."""
        import h5py

        _remove_stale_partial(self.tmp)
        self._fh = h5py.File(self.tmp, "w")
        s = self.size
        self._images = self._fh.create_dataset(
            "images",
            shape=(self.n, s, s, 3),
            dtype=np.uint8,
            chunks=(1, s, s, 3),
            compression=self.compression,
        )
        self._fh.attrs["partial"] = True

    def write(self, index: int, name: str, payload: bytes | np.ndarray) -> None:
        """Write one image at its plan index."""
        self._images[index] = payload

    def finish(self, records: Sequence[dict], sources: Sequence[dict], attrs: dict) -> None:
        """Write labels, splits, tables and attributes, close and move into place."""
        import h5py

        fh = self._fh
        assert fh is not None
        text = h5py.string_dtype("utf-8")
        split_names = list(dict.fromkeys(r["split"] for r in records)) or ["all"]
        order = {"train": 0, "val": 1, "test": 2, "all": 3}
        split_names.sort(key=lambda s: order.get(s, 9))
        code = {s: i for i, s in enumerate(split_names)}
        fh["labels"] = np.array([int(r["label"]) for r in records], dtype=np.int16)
        fh["split"] = np.array([code[r["split"]] for r in records], dtype=np.uint8)
        fh["split"].attrs["names"] = np.array(split_names, dtype=object)
        src_row = {s["path"]: i for i, s in enumerate(sources)}
        fh["source_index"] = np.array([src_row[r["source"]] for r in records], dtype=np.int32)
        fh["copy"] = np.array([int(r["copy"]) for r in records], dtype=np.int16)
        fh.create_dataset("transform", data=[r["transform"] for r in records], dtype=text)
        fh.create_dataset("params", data=[r["params"] for r in records], dtype=text)
        fh.create_dataset("name", data=[r["name"] for r in records], dtype=text)
        fh["sha256"] = np.array([r["sha256"] for r in records], dtype="S64")
        grp = fh.create_group("sources")
        grp.create_dataset("path", data=[s["path"] for s in sources], dtype=text)
        grp["sha256"] = np.array([s["sha256"] for s in sources], dtype="S64")
        grp["label"] = np.array([s["label"] for s in sources], dtype=np.int16)
        grp.create_dataset("group", data=[s["group"] for s in sources], dtype=text)
        grp["split"] = np.array([code.get(s["split"], 255) for s in sources], dtype=np.uint8)
        for key, value in attrs.items():
            if isinstance(value, dict | list) and key != "class_names":
                value = json.dumps(value, ensure_ascii=False)
            elif key == "class_names":
                value = np.array(value, dtype=object)
            fh.attrs[key] = value
        del fh.attrs["partial"]
        fh.flush()
        fh.close()
        self._fh = None
        _swap_into_place(self.tmp, self.out)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        if self._fh is not None:
            try:
                self._fh.close()
            finally:
                self._fh = None
        _remove(self.tmp)
