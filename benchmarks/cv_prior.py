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
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augtool.store.dataset import open_dataset
from model.data import align_labels
from model.metrics import confusion_matrix, report_from_confusion
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
    parser.add_argument(
        "--json", type=Path, help="also write each reading's per-fold and mean figures here"
    )
    args = parser.parse_args(argv)
    data, extra = open_dataset(args.data), open_dataset(args.extra)
    classes = len(data.class_names)
    cpu = torch.device("cpu")
    readings = ("as trained", "to the set's mix", "to equal priors")
    accuracy: dict[str, list[float]] = {name: [] for name in readings}
    macro_f1: dict[str, list[float]] = {name: [] for name in readings}
    print(f"{args.run}: validation folds only")
    print("model of fold  val fold  " + "  ".join(f"{name:>16}" for name in readings))
    for fold in range(data.fold_count):
        parts = fold_parts(data, fold)
        model = load_fold_model(args.run, fold, cpu)
        probabilities, labels = mean_probabilities([model], parts["val"], cpu, 256, tta=False)
        names = model.checkpoint.class_names  # the probabilities' column order
        train_labels = align_labels(parts["train"], names)
        trained_mix = class_mix(np.concatenate([train_labels, align_labels(extra, names)]), classes)
        weights = {
            "as trained": np.ones(classes),
            "to the set's mix": class_mix(train_labels, classes) / trained_mix,
            "to equal priors": 1.0 / trained_mix,
        }
        for name in readings:
            predicted = (probabilities * weights[name]).argmax(axis=1)
            report = report_from_confusion(confusion_matrix(labels, predicted, classes), names)
            accuracy[name].append(report["accuracy"])
            macro_f1[name].append(report["macro_f1"])
        row = "  ".join(f"{100 * accuracy[name][-1]:15.1f}%" for name in readings)
        print(f"{fold:>13}  {(fold + 1) % data.fold_count:>8}  {row}")
    means = "  ".join(
        f"{100 * np.mean(v):6.1f} ± {100 * np.std(v, ddof=1):4.1f} %" for v in accuracy.values()
    )
    print(f"{'mean ± std':>23}  {means}")
    if args.json is not None:
        summary = {
            name: {
                "accuracy": accuracy[name],
                "macro_f1": macro_f1[name],
                "mean": {"accuracy": np.mean(accuracy[name]), "macro_f1": np.mean(macro_f1[name])},
                "std": {
                    "accuracy": np.std(accuracy[name], ddof=1),
                    "macro_f1": np.std(macro_f1[name], ddof=1),
                },
            }
            for name in readings
        }
        args.json.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
