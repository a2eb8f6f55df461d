"""Choosing among cross-validated configurations, on validation folds only.

A configuration is chosen on the mean validation figures over the folds, and
only the chosen one's test folds are scored, once (``augtool evaluate RUN DATA
--fold all --subset test``, which records the read in the dataset's ledger,
:mod:`augtool.store.ledger`). Nothing here reads or shows a test figure, even from a
``cv.json`` that an older ``train`` wrote with test columns:

* :func:`ranking` orders cross-validated runs (``RUN/cv.json`` of ``train
  --fold all``) by mean val accuracy, then mean val macro F1, and
  :func:`val_table` shows the ranking;
* :func:`ranked` orders scored candidates: folders of ``what.txt`` and either
  ``folds.json`` (``evaluate --fold all --subset val``) or ``prior.json``
  (:meth:`PriorReadings.summary`);
* :func:`prior_corrected` scores each fold's model of a run trained with extra
  images on its val fold with the label-shift correction of Saerens et al.
  (2002): class probabilities times target prior over training prior.

The scripts in ``experiments/`` (``cv_compare.py``, ``cv_rank.py``,
``cv_prior.py``) print these. Importing this module loads no torch; only
:func:`prior_corrected` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import InputError, literal
from model.report import mean_std, pct_cell
from model.rundir import CV_JSON

#: ``augtool train`` options (without their dashes) that set one configuration apart.
SETTING_OPTIONS = (
    "arch",
    "arch-option",
    "augment",
    "epochs",
    "lr",
    "batch-size",
    "optimizer",
    "schedule",
    "weight-decay",
    "momentum",
    "normalize",
    "extra-train",
)
#: A candidate's folder: its description, and its scores of one of two kinds.
WHAT, FOLDS_JSON, PRIOR_JSON = "what.txt", "folds.json", "prior.json"
#: The readings of :func:`prior_corrected`, in order.
READINGS = ("as trained", "to the set's mix", "to equal priors")
#: The reading of a ``prior.json`` that is a candidate: corrected to the set's own mix,
#: which is known without looking at val or test.
PRIOR_READING = READINGS[1]


# --- cross-validated runs --------------------------------------------------------------------


def load_cv(run: Path) -> dict[str, Any]:
    """``RUN/cv.json`` of a cross-validated run.

    Raises:
        InputError: The file is missing or is not JSON.
    """
    path = Path(run) / CV_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{literal(path)} not found: make the cross-validated run first, with "
            f"{{train.fold}} all and {literal(run)} as its run folder",
            refs=True,
        ) from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read ({err})") from err


def describe(cv: dict[str, Any]) -> str:
    """The options of the run's command line that set its configuration apart.

    E.g. ``augtool train d.h5 r --fold all --arch cellnet --epochs 30`` gives the
    ``arch`` and ``epochs`` settings, each with its value, as written there.
    """
    words = cv["command_line"].split()
    keep = []
    for i, word in enumerate(words):
        if word.startswith("--") and word[2:] in SETTING_OPTIONS and i + 1 < len(words):
            keep.append(f"{word} {words[i + 1]}")
    return " ".join(keep)


def ranking(runs: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Runs and their ``cv.json``, best first: mean val accuracy, mean val macro F1, order given.

    Raises:
        InputError: A run without a readable ``cv.json``.
    """
    loaded = [(Path(run), load_cv(Path(run))) for run in runs]
    order = sorted(
        range(len(loaded)),
        key=lambda i: (
            -loaded[i][1]["mean"]["val_accuracy"],
            -loaded[i][1]["mean"]["val_macro_f1"],
            i,
        ),
    )
    return [loaded[i] for i in order]


def val_table(ranked_runs: Sequence[tuple[Path, dict[str, Any]]]) -> str:
    """The ranking as a Markdown table of validation columns only, best first."""
    lines = [
        "| run | data | configuration | val accuracy | val macro F1 | kept epochs (folds 0-4) |",
        "|---|---|---|---|---|---|",
    ]
    for run, cv in ranked_runs:
        mean, std = cv["mean"], cv["std"]
        epochs = ", ".join(str(f["best_epoch"]) for f in cv["per_fold"])
        lines.append(
            f"| `{run.name}` | `{cv['data']}` | {describe(cv)} "
            f"| {pct_cell(mean['val_accuracy'])} ± {pct_cell(std['val_accuracy'])} "
            f"| {pct_cell(mean['val_macro_f1'])} ± {pct_cell(std['val_macro_f1'])} "
            f"| {epochs} |"
        )
    return "\n".join(lines)


# --- scored candidates -----------------------------------------------------------------------


@dataclass
class Candidate:
    """One scored candidate: mean and std over the folds, and each fold model's accuracy."""

    name: str
    what: str
    accuracy: float
    accuracy_std: float
    macro_f1: float
    macro_f1_std: float
    per_fold: list[float]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read ({err})") from err


def load_candidate(folder: Path) -> Candidate:
    """Read one candidate folder.

    Raises:
        InputError: A ``folds.json`` of another subset than val, or a folder with
            neither ``folds.json`` nor ``prior.json``.
    """
    folder = Path(folder)
    what = (folder / WHAT).read_text(encoding="utf-8").strip()
    folds_json, prior_json = folder / FOLDS_JSON, folder / PRIOR_JSON
    if folds_json.is_file():
        summary = _read_json(folds_json)
        if summary.get("split") != "val":
            raise InputError(f"{folds_json} scores {summary.get('split')!r}, not val")
        per_fold = [row["accuracy"] for row in summary["per_fold"]]
    elif prior_json.is_file():
        summary = _read_json(prior_json)[PRIOR_READING]
        per_fold = list(summary["accuracy"])
    else:
        raise InputError(f"{folder} has neither {FOLDS_JSON} nor {PRIOR_JSON}")
    mean, std = summary["mean"], summary["std"]
    return Candidate(
        name=folder.name,
        what=what,
        accuracy=mean["accuracy"],
        accuracy_std=std["accuracy"],
        macro_f1=mean["macro_f1"],
        macro_f1_std=std["macro_f1"],
        per_fold=per_fold,
    )


def ranked(root: Path) -> list[Candidate]:
    """Every candidate folder under ``root`` (one holding ``what.txt``), best first.

    Best: higher mean val accuracy, then higher mean val macro F1, then the name.

    Raises:
        InputError: A candidate that cannot be read or scores another subset than val.
    """
    found = [load_candidate(f) for f in sorted(Path(root).iterdir()) if (f / WHAT).is_file()]
    return sorted(found, key=lambda c: (-c.accuracy, -c.macro_f1, c.name))


def candidate_table(candidates: Sequence[Candidate]) -> str:
    """The candidates as a Markdown table, in the order given."""
    lines = [
        "| candidate | what | val accuracy | val macro F1 | val accuracy per fold model |",
        "|---|---|---|---|---|",
    ]
    for c in candidates:
        folds = ", ".join(f"{100 * a:.1f}" for a in c.per_fold)
        lines.append(
            f"| ({c.name}) | {c.what} | {pct_cell(c.accuracy)} ± {pct_cell(c.accuracy_std)} "
            f"| {pct_cell(c.macro_f1)} ± {pct_cell(c.macro_f1_std)} | {folds} |"
        )
    return "\n".join(lines)


# --- label-shift correction ------------------------------------------------------------------


def class_mix(labels: np.ndarray, classes: int) -> np.ndarray:
    """Fraction of each class among ``labels``."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return counts / counts.sum()


def prior_weights(
    train_labels: np.ndarray, extra_labels: np.ndarray, classes: int
) -> dict[str, np.ndarray]:
    """What each class probability is multiplied by, per reading of :data:`READINGS`.

    Args:
        train_labels: Labels of the fold's train part, without the extra images.
        extra_labels: Labels of the extra images, which trained every fold too.
        classes: Number of classes.

    Returns:
        ``as trained``: ones; ``to the set's mix``: the train part's mix over the
        mix the model trained on; ``to equal priors``: one over the latter.
    """
    trained = class_mix(np.concatenate([train_labels, extra_labels]), classes)
    return {
        READINGS[0]: np.ones(classes),
        READINGS[1]: class_mix(train_labels, classes) / trained,
        READINGS[2]: 1.0 / trained,
    }


@dataclass
class PriorReadings:
    """Val accuracy and macro F1 of each fold model, per reading of :data:`READINGS`.

    Attributes:
        folds: ``(model's test fold, scored val fold)`` per fold model.
        accuracy: Per reading, one val accuracy per fold model.
        macro_f1: Per reading, one val macro F1 per fold model.
    """

    folds: list[tuple[int, int]] = field(default_factory=list)
    accuracy: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in READINGS}
    )
    macro_f1: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in READINGS}
    )

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per reading: the per-fold figures, their mean and sample std (``prior.json``)."""
        result = {}
        for name in READINGS:
            accuracy, macro_f1 = mean_std(self.accuracy[name]), mean_std(self.macro_f1[name])
            result[name] = {
                "accuracy": list(self.accuracy[name]),
                "macro_f1": list(self.macro_f1[name]),
                "mean": {"accuracy": accuracy[0], "macro_f1": macro_f1[0]},
                "std": {"accuracy": accuracy[1], "macro_f1": macro_f1[1]},
            }
        return result


def prior_corrected(run: Path, data_path: Path, extra_path: Path) -> PriorReadings:
    """Score each fold's model of ``run`` on its val fold, as trained and prior-corrected.

    Fold k's model (``RUN/fold-<k>/model.pt``, trained with ``extra_train``)
    scores fold k's val part three ways (:func:`prior_weights`): as trained;
    corrected to the class mix of its train folds without the extra images (the
    set's own mix); and corrected to equal priors. Test folds are never read.

    Args:
        run: A run folder of ``augtool train --fold all`` with extra training data.
        data_path: The ``expand --folds`` output it was trained on.
        extra_path: The extra training data it was trained with.

    Returns:
        The readings' val figures per fold model.

    Raises:
        InputError: Unreadable data or models, or data without folds.
        OptionError: A model trained for another fold.
    """
    import torch

    from augtool.store.dataset import open_dataset
    from model.data import align_labels
    from model.folds import fold_parts, val_fold
    from model.metrics import confusion_matrix, report_from_confusion
    from model.scoring import load_fold_model, mean_probabilities

    data, extra = open_dataset(data_path), open_dataset(extra_path)
    classes = len(data.class_names)
    cpu = torch.device("cpu")
    readings = PriorReadings()
    for fold in range(data.fold_count):
        parts = fold_parts(data, fold)  # raises without folds
        model = load_fold_model(run, fold, cpu)
        probabilities, labels = mean_probabilities([model], parts["val"], cpu, 256, tta=False)
        names = model.checkpoint.class_names  # the probabilities' column order
        weights = prior_weights(
            align_labels(parts["train"], names), align_labels(extra, names), classes
        )
        for name in READINGS:
            predicted = (probabilities * weights[name]).argmax(axis=1)
            report = report_from_confusion(confusion_matrix(labels, predicted, classes), names)
            readings.accuracy[name].append(report["accuracy"])
            readings.macro_f1[name].append(report["macro_f1"])
        readings.folds.append((fold, val_fold(fold, data.fold_count)))
    if not readings.folds:
        raise InputError(
            f"{literal(data_path)}: no cross-validation folds; make it with {{expand.folds}} K",
            refs=True,
        )
    return readings
