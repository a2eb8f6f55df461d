"""A test set that cannot be read by accident.

Training reads train and val only; every ``evaluate`` of test images is one line in
the dataset's ledger (:mod:`augtool.store.ledger`), for an HDF5 file and a folder alike;
data with folds is trained per fold (or on every image, knowingly); figures on a
model's own training images say they are no estimate.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.store import ledger
from augtool.store.ledger import (
    TestRead,
    append_test_read,
    dataset_sha256,
    file_sha256,
    ledger_path,
    read_ledger,
    read_test_reads,
)
from cli import main

TRAIN = ("--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--device", "cpu")


def _read(n: int = 0, content: str = "abc", **changes: Any) -> TestRead:
    fields: dict[str, Any] = {
        "time": f"2026-12-03T10:{n:02d}:00Z",
        "dataset": "d.h5",
        "dataset_sha256": content,
        "subset": "test",
        "folds": None,
        "models": [{"path": "run/model.pt", "sha256": "0" * 64}],
        "figures": {"n": 10, "accuracy": 0.5 + n / 100},
    }
    return TestRead(**{**fields, **changes})


# --- the ledger file ------------------------------------------------------------------------------


def test_the_ledger_sits_beside_the_dataset_for_a_file_and_a_folder(tmp_path: Path) -> None:
    assert ledger_path(tmp_path / "cells5.h5") == tmp_path / "cells5.h5.test-reads.jsonl"
    assert ledger_path(f"{tmp_path}/out/") == tmp_path / "out.test-reads.jsonl"
    assert ledger_path(tmp_path / "out" / ".") == tmp_path / "out.test-reads.jsonl"


def test_reads_come_back_in_order_with_their_lines(tmp_path: Path) -> None:
    data = tmp_path / "d.h5"
    assert read_test_reads(data) == []  # no ledger yet: no reads
    first = append_test_read(data, _read(1))
    second = append_test_read(data, _read(2, folds=[0, 1, 2]))
    assert (first.line, second.line) == (1, 2)
    reads = read_test_reads(data)
    assert reads == [_read(1), _read(2, folds=[0, 1, 2])]
    assert [r.line for r in reads] == [1, 2]
    assert "folds 0-2" in ledger.describe(reads[1]) and "52.0 %" in ledger.describe(reads[1])


def test_a_damaged_line_is_reported_and_the_next_read_stays_whole(tmp_path: Path) -> None:
    data = tmp_path / "d.h5"
    append_test_read(data, _read(1))
    with ledger_path(data).open("ab") as fh:
        fh.write(b'{"time": "2026-12-03T10:')  # an append cut short: no newline
    after = append_test_read(data, _read(3))
    with ledger_path(data).open("a") as fh:
        fh.write('["a list"]\n{"time": "x"}\n\n')
    found = read_ledger(data)
    assert [r.figures["accuracy"] for r in found.reads] == [0.51, 0.53]
    assert after.line == 3 and [r.line for r in found.reads] == [1, 3]
    assert found.problems == [
        "line 2: not a JSON line (cut short or edited)",
        "line 4: not a JSON object",
        "line 5: not a test read (no dataset_sha256, subset, models, figures)",
    ]


def _append_many(args: tuple[str, int]) -> None:
    data, worker = args
    for i in range(25):
        append_test_read(data, _read(i, content=f"w{worker}"))


def test_appends_from_several_processes_are_whole_lines(tmp_path: Path) -> None:
    data = str(tmp_path / "d.h5")
    with multiprocessing.get_context("fork").Pool(3) as pool:
        pool.map(_append_many, [(data, w) for w in range(3)])
    found = read_ledger(data)
    assert found.problems == [] and len(found.reads) == 75
    assert sorted(r.line for r in found.reads) == list(range(1, 76))
    for w in range(3):
        assert len(found.reads_of(f"w{w}")) == 25


def test_the_content_hash_follows_images_splits_and_folds(tmp_path: Path) -> None:
    from tests.h5data import make_blob_h5

    a = make_blob_h5(tmp_path / "a.h5", per_class=[4, 4, 4], size=16, seed=1, val_fraction=0.25)
    b = make_blob_h5(tmp_path / "b.h5", per_class=[4, 4, 4], size=16, seed=1, val_fraction=0.25)
    assert dataset_sha256(a) == dataset_sha256(b)  # same records, another path
    with h5py.File(b, "r+") as fh:
        codes = fh["split"][()]
        codes[0], codes[-1] = codes[-1], codes[0]
        fh["split"][...] = codes
    assert dataset_sha256(a) != dataset_sha256(b)  # one image moved to another split


# --- training reads train and val only ----------------------------------------------------------


@pytest.fixture
def split_h5(tmp_path: Path) -> Path:
    from tests.h5data import make_blob_h5

    return make_blob_h5(tmp_path / "d.h5", per_class=[8, 8, 8], size=32, seed=2, val_fraction=0.25)


@pytest.fixture
def fold_h5(make_raw, tmp_path: Path) -> Path:
    out = tmp_path / "folds.h5"
    expand(make_raw({"a": 6, "b": 6}), out, ExpandOptions(target=36, size=32, workers=1, folds=3))
    return out


def _keys(value: object, trail: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield f"{trail}{key}"
            yield from _keys(inner, f"{trail}{key}.")
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner, trail)


#: Keys about test images that hold no figure: how many there are, which fold they are.
NOT_FIGURES = {"splits.test", "cv.test_fold", "per_fold.test_images", "per_fold.fold"}


def _test_figures(run: Path) -> list[str]:
    """Every mention of a test figure in a run folder's JSON, CSV and Markdown files."""
    found = []
    for path in sorted(run.rglob("*")):
        if path.suffix == ".json":
            keys = set(_keys(json.loads(path.read_text())))
            found += [
                f"{path.name}: {k}" for k in sorted(keys) if "test" in k and k not in NOT_FIGURES
            ]
        elif path.suffix in (".csv", ".md"):
            text = path.read_text().lower()
            for word in ("test accuracy", "test macro", "test_accuracy", "test_loss", "test:"):
                if word in text:
                    found.append(f"{path.name}: {word}")
    return found


def test_train_never_scores_test_and_says_how_to(split_h5: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(split_h5), str(run), *TRAIN])
    assert result.exit_code == 0, result.output
    assert _test_figures(run) == []
    *figures, last = result.stdout.splitlines()
    shown = [line.replace(str(tmp_path), "TMP") for line in figures + result.stderr.splitlines()]
    assert len(shown) == 5 and not [line for line in shown if "test" in line]  # log and summary
    assert last == (
        "test split not scored; once the configuration is final, score it once: "
        f"augtool evaluate {run} {split_h5} --subset test"
    )
    assert not ledger_path(split_h5).exists()  # training read no test image
    # the scan sees a test figure where there is one
    (run / "extra.json").write_text('{"test": {"accuracy": 0.9}}')
    assert _test_figures(run) == ["extra.json: test", "extra.json: test.accuracy"]


def test_train_all_folds_writes_no_test_figure_anywhere(fold_h5: Path, tmp_path: Path) -> None:
    runs = tmp_path / "cv"
    result = CliRunner().invoke(main, ["train", str(fold_h5), str(runs), "--fold", "all", *TRAIN])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in runs.iterdir()) == [
        "cv.json",
        "cv.md",
        "fold-0",
        "fold-1",
        "fold-2",
    ]
    assert _test_figures(runs) == []
    shown = result.output.replace(str(tmp_path), "TMP").lower()
    assert "test accuracy" not in shown and "test macro" not in shown and "test:" not in shown
    assert result.stdout.splitlines()[-1].endswith(
        f"augtool evaluate {runs} {fold_h5} --fold all --subset test"
    )
    assert not ledger_path(fold_h5).exists()


# --- every test read recorded -------------------------------------------------------------------


def _evaluate(model: Path, data: Path, out: Path, *more: str) -> Any:
    result = CliRunner().invoke(
        main, ["evaluate", str(model), str(data), str(out), "--device", "cpu", *more]
    )
    assert result.exit_code == 0, result.output
    return result


def _lines(data: Path) -> int:
    path = ledger_path(data)
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("form", ["hdf5", "folder"])
def test_each_test_read_adds_one_record_and_a_val_read_none(
    make_raw, tmp_path: Path, form: str
) -> None:
    data = tmp_path / ("d.h5" if form == "hdf5" else "d")
    options = ExpandOptions(target=48, size=32, workers=1, split="0.5,0.25,0.25")
    expand(make_raw({"a": 8, "b": 8}), data, options)
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", str(data), str(run), *TRAIN])
    assert trained.exit_code == 0, trained.output
    before = {p.name for p in data.rglob("*")} if form == "folder" else data.read_bytes()

    first = _evaluate(run / "model.pt", data, tmp_path / "e1", "--subset", "test")
    assert _lines(data) == 1
    assert "test read 1 of this dataset" in first.output
    assert "its test images were not read before" in first.output
    _evaluate(run / "model.pt", data, tmp_path / "v", "--subset", "val")
    assert _lines(data) == 1  # a val read is not recorded
    second = _evaluate(run, data, tmp_path / "e2")  # the default subset is test
    assert _lines(data) == 2
    out = second.output
    assert "test read 2 of this dataset" in out and "read before:" in out
    assert out.index("test read 2") < out.index("True positive")  # above the figures

    reads = read_test_reads(data)
    figures = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert [r.subset for r in reads] == ["test", "test"] and reads[0].folds is None
    assert reads[0].figures["accuracy"] == figures["accuracy"]
    assert reads[0].figures["n"] == figures["n"] == figures["test_images"]
    assert reads[0].dataset_sha256 == dataset_sha256(data) == figures["dataset_sha256"]
    model = run / "model.pt"
    assert reads[0].models == [{"path": str(model), "sha256": file_sha256(model)}]
    assert reads[0].time.endswith("Z") and reads[0].command_line.startswith("augtool ")
    assert ledger.describe(reads[0]) in out  # the earlier read is listed
    # the dataset itself is as it was: verify finds nothing extra
    after = {p.name for p in data.rglob("*")} if form == "folder" else data.read_bytes()
    assert after == before
    verified = CliRunner().invoke(main, ["verify", str(data)])
    assert verified.exit_code == 0, verified.output


def test_a_test_read_that_cannot_be_recorded_is_refused_first(
    split_h5: Path, tmp_path: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.access
    ledger_file = ledger_path(split_h5)

    def no_write(path: Any, mode: int, **kw: Any) -> bool:
        if mode == os.W_OK and Path(path) in (ledger_file, ledger_file.parent):
            return False
        return real(path, mode, **kw)

    monkeypatch.setattr(ledger.os, "access", no_write)
    out = tmp_path / "eval"
    args = ["evaluate", str(trained_run), str(split_h5), str(out), "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "cannot record the test read" in result.output and "copy the dataset" in result.output
    assert not out.exists() and not ledger_file.exists()
    val = CliRunner().invoke(main, [*args, "--subset", "val"])
    assert val.exit_code == 0, val.output  # nothing to record


# --- data with folds is trained per fold ------------------------------------------------------


def test_train_refuses_fold_data_without_fold(fold_h5: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    result = CliRunner().invoke(main, ["train", str(fold_h5), str(run), *TRAIN])
    assert result.exit_code == 2
    for flag in ("--fold K", "--fold all", "--all-images"):
        assert flag in result.output
    assert "Traceback" not in result.output
    assert not run.exists() and not list(tmp_path.glob(".r*"))
    both = CliRunner().invoke(
        main, ["train", str(fold_h5), str(run), "--all-images", "--fold", "0", *TRAIN]
    )
    assert both.exit_code == 2 and "--all-images" in both.output
    patience = CliRunner().invoke(
        main, ["train", str(fold_h5), str(run), "--all-images", "--patience", "2", *TRAIN]
    )
    assert patience.exit_code == 2 and "--patience" in patience.output


def test_all_images_trains_on_every_image_and_its_figures_are_flagged(
    fold_h5: Path, tmp_path: Path
) -> None:
    run = tmp_path / "final"
    result = CliRunner().invoke(main, ["train", str(fold_h5), str(run), "--all-images", *TRAIN])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    n = sum(1 for _ in h5py.File(fold_h5)["labels"])
    assert metrics["all_images"] is True and metrics["splits"] == {"all": n}
    assert "val" not in metrics and "test" not in metrics
    assert result.stdout.splitlines()[-1].startswith("no test images:")
    scored = _evaluate(run, fold_h5, tmp_path / "e", "--subset", "all")
    lines = scored.output.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("warning: "))
    assert lines[warning].startswith(f"warning: {n} of the {n} images scored trained the model")
    assert "not an estimate of accuracy" in lines[warning]
    assert warning < next(i for i, line in enumerate(lines) if "True positive" in line)
    report = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert report["training_images"] == n
    assert _lines(fold_h5) == 1  # every image of fold data is some fold's test image


def test_a_split_model_on_its_own_train_images_says_so(
    trained_run: Path, tiny_h5: Path, tmp_path: Path
) -> None:
    train = _evaluate(trained_run, tiny_h5, tmp_path / "t", "--subset", "train")
    report = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert report["training_images"] == report["n"] > 0
    assert train.output.startswith(f"warning: {report['n']} of the {report['n']} images scored")
    every = _evaluate(trained_run, tiny_h5, tmp_path / "a", "--subset", "all")
    report = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert 0 < report["training_images"] < report["n"]  # train images among val and test
    assert "not an estimate of accuracy" in every.output
    val = _evaluate(trained_run, tiny_h5, tmp_path / "v", "--subset", "val")
    assert "warning" not in val.output and "test read" not in val.output


def test_a_fold_model_without_fold_scores_its_own_fold(fold_h5: Path, tmp_path: Path) -> None:
    run = tmp_path / "f1"
    trained = CliRunner().invoke(main, ["train", str(fold_h5), str(run), "--fold", "1", *TRAIN])
    assert trained.exit_code == 0, trained.output
    implicit = _evaluate(run / "model.pt", fold_h5, tmp_path / "a")
    model = run / "model.pt"
    assert implicit.output.splitlines()[0] == (
        f"{model} was trained for test fold 1: scoring that fold's test images (as with --fold 1)"
    )
    explicit = _evaluate(run / "model.pt", fold_h5, tmp_path / "b", "--fold", "1")
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["confusion"] == b["confusion"] and a["fold"] == b["fold"] == 1
    assert a["fold_from_model"] and not b["fold_from_model"]
    assert a["training_images"] == 0 and a["test_images"] == a["n"]
    assert [r.folds for r in read_test_reads(fold_h5)] == [[1], [1]]
    assert "test read 2 of this dataset" in explicit.output
    val = _evaluate(run / "model.pt", fold_h5, tmp_path / "c", "--subset", "val")
    assert "scoring that fold's val images" in val.output and _lines(fold_h5) == 2
