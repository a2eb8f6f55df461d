"""Which sources a cross-validation run gets wrong on its VALIDATION folds, and why.

For each fold k of a ``augtool train --fold all`` run, the fold's kept model
predicts its validation fold (k+1 mod K); the copies of each source are pooled
and a source counts as wrong when fewer than half of its copies are predicted
right. No test fold is read. With the real cells, each wrong source is joined
with what ``experiments/cell_windows.py`` finds about its window: how far the
object of its class lies from the centre, and whether it also holds a
platelet.

Usage: python experiments/cv_errors.py RUN DATA [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.store.dataset import open_dataset
from model.checkpoint import load_checkpoint
from model.data import DeviceImages, align_labels
from model.folds import fold_parts, val_fold
from model.rundir import fold_dir
from model.train import evaluate

HERE = Path(__file__).resolve().parent


def _cell_windows() -> types.ModuleType:
    """experiments/cell_windows.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("cell_windows", HERE / "cell_windows.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cell_windows"] = module
    spec.loader.exec_module(module)
    return module


def source_of(name: str) -> str:
    """``Platelets/BloodImage_00012_platelets__04_histeq.png`` -> its source's file stem."""
    return Path(name).name.split("__")[0]


def val_errors(run: Path, data_path: Path) -> tuple[list[tuple[int, str, str, dict]], int]:
    """Sources mostly predicted wrong on each fold's validation fold.

    Returns:
        ``(fold, class, source, {predicted class: copies})`` for each wrong source,
        and the number of sources scored.
    """
    data = open_dataset(data_path)
    wrong = []
    scored = 0
    for k in range(data.fold_count):
        ckpt = load_checkpoint(fold_dir(run, k) / "model.pt", "cpu")
        val = fold_parts(data, k)["val"]
        labels = align_labels(val, ckpt.class_names)
        images = DeviceImages(val.images, labels, ckpt.normalization, torch.device("cpu"))
        predicted = evaluate(ckpt.net, images, 256).predicted
        by_source: dict[tuple[str, int], list[int]] = defaultdict(list)
        for name, label, guess in zip(val.names, labels, predicted, strict=True):
            by_source[(source_of(name), int(label))].append(int(guess))
        scored += len(by_source)
        for (source, label), guesses in sorted(by_source.items()):
            if np.mean(np.asarray(guesses) == label) < 0.5:
                counts = Counter(ckpt.class_names[g] for g in guesses)
                wrong.append(
                    (val_fold(k, data.fold_count), ckpt.class_names[label], source, counts)
                )
    return wrong, scored


def main() -> None:
    """Print the wrong sources and, with the real cells, what their windows hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `augtool train --fold all` output folder")
    parser.add_argument("data", type=Path, help="the dataset it was trained on")
    parser.add_argument("--data-root", type=Path, default=HERE.parents[1] / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    wrong, scored = val_errors(args.run, args.data)
    windows = {}
    if (args.data_root / "bccd-cells").is_dir():
        cw = _cell_windows()
        windows = {Path(w.image).stem: w for w in cw.locate_all(args.data_root)}
    print(f"{args.run}: {len(wrong)} of {scored} sources mostly wrong on their validation fold")
    off = holds = 0
    for fold, label, source, counts in wrong:
        line = f"  val fold {fold}  {label:<10} {source:<32} predicted {dict(counts)}"
        w = windows.get(source)
        if w is not None:
            far = w.offset_px > 32
            off += far
            has_platelet = label == "RBC" and "Platelets" in w.inside
            holds += has_platelet
            line += f"  object {w.offset_px:.0f} px off centre"
            line += ", holds a platelet" if has_platelet else ""
        print(line)
    if windows:
        print(
            f"{off} of {len(wrong)} have their object more than 32 px off the window centre;"
            f" {holds} are RBC windows that wholly hold an annotated platelet"
        )


if __name__ == "__main__":
    main()
