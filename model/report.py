"""Present a metrics report: the paper's Table 1 as text, and a confusion-matrix picture.

The picture is drawn with numpy and OpenCV (imported only when drawing), so no
plotting library is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from augtool.errors import OutputError
from augtool.publish import write_bytes

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
    names = [str(n) for n in report["class_names"]]
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


def write_confusion_png(report: dict, path: str | Path) -> Path:
    """Write :func:`confusion_image` as a PNG (atomically, :func:`augtool.publish.write_bytes`).

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
