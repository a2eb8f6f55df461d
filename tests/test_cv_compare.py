"""benchmarks/cv_compare.py: chooses on validation, prints the chosen run's test only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(folder: Path, name: str, val: float, test: float, option: str) -> Path:
    run = folder / name
    run.mkdir()
    folds = [
        {"fold": k, "best_epoch": 10 + k, "val_accuracy": val, "test_accuracy": test}
        for k in range(5)
    ]
    cv = {
        "data": "cells5.h5",
        "command_line": f"augtool train cells5.h5 --out {name} --fold all --arch cellnet {option}",
        "per_fold": folds,
        "mean": {"val_accuracy": val, "val_macro_f1": val, "test_accuracy": test},
        "std": {"val_accuracy": 0.01, "val_macro_f1": 0.02, "test_accuracy": 0.03},
    }
    (run / "cv.json").write_text(json.dumps(cv))
    (run / "cv.md").write_text(f"# {name}\n\n| test accuracy |\n| {100 * test:.1f} % |\n")
    return run


def test_choice_is_on_val_and_no_test_figure_is_printed(tmp_path: Path) -> None:
    low = _run(tmp_path, "cv-low", val=0.80, test=0.991, option="--augment none")
    high = _run(tmp_path, "cv-high", val=0.85, test=0.612, option="--arch-option crop=0.5")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cv_compare.py"), str(low), str(high)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Chosen on validation: `cv-high`" in out
    assert out.splitlines()[-1] == (
        f"    augtool evaluate {high} cells5.h5 --fold all --subset test"
    )  # the command that reads its test folds, once, and records it
    assert "61.2" not in out and "99.1" not in out  # no test figure, chosen or not
    assert out.index("`cv-high`") < out.index("`cv-low`")  # ranked by val
    assert "--arch-option crop=0.5" in out


def test_val_only_prints_no_test(tmp_path: Path) -> None:
    run = _run(tmp_path, "cv-a", val=0.8, test=0.777, option="")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cv_compare.py"), "--val-only", str(run)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "80.0 %" in out
    assert "77.7" not in out


def test_the_configuration_column_names_extra_training_data(tmp_path: Path) -> None:
    plain = _run(tmp_path, "cv-plain", val=0.8, test=0.7, option="")
    extra = _run(tmp_path, "cv-extra", val=0.9, test=0.8, option="--extra-train extra-128.h5")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "cv_compare.py"),
            "--val-only",
            str(plain),
            str(extra),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| `")}
    assert "--extra-train extra-128.h5" in rows["`cv-extra`"]
    assert "--extra-train" not in rows["`cv-plain`"]


def _candidate(root: Path, name: str, what: str, accs: list[float], split: str = "val") -> None:
    folder = root / name
    folder.mkdir()
    (folder / "what.txt").write_text(what + "\n")
    mean = sum(accs) / len(accs)
    summary = {
        "split": split,
        "per_fold": [{"fold": k, "accuracy": a} for k, a in enumerate(accs)],
        "mean": {"accuracy": mean, "macro_f1": mean - 0.01},
        "std": {"accuracy": 0.02, "macro_f1": 0.03},
    }
    if name == "e":  # benchmarks/cv_prior.py --json: several readings, one a candidate
        other = {**summary, "mean": {"accuracy": 0.99, "macro_f1": 0.99}, "accuracy": [0.99]}
        prior = {"as trained": other, "to the set's mix": {**summary, "accuracy": accs}}
        (folder / "prior.json").write_text(json.dumps(prior))
    else:
        (folder / "folds.json").write_text(json.dumps(summary))


def _rank(root: Path) -> subprocess.CompletedProcess:
    script = ROOT / "benchmarks" / "cv_rank.py"
    return subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True)


def test_rank_orders_candidates_by_validation_accuracy(tmp_path: Path) -> None:
    _candidate(tmp_path, "a", "as it is", [0.90, 0.88])
    _candidate(tmp_path, "b", "with TTA", [0.92, 0.90])
    _candidate(tmp_path, "e", "prior", [0.80, 0.82])
    result = _rank(tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| (")]
    assert [row[:5] for row in rows] == ["| (b)", "| (a)", "| (e)"]
    assert "| (e) | prior | 81.0 % ± 2.0 % | 80.0 % ± 3.0 % | 80.0, 82.0 |" in rows
    assert result.stdout.splitlines()[-1] == "chosen on validation: (b) with TTA"


def test_rank_refuses_a_test_score(tmp_path: Path) -> None:
    _candidate(tmp_path, "a", "as it is", [0.90, 0.88])
    _candidate(tmp_path, "t", "read on test", [0.99, 0.99], split="test")
    result = _rank(tmp_path)
    assert result.returncode == 1 and "scores 'test', not val" in result.stderr
