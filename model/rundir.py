"""A run folder's names and files: what ``augtool train`` writes, and where.

A run folder (``RUN/``) holds ``model.pt`` (the checkpoint,
:mod:`model.checkpoint`), ``history.csv`` (one row per epoch), ``curves.png``
(loss and accuracy per epoch) and ``metrics.json`` (the kept model's scores);
``augtool evaluate --out`` writes ``metrics.json`` and ``confusion.png``. A
cross-validated run (``--fold all``) is a folder of fold runs,
``RUNS/fold-<k>/``, with ``cv.json`` and ``cv.md`` beside them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augtool.errors import OutputError, OutputRefused, literal
from augtool.store.publish import check_apart, write_bytes

MODEL_NAME = "model.pt"
HISTORY_NAME = "history.csv"
METRICS_NAME = "metrics.json"
CONFUSION_NAME = "confusion.png"
CURVES_NAME = "curves.png"
CV_JSON = "cv.json"
CV_MARKDOWN = "cv.md"


def check_run_inputs(
    out: str | Path, data: str | Path, extra_train: str | Path | None = None
) -> None:
    """Refuse a run folder that is the data (or the extra training data), holds it, or is in it.

    Raises:
        OptionError: Naming ``out`` and the data it overlaps (torch is not needed to say so).
    """
    check_apart(out, {"data": data, "extra_train": extra_train}, scanned=("data", "extra_train"))


def check_run_dir(out: str | Path, overwrite: bool) -> Path:
    """Refuse an existing non-empty run folder unless ``overwrite``; create its parent.

    Raises:
        OutputRefused: If ``out`` is a file, or a non-empty folder without ``overwrite``.
        OutputError: If its parent cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputRefused(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputRefused(
            f"{literal(out)}: folder is not empty; choose another {{out}} or pass {{overwrite}}",
            refs=True,
        )
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{parent}: cannot create the folder to hold {out.name}") from err
    return out


def write_history(path: Path, history: Sequence[dict[str, float]]) -> None:
    """One CSV row per epoch; columns are the union of the rows' keys, in first-seen order.

    Written atomically (:func:`augtool.store.publish.write_bytes`): a reader following a
    run sees the previous history or the new one, never half a row.
    """
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in history:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    write_bytes(path, text.getvalue().encode("utf-8"))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Pretty JSON, UTF-8, strict (no NaN)."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _csv_value(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fold_dir(out: Path, fold: int) -> Path:
    """Run folder of one fold: ``RUNS/fold-<k>``."""
    return out / f"fold-{fold}"
