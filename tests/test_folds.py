"""Cross-validation folds: ``expand --folds K``, verify, reading, and ``train --fold``."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.split import fold_by_group
from augtool.engine.verify import verify
from augtool.errors import InputError, OptionError
from augtool.store.dataset import MANIFEST_NAME, open_dataset
from cli import main


def _patients(raw: Path) -> Path:
    """Rename the generated sources so that pairs of files share a patient id."""
    for cls in sorted(p.name for p in raw.iterdir()):
        for i, f in enumerate(sorted((raw / cls).iterdir())):
            f.rename(f.with_name(f"patient{i // 2:02d}_{cls}{i}.jpg"))
    return raw


# --- assignment ---------------------------------------------------------------------------------


group_sets = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=6, max_size=60)


@settings(max_examples=200, deadline=None)
@given(groups=group_sets, folds=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_folds_keep_groups_whole_and_balance_classes(groups, folds, seed) -> None:
    if len(groups) < folds:
        return
    labels, names = [], []
    for gi, (label, size) in enumerate(groups):
        labels += [label] * size
        names += [f"g{gi}"] * size
    result = fold_by_group(labels, names, folds, seed)
    assert result == fold_by_group(labels, names, folds, seed)
    assert set(result) <= set(range(folds))
    side = defaultdict(set)
    for g, f in zip(names, result, strict=True):
        side[g].add(f)
    assert all(len(v) == 1 for v in side.values())
    for c in set(labels):
        n_c = labels.count(c)
        largest = max(size for label, size in groups if label == c)
        got = Counter(f for f, lab in zip(result, labels, strict=True) if lab == c)
        for k in range(folds):
            assert abs(got.get(k, 0) - n_c / folds) <= largest + 1e-9


def test_fold_assignment_depends_on_the_seed() -> None:
    labels = [i % 3 for i in range(60)]
    names = [f"g{i}" for i in range(60)]
    runs = {tuple(fold_by_group(labels, names, 5, seed)) for seed in range(4)}
    assert len(runs) > 1
    assert Counter(fold_by_group(labels, names, 5, 0)) == {k: 12 for k in range(5)}


def test_fold_count_is_checked() -> None:
    with pytest.raises(OptionError, match="folds"):
        fold_by_group([0, 1, 0], ["a", "b", "c"], 4, 0)
    with pytest.raises(OptionError, match="folds"):
        fold_by_group([0, 1, 0], ["a", "b", "c"], 1, 0)
    with pytest.raises(OptionError, match="folds"):
        ExpandOptions(folds=101).validate()


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"split": "0.5"}, "folds"),
        ({"split_by": "image"}, "folds"),
        ({"no_augment_test": True}, "no_augment_test"),
    ],
)
def test_folds_refuse_a_fractional_split(options, name) -> None:
    with pytest.raises(OptionError) as err:
        ExpandOptions(folds=5, **options).validate()
    assert err.value.option == name


# --- expand, read, verify -----------------------------------------------------------------------


@pytest.fixture
def fold_raw(make_raw) -> Path:
    return _patients(make_raw({"a": 12, "b": 12, "c": 8}, size=(40, 30)))


def test_expand_records_folds_in_hdf5_and_folder(fold_raw, tmp_path: Path) -> None:
    options = ExpandOptions(target=96, size=32, workers=1, group_regex=r"patient\d+", folds=3)
    expand(fold_raw, tmp_path / "d.h5", options)
    expand(fold_raw, tmp_path / "d", options)
    with h5py.File(tmp_path / "d.h5", "r") as fh:
        assert fh.attrs["folds"] == 3
        fold = fh["fold"][()]
        src_fold = fh["sources/fold"][()]
        assert set(fold.tolist()) == {0, 1, 2}
        np.testing.assert_array_equal(fold, src_fold[fh["source_index"][()]])
        assert json.loads(fh.attrs["fold_counts"]) == {
            str(k): int((fold == k).sum()) for k in range(3)
        }
    for path in (tmp_path / "d.h5", tmp_path / "d"):
        data = open_dataset(path)
        assert data.fold_count == 3
        assert set(data.splits.tolist()) == {"all"}
        by_group = defaultdict(set)
        for g, f in zip(data.groups, data.folds.tolist(), strict=True):
            by_group[g].add(f)
        assert len(by_group) == 6 and all(len(v) == 1 for v in by_group.values())
        part = data.in_folds({1})
        assert len(part) == int((data.folds == 1).sum()) and set(part.folds.tolist()) == {1}
        assert verify(path).ok
    hdf5, folder = open_dataset(tmp_path / "d.h5"), open_dataset(tmp_path / "d")
    assert hdf5.names == folder.names
    np.testing.assert_array_equal(hdf5.folds, folder.folds)
    assert not any(n.startswith(("train/", "test/", "all/")) for n in folder.names)


def test_verify_regenerates_a_fold_output(fold_raw, tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    expand(fold_raw, out, ExpandOptions(target=40, size=32, workers=1, folds=3, seed=4))
    report = verify(out, regenerate_raw=fold_raw, workers=1)
    assert report.ok and report.regenerated, report.problems
    other = tmp_path / "e.h5"
    expand(fold_raw, other, ExpandOptions(target=40, size=32, workers=1, folds=3, seed=5))
    assert not np.array_equal(open_dataset(out).folds, open_dataset(other).folds)


def test_verify_refuses_a_group_in_two_folds(fold_raw, tmp_path: Path) -> None:
    out = tmp_path / "d"
    expand(fold_raw, out, ExpandOptions(target=60, size=32, workers=1, folds=3))
    manifest = out / MANIFEST_NAME
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = rows[0]
    sibling = next(r for r in rows[1:] if r["source"] == first["source"])
    sibling["fold"] = str((int(first["fold"]) + 1) % 3)
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    problems = verify(out).problems
    assert any(f"group {first['group']} appears in folds" in p for p in problems), problems
    assert any("counts per fold" in p for p in problems), problems


def test_files_without_folds_stay_readable(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(raw, tmp_path / "d.h5", ExpandOptions(target=30, size=32, workers=1))
    expand(raw, tmp_path / "d", ExpandOptions(target=30, size=32, workers=1))
    with h5py.File(tmp_path / "d.h5", "r") as fh:
        assert (fh["fold"][()] == -1).all() and fh.attrs["folds"] == 0
    with h5py.File(tmp_path / "d.h5", "r+") as fh:  # a file written before folds existed
        del fh["fold"], fh["sources/fold"]
    manifest = tmp_path / "d" / MANIFEST_NAME
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["fold"] for r in rows} == {""}
    columns = [c for c in rows[0] if c != "fold"]
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for path in (tmp_path / "d.h5", tmp_path / "d"):
        data = open_dataset(path)
        assert data.folds is None and data.fold_count == 0 and len(data) == 30
        assert verify(path).ok
        with pytest.raises(InputError, match="folds"):
            data.in_folds({0})


def test_cli_expand_folds_prints_fold_rows(fold_raw, tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    args = ["expand", str(fold_raw), str(out), "--target", "60", "--size", "32", "--folds", "3"]
    result = CliRunner().invoke(main, [*args, "--group-regex", r"patient\d+", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "fold 0" in result.output and "fold 2" in result.output
    bad = CliRunner().invoke(main, [*args, "--split", "0.5", "--overwrite"])
    assert bad.exit_code == 2 and "--folds" in bad.output


# --- training -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fold_h5(tmp_path_factory) -> Path:
    from tests.conftest import write_fold_h5

    return write_fold_h5(tmp_path_factory.mktemp("foldraw"))


TRAIN = ("--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "-q")


def test_train_one_fold_validates_on_the_next_and_leaves_it_unscored(
    fold_h5, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(fold_h5), str(run), "--fold", "3", *TRAIN])
    assert result.exit_code == 0, result.output
    assert "val: accuracy" in result.output and "test: accuracy" not in result.output
    assert result.output.splitlines()[-1].endswith(
        f"augtool evaluate {run} {fold_h5} --fold 3 --subset test"
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["cv"] == {"folds": 4, "test_fold": 3, "val_fold": 0}
    data = open_dataset(fold_h5)
    counts = Counter(data.folds.tolist())
    assert metrics["splits"] == {
        "train": counts[1] + counts[2],
        "val": counts[0],
        "test": counts[3],
    }
    assert "test" not in metrics and metrics["val"]["n"] == counts[0]
    with (run / "history.csv").open() as fh:
        header = next(csv.reader(fh))
    assert "val_accuracy" in header and not [c for c in header if c.startswith("test")]


def test_train_fold_errors(fold_h5, tmp_path: Path, make_raw) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["train", str(fold_h5), str(tmp_path / "r"), "--fold", "4", *TRAIN])
    assert bad.exit_code == 2 and "--fold" in bad.output
    word = runner.invoke(main, ["train", str(fold_h5), str(tmp_path / "r"), "--fold", "x", *TRAIN])
    assert word.exit_code == 2 and "--fold" in word.output
    plain = tmp_path / "plain.h5"
    expand(make_raw(), plain, ExpandOptions(target=30, size=32, workers=1))
    none = runner.invoke(main, ["train", str(plain), str(tmp_path / "r"), "--fold", "0", *TRAIN])
    assert none.exit_code == 2 and "--folds" in none.output


def test_train_all_folds_summarises_and_resumes(fold_h5, tmp_path: Path) -> None:
    runs = tmp_path / "cv"
    args = ["train", str(fold_h5), str(runs), "--fold", "all", *TRAIN]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mean ± std" in result.output
    summary = json.loads((runs / "cv.json").read_text())
    assert summary["folds"] == 4 and [r["fold"] for r in summary["per_fold"]] == [0, 1, 2, 3]
    assert all((runs / f"fold-{k}" / "curves.png").is_file() for k in range(4))
    assert [r["val_fold"] for r in summary["per_fold"]] == [1, 2, 3, 0]
    for key in ("val_accuracy", "val_macro_f1"):
        values = [r[key] for r in summary["per_fold"]]
        assert summary["mean"][key] == pytest.approx(np.mean(values))
        assert summary["std"][key] == pytest.approx(np.std(values, ddof=1))
    assert summary["pooled_val"]["n"] == len(open_dataset(fold_h5))
    per_fold = [json.loads((runs / f"fold-{k}" / "metrics.json").read_text()) for k in range(4)]
    assert summary["pooled_val"]["accuracy"] == pytest.approx(
        sum(m["val"]["accuracy"] * m["val"]["n"] for m in per_fold) / summary["pooled_val"]["n"]
    )
    assert (runs / "cv.md").read_text().count("\n| ") >= 6
    assert result.output.splitlines()[-1].endswith(
        f"augtool evaluate {runs} {fold_h5} --fold all --subset test"
    )
    stamp = (runs / "fold-1" / "model.pt").stat().st_mtime_ns
    again = CliRunner().invoke(main, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert (runs / "fold-1" / "model.pt").stat().st_mtime_ns == stamp  # reused, not retrained
    assert json.loads((runs / "cv.json").read_text())["mean"] == summary["mean"]
    other = CliRunner().invoke(main, [*args[:-1], "-q", "--epochs", "1", "--resume"])
    assert other.exit_code == 1 and "other settings" in other.output


# --- scoring a cross-validated run: evaluate --fold, --ensemble ---------------------------------


@pytest.fixture(scope="module")
def cv_runs(fold_h5, tmp_path_factory) -> tuple[Path, Path]:
    """Two cross-validated runs of the same folds, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("cvruns")
    runs = []
    for seed in (0, 1):
        run = root / f"cv-s{seed}"
        args = ["train", str(fold_h5), str(run), "--fold", "all", "--seed", str(seed), *TRAIN]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        runs.append(run)
    return runs[0], runs[1]


def test_evaluate_all_folds_reproduces_the_training_scores(
    cv_runs, fold_h5, tmp_path: Path
) -> None:
    run = cv_runs[0]
    out = tmp_path / "eval"
    args = ["evaluate", str(run), str(fold_h5), str(out), "--fold", "all", "--subset", "val"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    cv = json.loads((run / "cv.json").read_text())
    folds = json.loads((out / "folds.json").read_text())
    got = [r["accuracy"] for r in folds["per_fold"]]
    assert got == pytest.approx([r["val_accuracy"] for r in cv["per_fold"]])
    assert [r["scored_fold"] for r in folds["per_fold"]] == [1, 2, 3, 0]
    assert folds["mean"]["accuracy"] == pytest.approx(cv["mean"]["val_accuracy"])
    pooled = json.loads((out / "metrics.json").read_text())
    assert pooled["n"] == len(open_dataset(fold_h5))  # every image once
    assert pooled["accuracy"] == pytest.approx(cv["pooled_val"]["accuracy"])
    assert pooled["cluster_bootstrap"]["unit"] == "groups"
    assert pooled["test_images"] == 0 and pooled["training_images"] == 0
    assert "mean ± std" in result.output and "cluster bootstrap" in result.output
    assert "test read" not in result.output


def test_evaluate_all_test_folds_scores_each_once_with_its_own_model(
    cv_runs, fold_h5, tmp_path: Path
) -> None:
    run = cv_runs[0]
    out = tmp_path / "eval"
    args = ["evaluate", str(run), str(fold_h5), str(out), "--fold", "all", "--subset", "test"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    folds = json.loads((out / "folds.json").read_text())
    assert [r["scored_fold"] for r in folds["per_fold"]] == [0, 1, 2, 3]
    single = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(run),
            str(fold_h5),
            str(tmp_path / "f2"),
            "--fold",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert single.exit_code == 0, single.output
    report = json.loads((tmp_path / "f2" / "metrics.json").read_text())
    assert folds["per_fold"][2]["accuracy"] == pytest.approx(report["accuracy"])
    pooled = json.loads((out / "metrics.json").read_text())
    assert pooled["n"] == pooled["test_images"] == len(open_dataset(fold_h5))
    assert "test read " in result.output


def test_evaluate_one_fold_takes_its_own_model_only(cv_runs, fold_h5, tmp_path: Path) -> None:
    run = cv_runs[0]
    runner = CliRunner()
    base = ["evaluate", "--device", "cpu", "--subset", "test"]
    by_folder = runner.invoke(
        main, [*base, str(run), str(fold_h5), str(tmp_path / "a"), "--fold", "2"]
    )
    assert by_folder.exit_code == 0, by_folder.output
    report = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert report["models"] == [str(run / "fold-2" / "model.pt")] and report["fold"] == 2
    assert report["n"] == report["test_images"] == Counter(open_dataset(fold_h5).folds)[2]
    val = runner.invoke(
        main, [*base[:-1], "val", str(run), str(fold_h5), str(tmp_path / "v"), "--fold", "2"]
    )
    assert val.exit_code == 0, val.output
    report = json.loads((tmp_path / "v" / "metrics.json").read_text())
    trained = json.loads((run / "fold-2" / "metrics.json").read_text())["val"]
    assert report["n"] == trained["n"] and report["accuracy"] == pytest.approx(trained["accuracy"])
    wrong = runner.invoke(
        main,
        [*base, str(run / "fold-1" / "model.pt"), str(fold_h5), str(tmp_path / "b"), "--fold", "2"],
    )
    assert wrong.exit_code == 2
    assert "--fold: " in wrong.output and "trained for test fold 1" in wrong.output
    assert not (tmp_path / "b").exists()
    train_part = runner.invoke(
        main, [*base[:-1], "train", str(run), str(fold_h5), str(tmp_path / "c"), "--fold", "2"]
    )
    assert train_part.exit_code == 2 and "--subset: " in train_part.output


def test_a_model_without_folds_is_not_scored_on_a_fold(fold_h5, make_raw, tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    expand(make_raw({"a": 5, "b": 5}), plain, ExpandOptions(target=30, size=32, workers=1))
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", str(plain), str(run), *TRAIN])
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(
        main, ["evaluate", str(run / "model.pt"), str(fold_h5), "--fold", "0", "--device", "cpu"]
    )
    assert result.exit_code == 2 and "records no cross-validation fold" in result.output
    assert "without --fold" in result.output


def test_an_ensemble_averages_the_probabilities(cv_runs, fold_h5) -> None:
    import dataclasses

    import torch

    from model.folds import fold_parts
    from model.scoring import check_compatible, load_fold_model, mean_probabilities

    cpu = torch.device("cpu")
    part = fold_parts(open_dataset(fold_h5), 1)["val"]
    models = [load_fold_model(run, 1, cpu) for run in cv_runs]
    singles = [mean_probabilities([m], part, cpu, 16, tta=False)[0] for m in models]
    both, labels = mean_probabilities(models, part, cpu, 16, tta=False)
    assert np.allclose(both, (singles[0] + singles[1]) / 2)
    assert np.allclose(both.sum(axis=1), 1.0) and len(labels) == len(part)
    renamed = dataclasses.replace(
        models[1],
        checkpoint=dataclasses.replace(models[1].checkpoint, class_names=["b", "a"]),
    )
    with pytest.raises(OptionError, match="same classes in the same order") as err:
        check_compatible([models[0], renamed])
    assert err.value.option == "ensemble"


def test_evaluate_ensemble_of_a_run_with_itself_changes_nothing(
    cv_runs, fold_h5, tmp_path: Path
) -> None:
    run = str(cv_runs[0])
    base = ["evaluate", run, str(fold_h5), "--fold", "all", "--subset", "val", "--device", "cpu"]
    alone = CliRunner().invoke(main, [*base, str(tmp_path / "one")])
    twice = CliRunner().invoke(main, [*base, str(tmp_path / "two"), "--ensemble", run])
    assert alone.exit_code == 0 and twice.exit_code == 0, twice.output
    assert "mean of 2 models" in twice.output
    one = json.loads((tmp_path / "one" / "folds.json").read_text())
    two = json.loads((tmp_path / "two" / "folds.json").read_text())
    assert two["per_fold"] == one["per_fold"] and len(two["runs"]) == 2


def test_recorded_fold_falls_back_to_the_run_metrics(cv_runs) -> None:
    import dataclasses

    from model.checkpoint import load_checkpoint
    from model.scoring import model_file, recorded_fold

    path = model_file(cv_runs[0], 3)
    ckpt = load_checkpoint(path)
    assert recorded_fold(ckpt, path) == (3, 4)  # written into the checkpoint
    older = dataclasses.replace(ckpt, info={"best_epoch": 1})  # models of earlier versions
    assert recorded_fold(older, path) == (3, 4)  # read from fold-3/metrics.json


def test_a_cv_run_folder_without_fold_says_to_give_one(cv_runs, fold_h5) -> None:
    result = CliRunner().invoke(
        main, ["evaluate", str(cv_runs[0]), str(fold_h5), "--device", "cpu"]
    )
    assert result.exit_code == 2
    assert "a cross-validated run" in result.output and "--fold all" in result.output
