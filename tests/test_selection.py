"""model/selection.py and its scripts: choices made on validation folds, no test figure shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.errors import InputError
from cli import main
from model.selection import (
    READINGS,
    Candidate,
    PriorReadings,
    candidate_table,
    class_mix,
    describe,
    load_cv,
    prior_corrected,
    prior_weights,
    ranked,
    ranking,
    val_table,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "experiments"


def _script(name: str, *args: object, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        check=check,
    )


# --- cross-validated runs (cv.json) ----------------------------------------------------------


def _run(
    folder: Path, name: str, val: float, test: float, option: str, f1: float | None = None
) -> Path:
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
        "mean": {
            "val_accuracy": val,
            "val_macro_f1": val if f1 is None else f1,
            "test_accuracy": test,
        },
        "std": {"val_accuracy": 0.01, "val_macro_f1": 0.02, "test_accuracy": 0.03},
    }
    (run / "cv.json").write_text(json.dumps(cv))
    (run / "cv.md").write_text(f"# {name}\n\n| test accuracy |\n| {100 * test:.1f} % |\n")
    return run


def test_ranking_is_by_val_accuracy_then_val_macro_f1_then_order(tmp_path: Path) -> None:
    first = _run(tmp_path, "first", val=0.85, test=0.5, option="", f1=0.80)
    low = _run(tmp_path, "low", val=0.80, test=0.99, option="")
    better_f1 = _run(tmp_path, "better-f1", val=0.85, test=0.5, option="", f1=0.84)
    same = _run(tmp_path, "same", val=0.85, test=0.5, option="", f1=0.80)
    order = [run for run, _ in ranking([first, low, better_f1, same])]
    assert order == [better_f1, first, same, low]


def test_the_val_table_shows_validation_and_the_configuration_only(tmp_path: Path) -> None:
    run = _run(tmp_path, "cv-a", val=0.8, test=0.777, option="--augment none --epochs 30")
    table = val_table(ranking([run]))
    assert table.splitlines()[-1] == (
        "| `cv-a` | `cells5.h5` | --arch cellnet --augment none --epochs 30 "
        "| 80.0 % ± 1.0 % | 80.0 % ± 2.0 % | 10, 11, 12, 13, 14 |"
    )
    assert "77.7" not in table and "test" not in table


def test_describe_keeps_the_options_that_set_a_configuration_apart() -> None:
    line = "augtool train d.h5 r --fold all --device cuda --arch cellnet --extra-train x.h5 --lr"
    assert describe({"command_line": line}) == "--arch cellnet --extra-train x.h5"


def test_a_run_without_cv_json_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_cv(tmp_path / "no-run")
    assert str(tmp_path / "no-run" / "cv.json") in str(caught.value)
    assert caught.value.render(lambda n: f"<{n}>").count("<train.fold> all") == 1


def test_compare_chooses_on_val_and_prints_no_test_figure(tmp_path: Path) -> None:
    low = _run(tmp_path, "cv-low", val=0.80, test=0.991, option="--augment none")
    high = _run(tmp_path, "cv-high", val=0.85, test=0.612, option="--arch-option crop=0.5")
    out = _script("cv_compare.py", low, high).stdout
    assert "Chosen on validation: `cv-high`" in out
    assert out.splitlines()[-1] == (
        f"    augtool evaluate {high} cells5.h5 --fold all --subset test"
    )  # the command that reads its test folds, once, and records it
    assert "61.2" not in out and "99.1" not in out  # no test figure, chosen or not
    assert out.index("`cv-high`") < out.index("`cv-low`")  # ranked by val
    assert "--arch-option crop=0.5" in out


def test_compare_val_only_prints_no_test(tmp_path: Path) -> None:
    run = _run(tmp_path, "cv-a", val=0.8, test=0.777, option="")
    out = _script("cv_compare.py", "--val-only", run).stdout
    assert "80.0 %" in out
    assert "77.7" not in out


def test_compare_names_extra_training_data_in_the_configuration(tmp_path: Path) -> None:
    plain = _run(tmp_path, "cv-plain", val=0.8, test=0.7, option="")
    extra = _run(tmp_path, "cv-extra", val=0.9, test=0.8, option="--extra-train extra-128.h5")
    out = _script("cv_compare.py", "--val-only", plain, extra).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| `")}
    assert "--extra-train extra-128.h5" in rows["`cv-extra`"]
    assert "--extra-train" not in rows["`cv-plain`"]


def test_compare_without_a_run_names_the_flag(tmp_path: Path) -> None:
    result = _script("cv_compare.py", tmp_path / "missing", check=False)
    assert result.returncode == 1 and not result.stdout
    assert "cv.json not found" in result.stderr
    assert "augtool train --fold all" in result.stderr  # a flag, as the command line spells it


# --- scored candidates (folds.json, prior.json) ----------------------------------------------


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
    if name == "e":  # cv_prior.py --json: several readings, one a candidate
        other = {**summary, "mean": {"accuracy": 0.99, "macro_f1": 0.99}, "accuracy": [0.99]}
        prior = {"as trained": other, "to the set's mix": {**summary, "accuracy": accs}}
        (folder / "prior.json").write_text(json.dumps(prior))
    else:
        (folder / "folds.json").write_text(json.dumps(summary))


def test_candidates_are_ranked_by_val_accuracy_and_read_the_prior_reading(tmp_path: Path) -> None:
    _candidate(tmp_path, "a", "as it is", [0.90, 0.88])
    _candidate(tmp_path, "b", "with TTA", [0.92, 0.90])
    _candidate(tmp_path, "e", "prior", [0.80, 0.82])
    (tmp_path / "notes").mkdir()  # no what.txt: not a candidate
    found = ranked(tmp_path)
    assert [c.name for c in found] == ["b", "a", "e"]
    e = found[2]  # its "to the set's mix" reading, not "as trained" (0.99)
    assert (e.what, e.accuracy, e.macro_f1) == ("prior", pytest.approx(0.81), pytest.approx(0.80))
    assert (e.accuracy_std, e.macro_f1_std, e.per_fold) == (0.02, 0.03, [0.80, 0.82])


def test_a_tie_on_accuracy_goes_to_macro_f1_then_the_name(tmp_path: Path) -> None:
    for name, f1 in (("z", 0.5), ("y", 0.5), ("x", 0.4)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "what.txt").write_text(name)
        summary = {
            "split": "val",
            "per_fold": [{"accuracy": 0.9}],
            "mean": {"accuracy": 0.9, "macro_f1": f1},
            "std": {"accuracy": 0.0, "macro_f1": 0.0},
        }
        (folder / "folds.json").write_text(json.dumps(summary))
    assert [c.name for c in ranked(tmp_path)] == ["y", "z", "x"]


def test_a_test_score_or_an_empty_candidate_is_refused(tmp_path: Path) -> None:
    _candidate(tmp_path, "t", "read on test", [0.99, 0.99], split="test")
    with pytest.raises(InputError, match="scores 'test', not val"):
        ranked(tmp_path)
    (tmp_path / "t" / "folds.json").unlink()
    with pytest.raises(InputError, match=r"neither folds\.json nor prior\.json"):
        ranked(tmp_path)


def test_the_candidate_table_rounds_to_a_tenth_of_a_percent() -> None:
    table = candidate_table([Candidate("e", "prior", 0.81, 0.02, 0.8, 0.03, [0.8, 0.82])])
    assert (
        table.splitlines()[-1] == "| (e) | prior | 81.0 % ± 2.0 % | 80.0 % ± 3.0 % | 80.0, 82.0 |"
    )


def test_rank_prints_the_table_and_the_choice(tmp_path: Path) -> None:
    _candidate(tmp_path, "a", "as it is", [0.90, 0.88])
    _candidate(tmp_path, "b", "with TTA", [0.92, 0.90])
    _candidate(tmp_path, "e", "prior", [0.80, 0.82])
    result = _script("cv_rank.py", tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| (")]
    assert [row[:5] for row in rows] == ["| (b)", "| (a)", "| (e)"]
    assert "| (e) | prior | 81.0 % ± 2.0 % | 80.0 % ± 3.0 % | 80.0, 82.0 |" in rows
    assert result.stdout.splitlines()[-1] == "chosen on validation: (b) with TTA"


def test_rank_refuses_a_test_score(tmp_path: Path) -> None:
    _candidate(tmp_path, "a", "as it is", [0.90, 0.88])
    _candidate(tmp_path, "t", "read on test", [0.99, 0.99], split="test")
    result = _script("cv_rank.py", tmp_path, check=False)
    assert result.returncode == 1 and "scores 'test', not val" in result.stderr


# --- label-shift correction ------------------------------------------------------------------


def test_class_mix_and_prior_weights() -> None:
    train, extra = np.array([0, 0, 1, 1]), np.array([1, 1, 1, 1])
    assert class_mix(train, 3).tolist() == [0.5, 0.5, 0.0]
    weights = prior_weights(train, extra, 2)  # trained on the mix 2/8, 6/8
    assert list(weights) == list(READINGS)
    assert weights["as trained"].tolist() == [1.0, 1.0]
    assert weights["to the set's mix"] == pytest.approx([2.0, 2.0 / 3.0])
    assert weights["to equal priors"] == pytest.approx([4.0, 4.0 / 3.0])


def test_prior_readings_summarise_each_reading() -> None:
    readings = PriorReadings(folds=[(0, 1), (1, 2), (2, 0)])
    accuracies = ([0.7, 0.8, 0.9], [0.8, 0.8, 0.8], [0.5, 0.6, 1.0])
    for name, accs in zip(READINGS, accuracies, strict=True):
        readings.accuracy[name] = accs
        readings.macro_f1[name] = [a - 0.1 for a in accs]
    summary = readings.summary()
    assert summary["as trained"]["mean"]["accuracy"] == pytest.approx(0.8)
    assert summary["as trained"]["std"]["accuracy"] == pytest.approx(0.1)  # n - 1
    assert summary["to the set's mix"]["std"]["macro_f1"] == pytest.approx(0.0, abs=1e-12)
    assert summary["to equal priors"]["accuracy"] == [0.5, 0.6, 1.0]
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, as prior.json holds it


TRAIN = ("--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "-q")


@pytest.fixture(scope="module")
def extra_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A cross-validated run with --extra-train (another class mix): run, data, extra data."""
    from tests.conftest import smear_like, write_fold_h5, write_image

    root = tmp_path_factory.mktemp("extrarun")
    data = write_fold_h5(root)
    raw = root / "extra-raw"
    for c, cls in enumerate(("a", "b")):
        for i in range(2 + 4 * c):  # another class mix than the folds'
            image = smear_like(np.random.default_rng([7, c, i]), 40, 30)
            write_image(raw / cls / f"patient9{i}_{cls}{i}.jpg", image)
    extra = root / "extra.h5"
    expand(raw, extra, ExpandOptions(target=16, size=32, workers=1, split="none"))
    run = root / "cv"
    trained = CliRunner().invoke(
        main,
        ["train", str(data), str(run), "--fold", "all", "--extra-train", str(extra), *TRAIN],
    )
    assert trained.exit_code == 0, trained.output
    return run, data, extra


def test_prior_correction_as_trained_is_the_run_s_own_val_score(extra_run) -> None:
    run, data, extra = extra_run
    readings = prior_corrected(run, data, extra)
    cv = json.loads((run / "cv.json").read_text())
    assert readings.folds == [(r["fold"], r["val_fold"]) for r in cv["per_fold"]]
    assert readings.folds == [(0, 1), (1, 2), (2, 3), (3, 0)]
    val = [r["val_accuracy"] for r in cv["per_fold"]]
    assert readings.accuracy["as trained"] == pytest.approx(val, abs=1e-9)
    assert all(0.0 <= a <= 1.0 for name in READINGS for a in readings.accuracy[name])


def test_prior_script_prints_validation_only_and_matches_the_run(extra_run) -> None:
    run, data, extra = extra_run
    written = run.parent / "prior.json"
    out = _script("cv_prior.py", run, data, extra, "--json", written).stdout
    assert "test" not in out.replace(str(run), "")
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    val = [r["val_accuracy"] for r in json.loads((run / "cv.json").read_text())["per_fold"]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert [float(r[2].rstrip("%")) for r in rows] == pytest.approx(
        [round(100 * v, 1) for v in val], abs=0.051
    )
    assert out.splitlines()[-1].split()[:3] == ["mean", "±", "std"]
    summary = json.loads(written.read_text())
    assert list(summary) == list(READINGS)
    assert summary["as trained"]["accuracy"] == pytest.approx(val, abs=1e-9)
