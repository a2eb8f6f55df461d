"""Present a metrics report: the paper's Table 1 as text, and a confusion-matrix picture.

Also the figures of the tables over cross-validation folds (:func:`mean_std`,
:func:`pct_cell`) and of a training bar. The pictures are drawn with numpy and
OpenCV (imported only when drawing), so no plotting library is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from augtool.drawing import ascii_label
from augtool.errors import OutputError
from augtool.store.publish import write_bytes

_ROWS = (
    ("True positive (TP)", "tp", "count"),
    ("True negative (TN)", "tn", "count"),
    ("False positive (FP)", "fp", "count"),
    ("False negative (FN)", "fn", "count"),
    ("Precision", "precision", "pct"),
    ("Recall (sensitivity)", "recall", "pct"),
    ("Specificity", "specificity", "pct"),
    ("F1", "f1", "pct"),
)


def pct(value: float | None, digits: int = 1) -> str:
    """``0.952 -> '95.2%'``; ``None`` (undefined) -> ``'n/a'``."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), std


def pct_cell(value: float | None) -> str:
    """A fraction as a table cell: ``0.952 -> '95.2 %'``; undefined -> ``'n/a'``."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def clock_text(seconds: float) -> str:
    """Elapsed time as ``m:ss`` or ``h:mm:ss`` (``95.4 -> '1:35'``)."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(
    train: tuple[float, float] | None, val: tuple[int, float, float] | None, elapsed: float
) -> str:
    """The figures a training bar shows after its counts; train and val only, never test.

    Args:
        train: Mean train (loss, accuracy) of the current epoch so far, or ``None``.
        val: (epoch, val loss, val accuracy) of the last epoch scored on val, or ``None``.
        elapsed: Seconds since the command started.

    Returns:
        E.g. ``loss 0.512 acc 80.1% | val (epoch 2) loss 0.498 acc 79.0% | 1:35 elapsed``.
    """
    parts = []
    if train is not None:
        parts.append(f"loss {train[0]:.3f} acc {pct(train[1])}")
    if val is not None:
        parts.append(f"val (epoch {val[0]}) loss {val[1]:.3f} acc {pct(val[2])}")
    parts.append(f"{clock_text(elapsed)} elapsed")
    return " | ".join(parts)


def format_table(report: dict, title: str | None = None) -> str:
    """The paper's Table 1 layout: metric rows, one column per class, then the totals.

    Args:
        report: A dict from :func:`model.metrics.classification_report`.
        title: Optional first line.

    Returns:
        Multi-line text, no trailing newline.
    """
    names = [c["class"] for c in report["per_class"]]
    label_w = max(len(r[0]) for r in _ROWS) + 2
    col_w = max(8, *(len(n) + 2 for n in names))
    lines = [title] if title else []
    lines.append(" " * label_w + "".join(n.rjust(col_w) for n in names))
    for label, key, kind in _ROWS:
        cells = [str(c[key]) if kind == "count" else pct(c[key]) for c in report["per_class"]]
        lines.append(label.ljust(label_w) + "".join(v.rjust(col_w) for v in cells))
    correct = int(np.trace(np.asarray(report["confusion"])))
    low, high = report["accuracy_ci95"]
    boot = report.get("cluster_bootstrap")
    wilson = f"95% Wilson CI {pct(low)} - {pct(high)}, assumes independent images"
    accuracy = f"{pct(report['accuracy'])} ({correct}/{report['n']})"
    macro_f1 = pct(report["macro_f1"])
    if boot is None:
        lines.append("Accuracy".ljust(label_w) + f"{accuracy}; {wilson}")
    elif boot["accuracy_ci"] is None:
        lines.append(
            "Accuracy".ljust(label_w) + f"{accuracy}; no cluster interval: {boot['reason']}"
        )
        lines.append(" " * label_w + wilson)
    else:
        lines.append("Accuracy".ljust(label_w) + f"{accuracy}; {_cluster_ci(boot, 'accuracy_ci')}")
        lines.append(" " * label_w + wilson)
        macro_f1 += f"; {_cluster_ci(boot, 'macro_f1_ci')}"
    lines.append("Macro F1".ljust(label_w) + macro_f1)
    lines.append("Balanced accuracy".ljust(label_w) + pct(report["balanced_accuracy"]))
    originals = report.get("originals")
    if originals is not None:
        o_low, o_high = originals["accuracy_ci95"]
        lines.append(
            "Originals only".ljust(label_w)
            + f"{pct(originals['accuracy'])} (n={originals['n']}; "
            + f"95% Wilson CI {pct(o_low)} - {pct(o_high)}, assumes independent images)"
        )
    return "\n".join(lines)


def _cluster_ci(boot: dict, key: str) -> str:
    """``95% CI 80.1% - 91.2%, cluster bootstrap over 43 sources``."""
    low, high = boot[key]
    level = f"{100 * boot['confidence']:g}%"
    return (
        f"{level} CI {pct(low)} - {pct(high)}, cluster bootstrap over "
        f"{boot['groups']} {boot['unit']}"
    )


def confusion_image(report: dict, cell: int = 96) -> np.ndarray:
    """Draw the confusion matrix: counts and row percentages, shaded by row fraction.

    Args:
        report: A metrics report (needs ``confusion``, ``class_names``, ``accuracy``).
        cell: Side of one matrix cell in pixels.

    Returns:
        ``(H, W, 3)`` uint8 BGR image (OpenCV's order, ready to encode).
    """
    import cv2

    cm = np.asarray(report["confusion"], dtype=np.int64)
    names = [ascii_label(str(n)) for n in report["class_names"]]
    k = len(names)
    font = cv2.FONT_HERSHEY_SIMPLEX
    label_w = max(cv2.getTextSize(n, font, 0.5, 1)[0][0] for n in names) + 40
    top, left = 70, label_w + 30
    width, height = left + k * cell + 20, top + k * cell + 70
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    light, dark = np.array([250, 244, 238.0]), np.array([140, 60, 20.0])  # BGR: white -> blue
    for t in range(k):
        for p in range(k):
            x0, y0 = left + p * cell, top + t * cell
            colour = light + (dark - light) * frac[t, p]
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), colour.tolist(), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (180, 180, 180), 1)
            ink = (255, 255, 255) if frac[t, p] > 0.5 else (30, 30, 30)
            _centred(img, str(cm[t, p]), (x0 + cell // 2, y0 + cell // 2 - 4), 0.7, ink, 2)
            _centred(
                img, f"{100 * frac[t, p]:.0f}%", (x0 + cell // 2, y0 + cell // 2 + 20), 0.45, ink, 1
            )
    for i, name in enumerate(names):
        size = cv2.getTextSize(name, font, 0.5, 1)[0]
        y = top + i * cell + cell // 2 + size[1] // 2
        cv2.putText(img, name, (left - 10 - size[0], y), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        _centred(img, name, (left + i * cell + cell // 2, top + k * cell + 20), 0.5, (0, 0, 0), 1)
    _centred(img, "predicted", (left + k * cell // 2, top + k * cell + 48), 0.55, (0, 0, 0), 1)
    cv2.putText(img, "true", (8, top + k * cell // 2), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    acc = report.get("accuracy")
    title = f"accuracy {pct(acc)}   n = {report.get('n', int(cm.sum()))}"
    _centred(img, title, (width // 2, 30), 0.6, (0, 0, 0), 1)
    return img


#: Line colours of :func:`curves_image` (BGR): train blue, val orange.
_CURVE_COLOURS = {"train": (180, 100, 30), "val": (20, 130, 240)}


def curves_image(history: Sequence[dict[str, float]], width: int = 960) -> np.ndarray:
    """Draw a run's learning curves: loss and accuracy per epoch, train and val.

    Two panels side by side, loss on the left and accuracy (0-100 %) on the
    right, one line per split present in the rows (``train_loss``,
    ``val_loss``, ``train_accuracy``, ``val_accuracy``); a single epoch is a dot.
    Test figures are never in a history, so never drawn.

    Args:
        history: The rows of ``history.csv`` (:attr:`model.train.FitResult.history`).
        width: Width of the picture in pixels (height is 0.4 of it).

    Returns:
        ``(H, W, 3)`` uint8 BGR image.

    Raises:
        ValueError: If ``history`` is empty.
    """
    if not history:
        raise ValueError("no epochs to draw")
    height = int(width * 0.4)
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    epochs = [int(r["epoch"]) for r in history]
    panel_w = width // 2
    for p, (metric, title) in enumerate((("loss", "loss"), ("accuracy", "accuracy (%)"))):
        series = {
            split: [float(r[f"{split}_{metric}"]) for r in history]
            for split in _CURVE_COLOURS
            if all(f"{split}_{metric}" in r for r in history)
        }
        if metric == "accuracy":
            series = {k: [100 * v for v in vs] for k, vs in series.items()}
            low, high = 0.0, 100.0
        else:
            values = [v for vs in series.values() for v in vs if np.isfinite(v)]
            low, high = 0.0, max([*values, 1e-06]) * 1.05
        _panel(img, p * panel_w, panel_w, height, epochs, series, (low, high), title)
    return img


def _panel(
    img: np.ndarray,
    x0: int,
    w: int,
    h: int,
    epochs: list[int],
    series: dict[str, list[float]],
    limits: tuple[float, float],
    title: str,
) -> None:
    """One plot of :func:`curves_image`: axes, ticks, lines and a legend, inside ``img``."""
    import cv2

    font, ink, grid = cv2.FONT_HERSHEY_SIMPLEX, (40, 40, 40), (225, 225, 225)
    left, right, top, bottom = x0 + 62, x0 + w - 18, 40, h - 46
    low, high = limits
    first, last = epochs[0], epochs[-1]

    def xy(epoch: float, value: float) -> tuple[int, int]:
        fx = 0.5 if last == first else (epoch - first) / (last - first)
        fy = (min(max(value, low), high) - low) / (high - low)
        return round(left + fx * (right - left)), round(bottom - fy * (bottom - top))

    for i in range(5):
        value = low + (high - low) * i / 4
        _, y = xy(first, value)
        cv2.line(img, (left, y), (right, y), grid, 1)
        label = f"{value:.0f}" if high >= 10 else f"{value:.2f}"
        size = cv2.getTextSize(label, font, 0.4, 1)[0]
        cv2.putText(img, label, (left - 6 - size[0], y + 4), font, 0.4, ink, 1, cv2.LINE_AA)
    ticks = sorted({first, last, *np.linspace(first, last, min(6, last - first + 1)).round()})
    for epoch in ticks:
        x, _ = xy(epoch, low)
        cv2.line(img, (x, bottom), (x, bottom + 4), ink, 1)
        _centred(img, str(int(epoch)), (x, bottom + 14), 0.4, ink, 1)
    cv2.rectangle(img, (left, top), (right, bottom), ink, 1)
    _centred(img, "epoch", ((left + right) // 2, h - 14), 0.45, ink, 1)
    cv2.putText(img, title, (left, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (split, values) in enumerate(series.items()):
        colour = _CURVE_COLOURS[split]
        points = np.array([xy(e, v) for e, v in zip(epochs, values, strict=True)], np.int32)
        if len(points) > 1:
            cv2.polylines(img, [points], False, colour, 2, cv2.LINE_AA)
        for point in points if len(points) <= 40 else points[[0, -1]]:
            cv2.circle(img, tuple(int(c) for c in point), 3, colour, -1, cv2.LINE_AA)
        lx, ly = right - 120 + 64 * k, 24  # legend in the title row, clear of the lines
        cv2.line(img, (lx, ly - 4), (lx + 18, ly - 4), colour, 2, cv2.LINE_AA)
        cv2.putText(img, split, (lx + 24, ly), font, 0.45, ink, 1, cv2.LINE_AA)


def png_bytes(image: np.ndarray, path: str | Path) -> bytes:
    """Encode a BGR image as PNG.

    Raises:
        OutputError: If encoding fails (``path`` names the file it was meant for).
    """
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"{path}: PNG encoding failed")
    return buf.tobytes()


def write_confusion_png(report: dict, path: str | Path) -> Path:
    """Write :func:`confusion_image` as a PNG (atomically: ``augtool.store.publish.write_bytes``).

    Raises:
        OutputError: If the file cannot be written.
    """
    import cv2

    path = Path(path)
    ok, buf = cv2.imencode(".png", confusion_image(report))
    if not ok:
        raise OutputError(f"{path}: PNG encoding failed")
    try:
        write_bytes(path, buf.tobytes())
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror})") from err
    return path


def _centred(
    img: np.ndarray,
    text: str,
    centre: tuple[int, int],
    scale: float,
    colour: tuple[int, int, int],
    thickness: int,
) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (int(centre[0] - w / 2), int(centre[1] + h / 2))
    cv2.putText(img, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
