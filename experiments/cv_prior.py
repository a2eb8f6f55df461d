"""Label-shift correction of a cross-validated run with --extra-train, on VALIDATION folds.

Extra training cells change the class mix a network learns: in results.md's
round 2 the extra cells hold 14 platelet sources for 100 RBC and 100 WBC, so
platelets are about 12 % of the training images but about 25 % of the cell
set. The usual correction for a prior shift (Saerens et al., 2002) multiplies
each class probability by target prior / training prior. This script scores
each fold's model on its validation fold three ways
(:func:`model.selection.prior_corrected`): as trained; corrected to the class
mix of its training folds without the extra cells (the set's own mix, known
without looking at val or test); and corrected to equal priors. It prints
validation accuracy only, never a test figure.

Usage:
    python experiments/cv_prior.py RUN DATA EXTRA
    python experiments/cv_prior.py cv-work/cv-cell-extra-128 cv-work/cells5-128.h5 \
        cv-work/extra-128.h5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augtool.errors import AugtoolError
from model.report import mean_std
from model.selection import READINGS, prior_corrected


def main(argv: list[str] | None = None) -> int:
    """Print the per-fold and mean validation accuracy of the three readings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `augtool train --fold all`")
    parser.add_argument("data", type=Path, help="the expand --folds output it was trained on")
    parser.add_argument("extra", type=Path, help="the --extra-train data it was trained with")
    parser.add_argument(
        "--json", type=Path, help="also write each reading's per-fold and mean figures here"
    )
    args = parser.parse_args(argv)
    try:
        readings = prior_corrected(args.run, args.data, args.extra)
    except AugtoolError as err:
        sys.exit(f"error: {err}")
    print(f"{args.run}: validation folds only")
    print("model of fold  val fold  " + "  ".join(f"{name:>16}" for name in READINGS))
    for i, (fold, val) in enumerate(readings.folds):
        row = "  ".join(f"{100 * readings.accuracy[name][i]:15.1f}%" for name in READINGS)
        print(f"{fold:>13}  {val:>8}  {row}")
    means = "  ".join(
        "{:6.1f} ± {:4.1f} %".format(*(100 * v for v in mean_std(readings.accuracy[name])))
        for name in READINGS
    )
    print(f"{'mean ± std':>23}  {means}")
    if args.json is not None:
        args.json.write_text(json.dumps(readings.summary(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
