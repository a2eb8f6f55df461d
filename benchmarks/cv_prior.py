"""Label-shift correction of a cross-validated run with --extra-train, on VALIDATION folds.

Extra training cells change the class mix a network learns: in results.md's
round 2 the extra cells hold 14 platelet sources for 100 RBC and 100 WBC, so
platelets are about 12 % of the training images but about 25 % of the cell
set. The usual correction for a prior shift (Saerens et al., 2002) multiplies
each class probability by target prior / training prior. This script scores
each fold's model on its validation fold three ways: as trained; corrected to
the class mix of its training folds without the extra cells (the set's own
mix, known without looking at val or test); and corrected to equal priors.
It prints validation accuracy only, never a test figure.

Usage:
    python benchmarks/cv_prior.py RUN DATA EXTRA
    python benchmarks/cv_prior.py cv-work/cv-cell-extra-128 cv-work/cells5-128.h5 \
        cv-work/extra-128.h5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augtool.io import open_dataset
from model.run import fold_parts
from model.scoring import load_fold_model, mean_probabilities


def class_mix(labels: np.ndarray, classes: int) -> np.ndarray:
    """Fraction of each class among ``labels``."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return counts / counts.sum()


def main(argv: list[str] | None = None) -> int:
    """Print the per-fold and mean validation accuracy of the three readings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `augtool train --fold all`")
    parser.add_argument("data", type=Path, help="the expand --folds output it was trained on")
    parser.add_argument("extra", type=Path, help="the --extra-train data it was trained with")
    args = parser.parse_args(argv)
    data, extra = open_dataset(args.data), open_dataset(args.extra)
    classes = len(data.class_names)
    cpu = torch.device("cpu")
    readings = ("as trained", "to the set's mix", "to equal priors")
    accuracy: dict[str, list[float]] = {name: [] for name in readings}
    print(f"{args.run}: validation folds only")
    print("model of fold  val fold  " + "  ".join(f"{name:>16}" for name in readings))
    for fold in range(data.fold_count):
        parts = fold_parts(data, fold)
        model = load_fold_model(args.run, fold, cpu)
        probabilities, labels = mean_probabilities([model], parts["val"], cpu, 256, tta=False)
        both = np.concatenate([parts["train"].labels, extra.labels])
        trained_mix = class_mix(both, classes)
        weights = {
            "as trained": np.ones(classes),
            "to the set's mix": class_mix(parts["train"].labels, classes) / trained_mix,
            "to equal priors": 1.0 / trained_mix,
        }
        for name in readings:
            predicted = (probabilities * weights[name]).argmax(axis=1)
            accuracy[name].append(float(np.mean(predicted == labels)))
        row = "  ".join(f"{100 * accuracy[name][-1]:15.1f}%" for name in readings)
        print(f"{fold:>13}  {(fold + 1) % data.fold_count:>8}  {row}")
    means = "  ".join(
        f"{100 * np.mean(v):6.1f} ± {100 * np.std(v, ddof=1):4.1f} %" for v in accuracy.values()
    )
    print(f"{'mean ± std':>23}  {means}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
