"""Compare cross-validated configurations on validation folds only, and name the choice.

Each argument is a run folder written by ``augtool train DATA RUN --fold all``
(``RUN/cv.json``). The configurations are ranked by mean validation accuracy over
the folds (ties: higher mean validation macro F1, then the earlier argument); the
table of that ranking shows validation columns only (:mod:`model.selection`).
Then the chosen run is named with the one command that scores its test folds,
which this script never runs: ``augtool evaluate RUN DATA --fold all --subset
test`` records the read in the dataset's ledger. No test figure is printed, even
from a ``cv.json`` that an older version of ``train`` wrote with test columns.

Usage:
    python experiments/cv_compare.py cv-work/cv-cell-64 cv-work/cv-cell-nocoords-64 ...
    python experiments/cv_compare.py --val-only RUN...   # the ranking alone
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click

from augtool.commands.exit_codes import render_error
from augtool.errors import InputError
from cli import main as augtool
from model.selection import ranking, val_table


def main(argv: list[str] | None = None) -> int:
    """Print the ranking and, unless ``--val-only``, the command that scores the choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of --fold all")
    parser.add_argument("--val-only", action="store_true", help="print the ranking alone")
    args = parser.parse_args(argv)
    try:
        ranked = ranking(args.runs)
    except InputError as err:
        with click.Context(augtool):  # library messages name parameters: show augtool's flags
            sys.exit(f"error: {render_error(err, None)}")
    print("Configurations ranked by mean validation accuracy over the folds")
    print("(mean ± sample standard deviation over the folds; validation folds only):")
    print()
    print(val_table(ranked))
    if args.val_only:
        return 0
    chosen, cv = ranked[0]
    print()
    print(f"Chosen on validation: `{chosen.name}`. Score its test folds once, with:")
    print(f"    augtool evaluate {chosen} {cv['data']} --fold all --subset test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
