"""Scoring trained models: on a cross-validation fold, over all folds, as an ensemble.

``augtool evaluate`` scores one model on a split. A cross-validated run
(``augtool train --fold all``) holds one model per fold, each of which may only
be scored on its own validation or test fold: every other image was in its
training set. This module finds a fold's model, refuses one trained for
another fold, averages the class probabilities of several models (an
ensemble: other seeds or settings of the same folds) and scores every fold
of a run, reporting the per-fold figures, their mean and sample standard
deviation, and the pooled predictions with a cluster bootstrap over groups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augtool.errors import InputError, OptionError, literal
from augtool.progress import Progress
from augtool.store.dataset import Dataset
from augtool.store.ledger import dataset_sha256
from model.checkpoint import Checkpoint, load_checkpoint
from model.data import DeviceImages, align_labels, load_for_evaluation
from model.folds import fold_parts, group_unit, val_fold
from model.metrics import classification_report
from model.report import mean_std, pct_cell
from model.rundir import METRICS_NAME, MODEL_NAME, fold_dir
from model.train import evaluate, resolve_device, use_amp

#: Parts of a fold that a fold's model may be scored on (the rest trained it).
FOLD_PARTS = ("val", "test")


@dataclass
class FoldModel:
    """A loaded model and what it was trained for.

    Attributes:
        path: The ``model.pt`` file.
        checkpoint: The loaded model.
        test_fold: The test fold it was trained for (``train --fold K``), or
            ``None`` when it was trained without folds.
        folds: K of the data it was trained on, or ``None``.
    """

    path: Path
    checkpoint: Checkpoint
    test_fold: int | None
    folds: int | None


def model_file(model: str | Path, fold: int | None) -> Path:
    """The ``model.pt`` that ``model`` names for ``fold``.

    Args:
        model: A ``model.pt`` file, a run folder holding one, or (with ``fold``)
            a cross-validated run folder holding ``fold-<k>/model.pt``.
        fold: The fold to score, or ``None``.

    Raises:
        InputError: If no model file is found there.
    """
    path = Path(model)
    if not path.is_dir():
        return path
    candidates = [path / MODEL_NAME]
    if fold is not None:
        candidates.insert(0, fold_dir(path, fold) / MODEL_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = " or ".join(str(c) for c in candidates)
    message = f"{literal(path)}: a folder without a model ({literal(names)} not found)"
    if fold is None and (fold_dir(path, 0) / MODEL_NAME).is_file():
        message += (
            "; it is a cross-validated run: score one fold with {fold} K, or all with {fold} all"
        )
    raise InputError(message, refs=True)


def recorded_fold(checkpoint: Checkpoint, path: Path) -> tuple[int | None, int | None]:
    """``(test_fold, folds)`` a model was trained for, or ``(None, None)``.

    Read from the checkpoint (models written since it records them) or else from
    the ``metrics.json`` beside it (a fold run folder written by ``train``).
    """
    cv = checkpoint.info.get("cv")
    if not isinstance(cv, dict):
        try:
            metrics = json.loads((path.parent / METRICS_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = {}
        cv = metrics.get("cv") if isinstance(metrics, dict) else None
    if not isinstance(cv, dict) or "test_fold" not in cv:
        return None, None
    return int(cv["test_fold"]), int(cv["folds"])


def load_fold_model(model: str | Path, fold: int | None, device: torch.device) -> FoldModel:
    """Load the model ``model`` names, checking it may be scored on ``fold``.

    Args:
        model: As :func:`model_file` takes it.
        fold: The fold its predictions will be scored on, or ``None`` (a split).
        device: Where to put the network.

    Raises:
        InputError: Unreadable model.
        OptionError: ``fold`` given and the model was trained for another fold, or
            without folds (its training images may include the fold's).
    """
    path = model_file(model, fold)
    checkpoint = load_checkpoint(path, device)
    test_fold, folds = recorded_fold(checkpoint, path)
    loaded = FoldModel(path=path, checkpoint=checkpoint, test_fold=test_fold, folds=folds)
    if fold is not None:
        check_fold(loaded, fold)
    return loaded


def check_fold(model: FoldModel, fold: int) -> None:
    """Refuse to score ``model`` on ``fold`` unless it was trained for that test fold.

    Raises:
        OptionError: The model was trained for another fold, or without folds
            (its training images may include the fold's).
    """
    path, test_fold = model.path, model.test_fold
    if test_fold is None:
        raise OptionError(
            "fold",
            f"{literal(path)} records no cross-validation fold, so its training images "
            f"may include fold {fold:d}'s; score it on a split without {{fold}}",
            refs=True,
        )
    if test_fold != fold:
        raise OptionError(
            "fold",
            f"{literal(path)} was trained for test fold {test_fold:d}, and fold {fold:d}'s "
            f"images were among its training images; score it with fold {test_fold:d}, or "
            f"give the run folder to pick fold-{fold:d}/model.pt",
            refs=True,
        )


def trained_mask(
    model: FoldModel, data: Dataset, content: str | None, data_path: str | Path
) -> np.ndarray:
    """Which images of ``data`` trained ``model``: a boolean array, one per image.

    ``content`` is :func:`augtool.store.ledger.dataset_sha256` of the data ``data``
    was taken from (``None``: not an expand output, e.g. a raw image folder).
    A model records what it trained on (``info["training"]``: the hash of its
    data and of any extra training data, and its train splits, train folds or
    every image); a model written before that record is matched by the data
    path it records, and its train images are its ``train`` (or ``all``) split
    or, for a fold model, the folds that were neither its test nor its val fold.
    """
    none = np.zeros(len(data), dtype=bool)
    info = model.checkpoint.info
    training = info.get("training")
    if isinstance(training, dict):
        if content is None:
            return none
        if training.get("extra_sha256") == content:
            return ~none
        if training.get("data_sha256") != content:
            return none
    else:
        recorded = info.get("data")
        if not isinstance(recorded, str) or not _same_file(recorded, data_path):
            return none
        if model.test_fold is not None and model.folds is not None:
            held = {model.test_fold, val_fold(model.test_fold, model.folds)}
            training = {"folds": sorted(set(range(model.folds)) - held)}
        else:
            training = {"splits": ["train", "all"]}
    if training.get("all_images"):
        return ~none
    if "folds" in training and data.folds is not None:
        return np.isin(data.folds, training["folds"])
    if "splits" in training:
        return np.isin(data.splits.astype(str), training["splits"])
    return none


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def test_images_mask(data: Dataset, fold: int | None, split: str | None) -> np.ndarray:
    """Which images of ``data`` are test images of the dataset they came from.

    A cross-validation fold's images are test images when its ``test`` part was
    scored (``fold`` given); on data with folds scored without ``fold``, every
    image is in some test fold; otherwise the images of the ``test`` split.
    """
    if fold is not None:
        return np.full(len(data), split == "test", dtype=bool)
    if data.folds is not None and data.fold_count:
        return np.ones(len(data), dtype=bool)
    return data.splits.astype(str) == "test"


def check_compatible(models: Sequence[FoldModel]) -> None:
    """Refuse an ensemble whose models disagree on classes, input size or folds.

    Raises:
        OptionError: (``ensemble``) naming the first model that differs.
    """
    first = models[0]
    for other in models[1:]:
        a, b = first.checkpoint, other.checkpoint
        if b.class_names != a.class_names:
            raise OptionError(
                "ensemble",
                f"{literal(other.path)} has classes {literal(', '.join(b.class_names))}, "
                f"{literal(first.path)} has {literal(', '.join(a.class_names))}: an ensemble "
                "needs the same classes in the same order",
                refs=True,
            )
        if b.input_size != a.input_size:
            raise OptionError(
                "ensemble",
                f"{literal(other.path)} takes {b.input_size:d} px images, "
                f"{literal(first.path)} takes {a.input_size:d} px: an ensemble needs one size",
                refs=True,
            )
        if other.folds != first.folds:
            raise OptionError(
                "ensemble",
                f"{literal(other.path)} was trained on other folds than {literal(first.path)}",
                refs=True,
            )


def fold_part(data: Dataset, fold: int, split: str) -> Dataset:
    """The ``split`` (val or test) images of cross-validation fold ``fold``.

    Raises:
        InputError: If the data has no folds.
        OptionError: (``fold``) out of range; (``split``) not val or test.
    """
    if split not in FOLD_PARTS:
        raise OptionError(
            "split",
            f"with a fold, score its val or test images, not {literal(split)} (a fold's model "
            "was trained on the rest)",
            refs=True,
        )
    return fold_parts(data, fold)[split]


def mean_probabilities(
    models: Sequence[FoldModel],
    data: Dataset,
    device: torch.device,
    batch_size: int,
    tta: bool,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of ``data`` averaged over ``models``, and the labels.

    Each model normalises the images with its own statistics; with ``tta`` each
    averages over the 8 flips and transposes first (:func:`model.train.evaluate`).

    Returns:
        ``(probabilities (N, C), labels (N,))`` in the first model's class order.
    """
    labels = align_labels(data, models[0].checkpoint.class_names)
    total: np.ndarray | None = None
    for model in models:
        ckpt = model.checkpoint
        on_device = DeviceImages(data.images, labels, ckpt.normalization, device)
        amp = use_amp(ckpt.config.get("amp"), device)
        pred = evaluate(ckpt.net, on_device, batch_size, amp=amp, tta=tta, progress=progress)
        total = pred.probabilities if total is None else total + pred.probabilities
    assert total is not None  # at least one model
    return total / len(models), labels


def evaluate_folds(
    runs: Sequence[str | Path],
    data_path: str | Path,
    split: str,
    device: str = "auto",
    batch_size: int = 256,
    tta: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score every fold of one or more cross-validated runs on its val or test images.

    Fold k's models (``RUN/fold-<k>/model.pt`` of each run, probabilities
    averaged when there are several) score fold k's ``split`` part. Each image
    is in one val part and one test part, so the pooled predictions cover the
    dataset once.

    Args:
        runs: Run folders written by ``augtool train --fold all``; more than one is
            an ensemble.
        data_path: The dataset they were trained on (made with ``expand --folds K``).
        split: ``val`` or ``test``.
        device: ``auto``, ``cuda`` or ``cpu``.
        batch_size: Images per forward pass.
        tta: Average each model over the 8 flips and transposes of each image.
        progress: Told of each ``evaluate`` phase; ``None``: silent.

    Returns:
        ``per_fold`` rows (fold, n, accuracy, macro F1, originals accuracy),
        ``mean`` and ``std`` (sample, n - 1) over the folds, ``dataset_sha256``
        (:func:`augtool.store.ledger.dataset_sha256`), and ``pooled``: the
        :func:`model.metrics.classification_report` of all predictions together,
        with the cluster bootstrap over ``data``'s groups, plus ``test_images``
        and ``training_images`` (how many of the scored images are test images,
        and trained a model that scored them: :func:`trained_mask`), and
        ``models``, every model file used.

    Raises:
        InputError: Missing models or data without folds.
        OptionError: A model trained for another fold, or models that disagree.
    """
    if not runs:
        raise OptionError("runs", "give at least one cross-validated run folder")
    dev = resolve_device(device)
    models = [load_fold_model(run, 0, dev) for run in runs]  # fold 0's also give the size
    data = load_for_evaluation(data_path, None, models[0].checkpoint.input_size)
    folds = data.fold_count
    if folds == 0:
        raise InputError(
            f"{literal(data_path)}: no cross-validation folds; make it with {{expand.folds}} K",
            refs=True,
        )
    content = dataset_sha256(data_path)
    rows = []
    y_true, y_pred, groups, transforms = [], [], [], []
    class_names: list[str] = []
    training_images = 0
    used: list[str] = []
    for fold in range(folds):
        if fold > 0:
            models = [load_fold_model(run, fold, dev) for run in runs]
        check_compatible(models)
        if models[0].folds is not None and models[0].folds != folds:
            raise OptionError(
                "fold",
                f"{literal(models[0].path)} was trained on {models[0].folds:d} folds; "
                f"the data has {folds:d}",
                refs=True,
            )
        class_names = models[0].checkpoint.class_names
        part = fold_part(data, fold, split)
        trained = np.zeros(len(part), dtype=bool)
        for model in models:
            trained |= trained_mask(model, part, content, data_path)
        training_images += int(trained.sum())
        used += [str(m.path) for m in models]
        probabilities, labels = mean_probabilities(models, part, dev, batch_size, tta, progress)
        predicted = probabilities.argmax(axis=1)
        report = classification_report(labels, predicted, class_names, part.transforms)
        rows.append(
            {
                "fold": fold,
                "scored_fold": val_fold(fold, folds) if split == "val" else fold,
                "n": report["n"],
                "accuracy": report["accuracy"],
                "macro_f1": report["macro_f1"],
                "originals_accuracy": (report["originals"] or {}).get("accuracy"),
            }
        )
        y_true.append(labels)
        y_pred.append(predicted)
        groups += list(part.groups)
        transforms += list(part.transforms)
    pooled = classification_report(
        np.concatenate(y_true),
        np.concatenate(y_pred),
        class_names,
        transforms,
        groups=groups,
        group_unit=group_unit(data),
    )
    pooled["training_images"] = training_images
    pooled["test_images"] = pooled["n"] if split == "test" else 0
    pooled["scored_folds"] = list(range(folds))
    pooled["dataset_sha256"] = content
    pooled["models"] = used
    mean, std = {}, {}
    for key in ("accuracy", "macro_f1"):
        mean[key], std[key] = mean_std([r[key] for r in rows])
    return {
        "data": str(data_path),
        "dataset_sha256": content,
        "runs": [str(r) for r in runs],
        "split": split,
        "tta": tta,
        "folds": folds,
        "per_fold": rows,
        "mean": mean,
        "std": std,
        "std_note": "sample standard deviation over the folds (n - 1)",
        "pooled": pooled,
    }


def format_folds(summary: dict[str, Any]) -> str:
    """The per-fold table of :func:`evaluate_folds` and its mean ± std, as Markdown."""
    split = summary["split"]
    lines = [
        f"| model of fold | scored: {split} fold | images | accuracy | macro F1 | originals only |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["per_fold"]:
        lines.append(
            f"| {r['fold']} | {r['scored_fold']} | {r['n']} | {pct_cell(r['accuracy'])} "
            f"| {pct_cell(r['macro_f1'])} "
            f"| {pct_cell(r['originals_accuracy'])} |"
        )
    mean, std = summary["mean"], summary["std"]
    lines.append(
        f"| **mean ± std** | | | {pct_cell(mean['accuracy'])} ± {pct_cell(std['accuracy'])} "
        f"| {pct_cell(mean['macro_f1'])} ± {pct_cell(std['macro_f1'])} | |"
    )
    return "\n".join(lines) + "\n"
