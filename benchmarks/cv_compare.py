"""Compare cross-validated configurations on validation folds only, and name the choice.

Each argument is a run folder written by ``augtool train DATA RUN --fold all``
(``RUN/cv.json``). The configurations are ranked by mean validation accuracy over
the folds (ties: higher mean validation macro F1, then the earlier argument); the
table of that ranking shows validation columns only. Then the chosen run is named
with the one command that scores its test folds, which this script never runs:
``augtool evaluate RUN DATA --fold all --subset test`` records the read in the
dataset's ledger. No test figure is printed, even from a ``cv.json`` that an older
version of ``train`` wrote with test columns.

Usage:
    python benchmarks/cv_compare.py cv-work/cv-cell-64 cv-work/cv-cell-nocoords-64 ...
    python benchmarks/cv_compare.py --val-only RUN...   # the ranking alone
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(run: Path) -> dict:
    """Read ``RUN/cv.json``, with an error that names the folder when it is missing."""
    path = run / "cv.json"
    if not path.is_file():
        sys.exit(f"error: {path} not found: run `augtool train DATA --out {run} --fold all` first")
    return json.loads(path.read_text())


#: Options of `augtool train` that make one configuration differ from another.
SETTING_OPTIONS = (
    "--arch",
    "--arch-option",
    "--augment",
    "--epochs",
    "--lr",
    "--batch-size",
    "--optimizer",
    "--schedule",
    "--weight-decay",
    "--momentum",
    "--normalize",
    "--extra-train",
)


def describe(cv: dict) -> str:
    """The command-line options that set this configuration apart (from its command line)."""
    words = cv["command_line"].split()
    keep = []
    for i, word in enumerate(words):
        if word in SETTING_OPTIONS and i + 1 < len(words):
            keep.append(f"{word} {words[i + 1]}")
    return " ".join(keep)


def ranking(runs: list[Path]) -> list[tuple[Path, dict]]:
    """Runs ordered best first by mean val accuracy, then mean val macro F1, then order."""
    loaded = [(run, load(run)) for run in runs]
    order = sorted(
        range(len(loaded)),
        key=lambda i: (
            -loaded[i][1]["mean"]["val_accuracy"],
            -loaded[i][1]["mean"]["val_macro_f1"],
            i,
        ),
    )
    return [loaded[i] for i in order]


def val_table(ranked: list[tuple[Path, dict]]) -> str:
    """Markdown table of the validation columns, best first."""
    lines = [
        "| run | data | configuration | val accuracy | val macro F1 | kept epochs (folds 0-4) |",
        "|---|---|---|---|---|---|",
    ]
    for run, cv in ranked:
        mean, std = cv["mean"], cv["std"]
        epochs = ", ".join(str(f["best_epoch"]) for f in cv["per_fold"])
        lines.append(
            f"| `{run.name}` | `{cv['data']}` | {describe(cv)} "
            f"| {100 * mean['val_accuracy']:.1f} % ± {100 * std['val_accuracy']:.1f} % "
            f"| {100 * mean['val_macro_f1']:.1f} % ± {100 * std['val_macro_f1']:.1f} % "
            f"| {epochs} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of --fold all")
    parser.add_argument("--val-only", action="store_true", help="print the ranking alone")
    args = parser.parse_args()
    ranked = ranking(args.runs)
    print("Configurations ranked by mean validation accuracy over the folds")
    print("(mean ± sample standard deviation over the folds; validation folds only):")
    print()
    print(val_table(ranked))
    if args.val_only:
        return
    chosen, cv = ranked[0]
    print()
    print(f"Chosen on validation: `{chosen.name}`. Score its test folds once, with:")
    print(f"    augtool evaluate {chosen} {cv['data']} --fold all --subset test")


if __name__ == "__main__":
    main()
