"""``augtool train`` tells the truth while it works: events, the terminal rule, curves.png."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from augtool.commands.terminal import TrainBar
from cli import main
from model.data import DeviceImages, compute_normalization
from model.networks import create_model
from model.report import curves_image
from model.run import train_run
from model.rundir import CURVES_NAME
from model.train import TrainConfig, TrainEvent, fit, steps_per_epoch
from tests.h5data import make_blob_h5

SIZE = 32


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.h5"
    return make_blob_h5(path, per_class=[12, 10, 14], size=SIZE, seed=5, val_fraction=0.2)


def _history(epochs: int, shift: float = 0.0) -> list[dict[str, float]]:
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e + shift,
            "train_accuracy": 1 - 0.5 / e,
            "val_loss": 1.2 / e,
            "val_accuracy": 0.9 - 0.5 / e,
        }
        for e in range(1, epochs + 1)
    ]


def test_fit_reports_every_batch_of_every_epoch_with_a_rising_clock() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.arange(20) % 3
    data = DeviceImages(images, labels, compute_normalization(images), torch.device("cpu"))
    config = TrainConfig.for_arch("leukemianet", epochs=3, batch_size=6)
    net = create_model("leukemianet", 3, SIZE, generator=torch.Generator().manual_seed(0))
    events: list[TrainEvent] = []
    fit(net, data, config, torch.Generator().manual_seed(0), progress=events.append)
    batches = steps_per_epoch(20, 6)
    assert batches == 3
    kinds = [e.kind for e in events]
    assert kinds == (["batch"] * batches + ["epoch"]) * config.epochs
    per_batch = [e for e in events if e.kind == "batch"]
    assert len(per_batch) == batches * config.epochs
    assert [(e.epoch, e.batch) for e in per_batch] == [
        (epoch, b) for epoch in (1, 2, 3) for b in (1, 2, 3)
    ]
    assert all(e.batches == batches and e.epochs == 3 for e in events)
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    # The train figures of the last batch are the epoch's own.
    for epoch in (1, 2, 3):
        last = [e for e in per_batch if e.epoch == epoch][-1]
        row = next(e.row for e in events if e.kind == "epoch" and e.epoch == epoch)
        loss, accuracy = last.train_so_far()
        assert loss == pytest.approx(row["train_loss"]) and accuracy == row["train_accuracy"]
        assert "test_accuracy" not in row and "test_loss" not in row


def test_train_run_clock_starts_with_the_command_and_ends_at_the_summary(small_h5, tmp_path):
    events: list[TrainEvent] = []
    config = TrainConfig.for_arch("leukemianet", epochs=2, batch_size=8, lr=0.01)
    started = time.perf_counter() - 5.0  # the command began 5 s ago (imports, parsing)
    result = train_run(
        small_h5, tmp_path / "run", config, "cpu", progress=events.append, started=started
    )
    assert events[0].kind == "load" and events[-1].kind == "done"
    assert events[0].elapsed >= 5.0  # counted from the command's start, not the first epoch
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed)
    assert events[-1].elapsed == result.seconds  # what the summary line prints
    assert result.seconds >= result.metrics["train_seconds"] + 5.0
    batches = steps_per_epoch(result.metrics["splits"]["train"], 8)
    assert sum(e.kind == "batch" for e in events) == batches * 2


def test_train_off_a_terminal_prints_one_plain_line_per_epoch(small_h5, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(small_h5), str(run), "--epochs", "2", "--batch-size", "8"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert progress[0] == f"loading {small_h5} (leukemianet) ..."
    assert [line.split(":")[0] for line in progress[1:]] == [
        "leukemianet epoch 1/2",
        "leukemianet epoch 2/2",
    ]
    history = list(csv.DictReader((run / "history.csv").open()))
    for line, row in zip(progress[1:], history, strict=True):
        assert f"loss {float(row['train_loss']):.3f}, train accuracy" in line
        assert f"val accuracy {100 * float(row['val_accuracy']):.1f}%" in line
        assert line.endswith(" elapsed") and "test" not in line
    assert "\r" not in result.stderr and "batches" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{run}: leukemianet on cpu, 2 epochs (kept epoch ")
    assert lines[1].startswith("  val: accuracy ")
    assert lines[2].endswith(f"augtool evaluate {run} {small_h5} --subset test")
    assert len(lines) == 3
    seconds = float(lines[0].rsplit(", ", 1)[1].removesuffix(" s"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert seconds + 0.05 >= metrics["train_seconds"]  # printed to a tenth of a second
    quiet = CliRunner().invoke(main, [*args, "--device", "cpu", "-q", "--overwrite"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_the_history_is_on_disk_after_every_epoch(small_h5, tmp_path):
    """While a run trains, its hidden staging folder holds the history of the epochs done."""
    run = tmp_path / "run"
    seen: list[tuple[int, list[str], bool]] = []

    def look(event: TrainEvent) -> None:
        if event.kind == "epoch":
            stage = tmp_path / ".run.partial"
            rows = list(csv.DictReader((stage / "history.csv").open()))
            curves = (stage / CURVES_NAME).read_bytes().startswith(b"\x89PNG")
            seen.append((event.epoch, [r["epoch"] for r in rows], curves))

    config = TrainConfig.for_arch("leukemianet", epochs=3, batch_size=8, lr=0.01)
    train_run(small_h5, run, config, "cpu", progress=look)
    assert seen == [(1, ["1"], True), (2, ["1", "2"], True), (3, ["1", "2", "3"], True)]
    assert not (tmp_path / ".run.partial").exists() and (run / "history.csv").is_file()


def test_train_writes_curves_png_of_its_history(small_h5, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(small_h5), str(run), "--epochs", "2", "--batch-size", "8"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    png = (run / CURVES_NAME).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (384, 960, 3)
    assert not list(run.glob("*.partial")) and not list(tmp_path.glob(".*"))


def test_curves_differ_when_histories_differ() -> None:
    a, b = curves_image(_history(5)), curves_image(_history(5, shift=0.3))
    assert a.shape == b.shape == (384, 960, 3) and a.dtype == np.uint8
    assert (a != b).any(axis=2).sum() > 100  # the loss line moved
    assert np.array_equal(a, curves_image(_history(5)))  # same history, same picture
    train_only = [{k: v for k, v in r.items() if not k.startswith("val")} for r in _history(5)]
    assert not np.array_equal(a, curves_image(train_only))  # no val line without val
    assert curves_image(_history(1)).shape == a.shape  # one epoch: dots, no crash
    with pytest.raises(ValueError, match="no epochs"):
        curves_image([])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_shows_epochs_batches_val_and_the_true_clock(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = TrainBar("cells.h5", quiet=False)
    row = {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9}
    bar(TrainEvent("load", 3.2, epochs=2), "cellnet")
    for epoch in (1, 2):
        for batch in (1, 2, 3):
            bar(TrainEvent("batch", 60.0 * epoch + batch, epoch, 2, batch, 3), "cellnet")
        done = TrainEvent("epoch", 60.0 * epoch + 4, epoch, 2, 3, 3, {"epoch": epoch, **row})
        bar(done, "cellnet")
    bar(TrainEvent("done", 190.0, 2, 2), "cellnet")
    frames = terminal.getvalue().replace("\r", "\n")
    assert frames.startswith("loading cells.h5 (cellnet) ...\n")
    assert "cellnet epoch 1/2:" in frames and "cellnet epoch 2/2:" in frames
    assert "3/3 batches" in frames and "val (epoch 1) loss 0.400 acc 90.0%" in frames
    assert "2:04 elapsed" in frames  # the event's clock (124 s), not the bar's own
    assert "test" not in frames
    quiet = TrainBar("cells.h5", quiet=True)
    assert not quiet.enabled
