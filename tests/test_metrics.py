import json
import math

import cv2
import numpy as np
import pytest

from model.metrics import (
    classification_report,
    confusion_matrix,
    one_vs_rest,
    report_from_confusion,
    wilson_interval,
)
from model.report import confusion_image, format_table, write_confusion_png

PAPER_CLASSES = ["ALL", "AML", "Normal"]
# The paper's Table 1 gives per-class TP/TN/FP/FN; each dataset's numbers admit exactly
# one 3x3 confusion matrix (rows true, columns predicted). Dataset 1: AML is never
# predicted wrongly (FP 0), so ALL's 4 misses went to Normal and Normal's 2 to ALL;
# AML's 8 misses split 6 ALL / 2 Normal to match ALL's FP 8 and Normal's FP 6.
DATASET1 = np.array([[158, 0, 4], [6, 101, 2], [2, 0, 175]])
# Dataset 2: Normal is never missed (FN 0); AML FP 4 all come from ALL, ALL FP 8 from AML.
DATASET2 = np.array([[167, 4, 1], [8, 110, 1], [0, 0, 212]])

# Table 1 as printed: (TP, TN, FP, FN, precision %, recall %, specificity %) per class.
TABLE1 = {
    "dataset1": {
        "ALL": (158, 278, 8, 4, 95.2, 97.5, 97.2),
        "AML": (101, 339, 0, 8, 100.0, 92.7, 100.0),
        "Normal": (175, 265, 6, 2, 96.7, 98.9, 97.8),
    },
    "dataset2": {
        "ALL": (167, 323, 8, 5, 95.4, 97.1, 97.6),
        "AML": (110, 380, 4, 9, 96.5, 92.4, 99.0),
        "Normal": (212, 289, 2, 0, 99.1, 100.0, 99.3),
    },
}


def _by_class(report):
    return {c["class"]: c for c in report["per_class"]}


@pytest.mark.parametrize(
    ("name", "cm", "accuracy"), [("dataset1", DATASET1, 96.9), ("dataset2", DATASET2, 97.2)]
)
def test_paper_table1_reproduced(name, cm, accuracy):
    report = report_from_confusion(cm, PAPER_CLASSES)
    rows = _by_class(report)
    for cls, (tp, tn, fp, fn, precision, recall, specificity) in TABLE1[name].items():
        got = rows[cls]
        assert (got["tp"], got["tn"], got["fp"], got["fn"]) == (tp, tn, fp, fn)
        assert round(100 * got["precision"], 1) == precision
        assert round(100 * got["recall"], 1) == recall
        assert round(100 * got["specificity"], 1) == specificity
    assert round(100 * report["accuracy"], 1) == accuracy


def test_paper_all_row_exact_fractions():
    rows = _by_class(report_from_confusion(DATASET1, PAPER_CLASSES))
    assert rows["ALL"]["precision"] == pytest.approx(158 / 166)
    assert rows["ALL"]["recall"] == pytest.approx(158 / 162)
    assert rows["ALL"]["specificity"] == pytest.approx(278 / 286)
    assert rows["ALL"]["f1"] == pytest.approx(2 * 158 / (2 * 158 + 8 + 4))


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    counts = one_vs_rest(cm)
    assert counts["tp"].tolist() == [1, 1, 2]
    assert counts["fp"].tolist() == [1, 1, 0]
    assert counts["fn"].tolist() == [1, 0, 1]
    assert counts["tn"].tolist() == [3, 4, 3]


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="labels but"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)


def test_macro_f1_and_balanced_accuracy_by_hand():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    f1 = [2 * 3 / (2 * 3 + 1 + 1), 2 * 2 / (2 * 2 + 1 + 0), 2 * 1 / (2 * 1 + 0 + 1)]
    assert report["macro_f1"] == pytest.approx(np.mean(f1))
    assert report["balanced_accuracy"] == pytest.approx(np.mean([3 / 4, 2 / 2, 1 / 2]))
    assert report["accuracy"] == pytest.approx(6 / 8)
    assert report["originals"] is None


def test_undefined_ratios_are_null_and_absent_classes_not_averaged():
    # Class "c" has no images and is never predicted: its precision and recall are undefined.
    report = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["a", "b", "c"])
    rows = _by_class(report)
    assert rows["c"]["precision"] is None and rows["c"]["recall"] is None
    assert rows["c"]["specificity"] == 1.0
    assert report["balanced_accuracy"] == pytest.approx((1 + 0.5) / 2)
    json.dumps(report, allow_nan=False)


def test_originals_only_accuracy():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 0])
    transforms = ["original", "gray", "original", "rotate"]
    report = classification_report(y_true, y_pred, ["a", "b"], transforms)
    assert report["originals"]["n"] == 2
    assert report["originals"]["accuracy"] == 1.0
    assert report["accuracy"] == 0.5


# Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score),
# and the closed form of the bounds at k = 0 and k = n: z^2 / (n + z^2).
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_wilson_interval_edge_cases():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    lo99, hi99 = wilson_interval(5, 10, confidence=0.99)
    lo95, hi95 = wilson_interval(5, 10)
    assert lo99 < lo95 and hi99 > hi95


def test_table_text_has_paper_layout():
    report = report_from_confusion(DATASET1, PAPER_CLASSES)
    text = format_table(report)
    lines = text.splitlines()
    assert lines[0].split() == PAPER_CLASSES
    assert lines[1].startswith("True positive (TP)") and lines[1].split()[-3:] == [
        "158",
        "101",
        "175",
    ]
    assert "95.2%" in lines[5] and "97.5%" in lines[6] and "97.2%" in lines[7]
    assert "96.9% (434/448" in text


def test_confusion_png_is_written_and_decodes(tmp_path):
    report = report_from_confusion(DATASET1, PAPER_CLASSES)
    image = confusion_image(report)
    assert image.dtype == np.uint8 and image.ndim == 3
    path = write_confusion_png(report, tmp_path / "confusion.png")
    decoded = cv2.imread(str(path))
    assert decoded is not None and decoded.shape == image.shape
    assert not list(tmp_path.glob("*.partial"))
