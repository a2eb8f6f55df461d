"""Print the paper's Table 1 (its Dataset 1) in the layout ``augtool evaluate`` prints.

The paper gives per-class TP, TN, FP and FN; for its Dataset 1 they fix the 3x3
confusion matrix uniquely (``tests/test_metrics.py`` checks the printed
percentages against the paper's). The paper records no groups, so the table has
the per-image Wilson interval only. Run from the repository root::

    python examples/paper_table1.py
"""

from __future__ import annotations

import numpy as np

from model.metrics import report_from_confusion
from model.report import format_table

#: Rows true, columns predicted: ALL, AML, Normal.
DATASET1 = np.array([[158, 0, 4], [6, 101, 2], [2, 0, 175]])


def main() -> None:
    """Print the table."""
    print(format_table(report_from_confusion(DATASET1, ["ALL", "AML", "Normal"])))


if __name__ == "__main__":
    main()
