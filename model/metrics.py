"""Classification metrics of the paper's Table 1 and beyond, in plain numpy.

Per class (one class against the rest): TP, TN, FP, FN, precision, recall
(sensitivity), specificity, F1. Overall: accuracy with a 95 % Wilson score
interval, macro F1, balanced accuracy (mean recall), and the same accuracy on
the original images only when the data records which images are originals.

The Wilson interval treats every image as an independent sample. Augmented
copies of one source, or cells of one smear, are not: when the data records
the group of each image, :func:`cluster_bootstrap` resamples whole groups and
gives the intervals to report for accuracy and macro F1.

A ratio whose denominator is zero (e.g. the precision of a class never
predicted) is ``nan`` here and ``null`` in JSON. Macro F1 and balanced accuracy
average over the classes present in the labels or the predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from augtool.errors import OptionError

#: Defaults of the cluster bootstrap: resamples, seed, confidence.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BOOTSTRAP_CONFIDENCE = 0.95
#: Draw counts held at once by :func:`cluster_bootstrap` (32 MB of float64).
_DRAWS_PER_CHUNK = 4_000_000


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


def macro_f1_of_counts(cm: np.ndarray) -> np.ndarray:
    """Macro F1 of a stack of confusion matrices, as :func:`report_from_confusion` defines it.

    Args:
        cm: ``(..., C, C)`` counts, rows true, columns predicted.

    Returns:
        ``(...)`` float64: the mean F1 over the classes present in the labels or the
        predictions of each matrix (``nan`` for a matrix with no images).
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fp = cm.sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    den = 2 * tp + fp + fn
    present = den > 0
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=present)
    count = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, f1.sum(axis=-1) / count, np.nan)


def cluster_bootstrap(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Sequence[str],
    num_classes: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = BOOTSTRAP_CONFIDENCE,
) -> dict:
    """Percentile intervals of accuracy and macro F1 from resampling whole groups.

    Each resample draws as many groups as there are, with replacement, and keeps
    all images of every drawn group (a group drawn twice counts twice). Copies of
    one source, or cells of one smear, thus move together, so the interval
    reflects how many independent groups were scored rather than how many images.
    Vectorised: one ``(G, C*C)`` table of per-group confusion counts, multinomial
    draw counts ``(resamples, G)``, one matrix product.

    Args:
        y_true: ``(N,)`` true class indices.
        y_pred: ``(N,)`` predicted class indices.
        groups: ``(N,)`` group of each image (a source path, or a ``--group-regex`` match).
        num_classes: Number of classes C.
        resamples: Bootstrap resamples (at least 100).
        seed: Seed of the resampling generator; the same seed gives the same interval.
        confidence: Two-sided level of the percentile interval, in (0, 1).

    Returns:
        ``{"groups", "resamples", "seed", "confidence", "accuracy_ci", "macro_f1_ci",
        "reason"}``: the intervals are ``[low, high]``, or ``None`` with ``reason``
        saying why when there are fewer than 2 groups (resampling one group
        always gives the same data, so no interval can be drawn from it).

    Raises:
        OptionError: On an argument out of range or of the wrong length (names it).
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer):
        raise OptionError("resamples", f"must be a whole number, got {resamples!r}")
    if resamples < 100:
        raise OptionError("resamples", f"must be at least 100, got {resamples}")
    if not 0 < confidence < 1:
        raise OptionError("confidence", f"must be in (0, 1), got {confidence}")
    if num_classes < 1:
        raise OptionError("num_classes", f"must be at least 1, got {num_classes}")
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_pred.shape != y_true.shape or y_true.ndim != 1:
        raise OptionError(
            "y_pred", f"{y_pred.shape} predictions for labels of shape {y_true.shape}"
        )
    if len(groups) != len(y_true):
        raise OptionError("groups", f"{len(groups)} group names for {len(y_true)} images")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise OptionError(name, f"class index outside [0, {num_classes})")
    names, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    g, cc = len(names), num_classes * num_classes
    result: dict = {
        "groups": g,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "accuracy_ci": None,
        "macro_f1_ci": None,
        "reason": None,
    }
    if g < 2:
        result["reason"] = f"a cluster bootstrap needs at least 2 groups, the data has {g}"
        return result
    cell = group_index * cc + y_true * num_classes + y_pred
    per_group = np.bincount(cell, minlength=g * cc).reshape(g, cc).astype(np.float64)
    rng = np.random.default_rng(seed)
    step = max(1, _DRAWS_PER_CHUNK // g)  # bounds the (step, G) table of draw counts
    cms = np.empty((resamples, num_classes, num_classes))
    for start in range(0, resamples, step):
        n = min(step, resamples - start)
        draws = rng.multinomial(g, np.full(g, 1.0 / g), size=n).astype(np.float64)
        cms[start : start + n] = (draws @ per_group).reshape(n, num_classes, num_classes)
    accuracy = np.trace(cms, axis1=1, axis2=2) / cms.sum(axis=(1, 2))
    macro_f1 = macro_f1_of_counts(cms)
    tails = [50 * (1 - confidence), 50 * (1 + confidence)]
    result["accuracy_ci"] = [float(v) for v in np.percentile(accuracy, tails)]
    result["macro_f1_ci"] = [float(v) for v in np.percentile(macro_f1, tails)]
    return result


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
    groups: Sequence[str] | None = None,
    group_unit: str = "groups",
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """Metrics of predictions, plus accuracy on the originals when transforms are known.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        class_names: Name of each class index.
        transforms: Transform name of each image (``original`` marks originals),
            or ``None`` when the data does not record them.
        groups: Group of each image (its source, or its ``--group-regex`` match),
            or ``None`` when unknown; given, the report has the cluster bootstrap.
        group_unit: What a group is, for the report (``sources``, ``groups``, ``images``).
        seed: Seed of the cluster bootstrap.

    Returns:
        :func:`report_from_confusion`'s dict (its ``accuracy_ci95`` is the Wilson
        interval, which assumes independent images) with ``originals`` added:
        ``None``, or ``{"n", "accuracy", "accuracy_ci95"}`` over the original
        images; and ``cluster_bootstrap``: ``None`` without ``groups``, else
        :func:`cluster_bootstrap`'s dict plus ``unit``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    report = report_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)), class_names)
    report["cluster_bootstrap"] = None
    if groups is not None:
        boot = cluster_bootstrap(y_true, y_pred, groups, len(class_names), seed=seed)
        report["cluster_bootstrap"] = {**boot, "unit": group_unit}
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
