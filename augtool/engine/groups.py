"""Groups of sources that must stay together: a smear, a patient, a cut-out cell's smear.

A source's group comes from ``group_regex`` (the part of its path the
expression matches), from a ``cells.csv`` that ``augtool cells`` wrote, or is
its own; identical files are one group whatever their paths
(:func:`augtool.engine.split.merge_groups`), so no split or fold puts the same pixels
on both sides.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from augtool.errors import InputError, OptionError, literal
from augtool.store.guard import display_path

if TYPE_CHECKING:
    from augtool.engine.scan import Source


def compile_group_regex(pattern: str | None) -> re.Pattern[str] | None:
    """Compile ``--group-regex``.

    Raises:
        OptionError: If the pattern is not a valid regular expression.
    """
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise OptionError("group_regex", f"invalid regular expression: {err}") from err


def check_group_regex(pattern: str, regex: re.Pattern[str], paths: Sequence[str]) -> None:
    """Refuse a ``--group-regex`` that matches none of the source paths.

    Such a regex would leave every source in its own group, silently: the
    patient- or smear-level leak the option exists to prevent.

    Args:
        pattern: The regex as given (for the message).
        regex: The compiled regex.
        paths: Source paths relative to RAW, as the regex sees them.

    Raises:
        OptionError: If ``paths`` is not empty and no path has a match.
    """
    if paths and not any(regex.search(p) for p in paths):
        raise OptionError(
            "group_regex",
            f"'{pattern}' matches none of the {len(paths)} source paths (e.g. "
            f"{display_path(paths[0])!r}); every source would be its own group and cells "
            "of one patient or smear could land in train and test. The regex is searched "
            "in the path relative to RAW (class folder included); fix it or leave it out",
        )


def group_of(relpath: str, regex: re.Pattern[str] | None) -> str:
    """The split group of a source: the regex's first group or match, else the path."""
    if regex is None:
        return relpath
    match = regex.search(relpath)
    if match is None:
        return relpath
    return match.group(1) if regex.groups else match.group(0)


#: The record ``augtool cells`` writes beside its class folders (see augtool/tools/cells.py).
CELLS_CSV = "cells.csv"


def read_cell_groups(root: Path) -> dict[str, str] | None:
    """The smear of every cell of an ``augtool cells`` output, from ``RAW/cells.csv``.

    Args:
        root: The RAW folder.

    Returns:
        ``{path relative to RAW: smear}``, or None when RAW has no ``cells.csv``.

    Raises:
        InputError: If ``cells.csv`` cannot be read or lacks its ``file`` and
            ``smear`` columns.
    """
    path = root / CELLS_CSV
    if not path.is_file():
        return None
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(
            f"{literal(path)}: cannot read the cells record ({literal(err)}); pass "
            "{group_regex} to group without it, or remove it",
            refs=True,
        ) from err
    if rows and not {"file", "smear"} <= set(rows[0]):
        raise InputError(
            f"{literal(path)}: no 'file' and 'smear' columns; it is not an augtool cells "
            "record (pass {group_regex} to group without it, or remove it)",
            refs=True,
        )
    return {row["file"]: row["smear"] for row in rows if row.get("file") and row.get("smear")}


def find_duplicates(sources: Iterable[Source]) -> list[list[str]]:
    """Groups of source paths whose bytes are identical (same SHA-256)."""
    by_hash: dict[str, list[str]] = defaultdict(list)
    for src in sources:
        by_hash[src.sha256].append(src.path)
    return [paths for paths in by_hash.values() if len(paths) > 1]
