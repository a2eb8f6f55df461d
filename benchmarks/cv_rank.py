"""Rank scored candidates by mean validation accuracy (benchmarks/cv_round3.sh's last step).

Each candidate is a folder holding ``what.txt`` (one line: what it is) and either
``folds.json`` (written by ``augtool evaluate RUN DATA --fold all --subset val``) or
``prior.json`` (written by ``benchmarks/cv_prior.py --json``; its ``to the set's
mix`` reading). The table is best first: higher mean validation accuracy, then
higher mean validation macro F1, then the folder name. A ``folds.json`` of another
subset than ``val`` is refused: candidates are compared on validation only.

Usage:
    python benchmarks/cv_rank.py cv-work/round3
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

#: The reading of benchmarks/cv_prior.py that is a candidate.
PRIOR_READING = "to the set's mix"


@dataclass
class Candidate:
    """One scored candidate: mean and std over the folds, and each fold's accuracy."""

    name: str
    what: str
    accuracy: float
    accuracy_std: float
    macro_f1: float
    macro_f1_std: float
    per_fold: list[float]


def load(folder: Path) -> Candidate:
    """Read one candidate folder; exits with a message naming a bad folder."""
    what = (folder / "what.txt").read_text(encoding="utf-8").strip()
    folds_json, prior_json = folder / "folds.json", folder / "prior.json"
    if folds_json.is_file():
        summary = json.loads(folds_json.read_text(encoding="utf-8"))
        if summary.get("split") != "val":
            sys.exit(f"error: {folds_json} scores {summary.get('split')!r}, not val")
        per_fold = [row["accuracy"] for row in summary["per_fold"]]
    elif prior_json.is_file():
        summary = json.loads(prior_json.read_text(encoding="utf-8"))[PRIOR_READING]
        per_fold = list(summary["accuracy"])
    else:
        sys.exit(f"error: {folder} has neither folds.json nor prior.json")
    mean, std = summary["mean"], summary["std"]
    return Candidate(
        name=folder.name,
        what=what,
        accuracy=mean["accuracy"],
        accuracy_std=std["accuracy"],
        macro_f1=mean["macro_f1"],
        macro_f1_std=std["macro_f1"],
        per_fold=per_fold,
    )


def ranked(root: Path) -> list[Candidate]:
    """Every candidate folder under ``root``, best first."""
    found = [load(f) for f in sorted(root.iterdir()) if (f / "what.txt").is_file()]
    return sorted(found, key=lambda c: (-c.accuracy, -c.macro_f1, c.name))


def main(argv: list[str] | None = None) -> int:
    """Print the ranking as a Markdown table and the chosen candidate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the folder of candidate folders")
    candidates = ranked(parser.parse_args(argv).root)
    if not candidates:
        sys.exit("error: no candidate folders (each needs what.txt)")
    print("Candidates on validation folds only, best first")
    print()
    print("| candidate | what | val accuracy | val macro F1 | val accuracy per fold model |")
    print("|---|---|---|---|---|")
    for c in candidates:
        folds = ", ".join(f"{100 * a:.1f}" for a in c.per_fold)
        print(
            f"| ({c.name}) | {c.what} | {100 * c.accuracy:.1f} % ± {100 * c.accuracy_std:.1f} % "
            f"| {100 * c.macro_f1:.1f} % ± {100 * c.macro_f1_std:.1f} % | {folds} |"
        )
    print()
    print(f"chosen on validation: ({candidates[0].name}) {candidates[0].what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
