"""K-fold cross-validation: one training run per fold and a summary over the folds.

``cv_run`` trains fold k of a dataset made with ``augtool expand --folds K`` for
every k (:func:`model.run.train_run` with ``fold=k``: test fold k, val fold
k+1, train on the rest) into ``RUNS/fold-<k>/``, then writes ``RUNS/cv.json``
and ``RUNS/cv.md``: the per-fold table and the mean and standard deviation over
the folds of val accuracy and macro F1.

Val figures are what configurations are compared on. Training never scores a
test fold: the chosen configuration's test folds are scored once, on purpose,
by ``augtool evaluate RUNS DATA --fold all --subset test``, which records the
read in the dataset's ledger (:mod:`augtool.store.ledger`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import InputError, OutputError, literal
from augtool.store.dataset import open_dataset
from model.metrics import report_from_confusion
from model.report import mean_std, pct_cell
from model.run import train_run
from model.rundir import (
    CV_JSON,
    CV_MARKDOWN,
    METRICS_NAME,
    check_run_dir,
    check_run_inputs,
    fold_dir,
    write_json,
)
from model.train import TrainConfig, TrainEvent

#: Figures summarised over the folds: (part, metric). Validation only: training
#: never scores a test fold.
SUMMARY_KEYS = (
    ("val", "accuracy"),
    ("val", "macro_f1"),
)


@dataclass
class CvResult:
    """Outcome of :func:`cv_run`.

    Attributes:
        out: The runs folder.
        summary: What was written to ``cv.json``.
        reused: Folds whose finished run was found and not trained again (``resume``).
    """

    out: Path
    summary: dict[str, Any]
    reused: list[int]


def cv_run(
    data_path: str | Path,
    out: str | Path,
    config: TrainConfig,
    device: str = "auto",
    overwrite: bool = False,
    resume: bool = False,
    progress: Callable[[int, TrainEvent], None] | None = None,
    command_line: str = "",
    started: float | None = None,
    extra_train: str | Path | None = None,
) -> CvResult:
    """Train every fold of a ``--folds`` dataset and summarise.

    Args:
        data_path: HDF5 file or folder written by ``augtool expand --folds K``.
        out: The runs folder (``fold-<k>/`` per fold, ``cv.json``, ``cv.md``).
        config: Validated training settings, the same for every fold.
        device: ``auto``, ``cuda`` or ``cpu``.
        overwrite: Replace an existing non-empty runs folder.
        resume: Keep folds already finished in ``out`` with the same settings and
            data, and train only the others.
        progress: Called with (fold, :class:`model.train.TrainEvent`) for every
            event of every fold's :func:`model.run.train_run`.
        command_line: Recorded in each fold's ``metrics.json`` and in ``cv.json``.
        started: ``time.perf_counter()`` when the command began (the events'
            elapsed times count from it); ``None``: now.
        extra_train: Another expand output added to every fold's train part only
            (:func:`model.run.with_extra_train`).

    Returns:
        The summary and which folds were reused.

    Raises:
        InputError: Unreadable data, or data without folds.
        OptionError: Invalid settings, device, or fewer than 3 folds.
        OutputError: The runs folder cannot be written, or holds runs made
            with other settings (with ``resume``).
    """
    out = Path(out)
    check_run_inputs(out, data_path, extra_train)
    if not resume:
        check_run_dir(out, overwrite)
    folds = open_dataset(data_path, check_hashes=False).fold_count
    if folds == 0:
        raise InputError(
            f"{literal(data_path)}: no cross-validation folds; make it with {{expand.folds}} K",
            refs=True,
        )
    config.validate()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create ({err.strerror})") from err
    runs, reused = [], []
    for k in range(folds):
        run_dir = fold_dir(out, k)
        previous = _finished(run_dir, config, data_path, extra_train) if resume else None
        if previous is not None:
            runs.append(previous)
            reused.append(k)
            continue

        def report(event: TrainEvent, k: int = k) -> None:
            if progress is not None:
                progress(k, event)

        result = train_run(
            data_path,
            run_dir,
            config,
            device,
            overwrite=overwrite or resume,
            progress=report,
            command_line=command_line,
            fold=k,
            started=started,
            extra_train=extra_train,
        )
        runs.append(result.metrics)
    summary = summarize(runs, config, str(data_path), command_line)
    write_json(out / CV_JSON, summary)
    (out / CV_MARKDOWN).write_text(format_markdown(summary), encoding="utf-8")
    return CvResult(out=out, summary=summary, reused=reused)


def _finished(
    run_dir: Path, config: TrainConfig, data_path: str | Path, extra_train: str | Path | None
) -> dict | None:
    """The metrics of a finished fold run made with ``config`` on ``data_path``, or ``None``.

    Raises:
        OutputError: If a finished run there was made with other settings or data.
    """
    path = run_dir / METRICS_NAME
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # damaged: train the fold again
    same = (
        metrics.get("config") == json.loads(json.dumps(config.to_dict()))
        and metrics.get("data") == str(data_path)
        and metrics.get("extra_train") == (None if extra_train is None else str(extra_train))
    )
    if not same:
        raise OutputError(
            f"{literal(run_dir)}: a run with other settings or data; "
            "use another {out} or {overwrite}",
            refs=True,
        )
    return metrics


def summarize(
    runs: list[dict[str, Any]], config: TrainConfig, data: str, command_line: str = ""
) -> dict[str, Any]:
    """The cross-validation summary of per-fold ``metrics.json`` dicts.

    Args:
        runs: One metrics dict per fold, in fold order.
        config: The training settings.
        data: The dataset path.
        command_line: How the runs were made.

    Returns:
        ``folds`` (K), ``per_fold`` rows, ``mean`` and ``std`` of each of
        :data:`SUMMARY_KEYS` (as ``"<part>_<metric>"``), and ``pooled_val``:
        the metrics of all val predictions together (every image once).
    """
    rows = []
    for m in runs:
        cv = m["cv"]
        rows.append(
            {
                "fold": cv["test_fold"],
                "val_fold": cv["val_fold"],
                "train_images": m["splits"]["train"],
                "val_images": m["splits"]["val"],
                "test_images": m["splits"]["test"],
                "best_epoch": m["best_epoch"],
                "epochs_run": m["epochs_run"],
                "train_seconds": m["train_seconds"],
                **{f"{part}_{key}": m[part][key] for part, key in SUMMARY_KEYS},
                "val_originals_accuracy": (m["val"].get("originals") or {}).get("accuracy"),
            }
        )
    mean, std = {}, {}
    for part, key in SUMMARY_KEYS:
        name = f"{part}_{key}"
        values = [r[name] for r in rows if r[name] is not None]
        mean[name], std[name] = mean_std(values) if values else (math.nan, math.nan)
    class_names = runs[0]["val"]["class_names"]
    confusion = sum(np.asarray(m["val"]["confusion"], dtype=np.int64) for m in runs)
    pooled = report_from_confusion(confusion, class_names)
    return {
        "data": data,
        "command_line": command_line,
        "arch": config.arch,
        "config": config.to_dict(),
        "folds": len(rows),
        "protocol": (
            "fold k: test fold k, kept epoch best on val fold k+1 (mod K), trained on "
            "the other K-2 folds; training scores no test fold"
        ),
        "per_fold": rows,
        "mean": mean,
        "std": std,
        "std_note": "sample standard deviation over the folds (n - 1)",
        "pooled_val": {
            "n": pooled["n"],
            "accuracy": pooled["accuracy"],
            "macro_f1": pooled["macro_f1"],
            "confusion": pooled["confusion"],
            "class_names": pooled["class_names"],
        },
    }


def format_markdown(summary: dict[str, Any]) -> str:
    """``cv.md``: the per-fold table and mean +- std of each validation figure."""
    lines = [
        f"# Cross-validation: {summary['arch']}, {summary['folds']} folds",
        "",
        f"Data: `{summary['data']}`",
        "",
        f"Protocol: {summary['protocol']}.",
        "",
        "| test fold | val fold | train / val / test images | kept epoch | val accuracy "
        "| val macro F1 | val originals only |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["per_fold"]:
        lines.append(
            f"| {r['fold']} | {r['val_fold']} | {r['train_images']} / {r['val_images']} / "
            f"{r['test_images']} | {r['best_epoch']} of {r['epochs_run']} "
            f"| {pct_cell(r['val_accuracy'])} | {pct_cell(r['val_macro_f1'])} "
            f"| {pct_cell(r['val_originals_accuracy'])} |"
        )
    mean, std = summary["mean"], summary["std"]
    cells = " | ".join(
        f"{pct_cell(mean[f'{p}_{k}'])} ± {pct_cell(std[f'{p}_{k}'])}" for p, k in SUMMARY_KEYS
    )
    lines.append(f"| **mean ± std** | | | | {cells} | |")
    pooled = summary["pooled_val"]
    lines += [
        "",
        f"Standard deviation: {summary['std_note']}. Pooled over the folds (each image "
        f"a val image once, n = {pooled['n']}): val accuracy {pct_cell(pooled['accuracy'])}, "
        f"macro F1 {pct_cell(pooled['macro_f1'])}. The folds hold whole groups, but the images "
        "of one source or smear are not independent samples. Val chose each fold's kept "
        "epoch, so these figures are optimistic; the test folds are scored on their own.",
        "",
    ]
    return "\n".join(lines)
