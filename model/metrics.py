"""Classification metrics of the paper's Table 1 and beyond, in plain numpy.

Per class (one class against the rest): TP, TN, FP, FN, precision, recall
(sensitivity), specificity, F1. Overall: accuracy with a 95 % Wilson score
interval, macro F1, balanced accuracy (mean recall), and the same accuracy on
the original images only when the data records which images are originals.

A ratio whose denominator is zero (e.g. the precision of a class never
predicted) is ``nan`` here and ``null`` in JSON. Macro F1 and balanced accuracy
average over the classes present in the labels or the predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``cm[t, p]`` of images of true class ``t`` predicted as ``p``.

    Args:
        y_true: ``(N,)`` true class indices.
        y_pred: ``(N,)`` predicted class indices.
        num_classes: Number of classes C.

    Returns:
        ``(C, C)`` int64 matrix, rows = true class, columns = predicted class.

    Raises:
        ValueError: On mismatched lengths or indices outside ``[0, C)``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} labels but {y_pred.shape[0]} predictions")
    for arr in (y_true, y_pred):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"class index outside [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def one_vs_rest(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class TP, TN, FP, FN of a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return {"tp": tp, "tn": tn, "fp": fp, "fn": fn}


def ratio(num: float, den: float) -> float:
    """``num / den``, or ``nan`` when ``den`` is 0."""
    return float(num) / float(den) if den else math.nan


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: Number of successes k (e.g. correct predictions).
        n: Number of trials.
        confidence: Two-sided confidence level.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when ``n`` is 0.

    Raises:
        ValueError: If ``successes`` is outside ``[0, n]`` or ``confidence`` outside (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def report_from_confusion(cm: np.ndarray, class_names: Sequence[str]) -> dict:
    """All metrics of a confusion matrix, as plain JSON-ready types.

    Args:
        cm: ``(C, C)`` counts, rows true, columns predicted.
        class_names: C class names.

    Returns:
        A dict with ``n``, ``class_names``, ``confusion``, ``accuracy``,
        ``accuracy_ci95``, ``macro_f1``, ``balanced_accuracy`` and ``per_class``
        (a list of dicts with class, support, tp, tn, fp, fn, precision, recall,
        specificity, f1). Undefined ratios are ``None``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(class_names)} classes")
    counts = one_vs_rest(cm)
    n = int(cm.sum())
    correct = int(np.trace(cm))
    per_class, f1s, recalls = [], [], []
    for i, name in enumerate(class_names):
        tp, tn, fp, fn = (int(counts[k][i]) for k in ("tp", "tn", "fp", "fn"))
        precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
        f1 = ratio(2 * tp, 2 * tp + fp + fn)
        if tp + fn > 0:
            recalls.append(recall)
        if tp + fp + fn > 0:
            f1s.append(f1)
        per_class.append(
            {
                "class": str(name),
                "support": tp + fn,
                "tp": tp,
                "tn": tn,
                "fp": fp,
                "fn": fn,
                "precision": _json_float(precision),
                "recall": _json_float(recall),
                "specificity": _json_float(ratio(tn, tn + fp)),
                "f1": _json_float(f1),
            }
        )
    low, high = wilson_interval(correct, n)
    return {
        "n": n,
        "class_names": [str(c) for c in class_names],
        "confusion": cm.tolist(),
        "accuracy": _json_float(ratio(correct, n)),
        "accuracy_ci95": [_json_float(low), _json_float(high)],
        "macro_f1": _json_float(float(np.mean(f1s)) if f1s else math.nan),
        "balanced_accuracy": _json_float(float(np.mean(recalls)) if recalls else math.nan),
        "per_class": per_class,
    }


def classification_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    transforms: Sequence[str] | None = None,
) -> dict:
    """Metrics of predictions, plus accuracy on the originals when transforms are known.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        class_names: Name of each class index.
        transforms: Transform name of each image (``original`` marks originals),
            or ``None`` when the data does not record them.

    Returns:
        :func:`report_from_confusion`'s dict with ``originals`` added: ``None``,
        or ``{"n", "accuracy", "accuracy_ci95"}`` over the original images.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    report = report_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)), class_names)
    report["originals"] = None
    if transforms is not None:
        if len(transforms) != len(y_true):
            raise ValueError(f"{len(transforms)} transform names for {len(y_true)} images")
        mask = np.array([t == "original" for t in transforms], dtype=bool)
        k, n = int(np.sum(y_true[mask] == y_pred[mask])), int(mask.sum())
        low, high = wilson_interval(k, n)
        report["originals"] = {
            "n": n,
            "accuracy": _json_float(ratio(k, n)),
            "accuracy_ci95": [_json_float(low), _json_float(high)],
        }
    return report


def _json_float(value: float) -> float | None:
    """``None`` for nan (JSON has no NaN), else the float."""
    return None if math.isnan(value) else float(value)
