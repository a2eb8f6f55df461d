"""Rank scored candidates by mean validation accuracy (experiments/cv_round3.sh's last step).

Each candidate is a folder holding ``what.txt`` (one line: what it is) and either
``folds.json`` (written by ``augtool evaluate RUN DATA --fold all --subset val``) or
``prior.json`` (written by ``experiments/cv_prior.py --json``; its ``to the set's
mix`` reading). The table is best first: higher mean validation accuracy, then
higher mean validation macro F1, then the folder name (:func:`model.selection.ranked`).
A ``folds.json`` of another subset than ``val`` is refused: candidates are
compared on validation only.

Usage:
    python experiments/cv_rank.py cv-work/round3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augtool.errors import InputError
from model.selection import candidate_table, ranked


def main(argv: list[str] | None = None) -> int:
    """Print the ranking as a Markdown table and the chosen candidate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the folder of candidate folders")
    try:
        candidates = ranked(parser.parse_args(argv).root)
    except InputError as err:
        sys.exit(f"error: {err}")
    if not candidates:
        sys.exit("error: no candidate folders (each needs what.txt)")
    print("Candidates on validation folds only, best first")
    print()
    print(candidate_table(candidates))
    print()
    print(f"chosen on validation: ({candidates[0].name}) {candidates[0].what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
