"""Long library calls report progress (the CLI draws bars from it), and every -q help is true."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from augtool.tools.synth import synthesize
from cli import main
from model.evaluation import evaluate_run
from tests.h5data import make_blob_h5
from tests.reporters import Recorder


def test_synth_reports_one_step_per_image(tmp_path: Path) -> None:
    progress = Recorder()
    synthesize(tmp_path / "s", per_class={"ALL": 2, "AML": 1}, size=(96, 64), progress=progress)
    assert progress.phases == [("synth", 3)] and progress.steps == {"synth": 3}


@pytest.mark.parametrize("name", ["out", "out.h5"])
def test_verify_reports_hashing_and_the_replay(make_raw, tmp_path: Path, name: str) -> None:
    raw = make_raw()
    out = tmp_path / name
    expand(raw, out, ExpandOptions(target=30, size=40, workers=1))
    progress = Recorder()
    report = verify(out, regenerate_raw=raw, workers=1, reporter=progress)
    assert report.ok and report.regenerated
    names = [phase for phase, _ in progress.phases]
    assert names[0] == "verify" and "expand" in names
    assert dict(progress.phases)["verify"] == progress.steps["verify"] == 30
    assert progress.steps["expand"] == dict(progress.phases)["expand"] == 30
    if name.endswith(".h5"):
        assert progress.steps["verify replay"] == 30
    assert progress.warnings == []  # the replay's warnings repeat expand's: not passed on


def test_evaluate_reports_every_image(tmp_path: Path) -> None:
    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6, 6], size=32, seed=1)
    run = tmp_path / "run"
    args = ["train", str(data), str(run), "--epochs", "1", "--device", "cpu", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    progress = Recorder()
    result = evaluate_run(
        run / "model.pt", data, "test", None, "cpu", batch_size=4, progress=progress
    )
    assert progress.phases == [("evaluate", result.report["n"])]
    assert progress.steps["evaluate"] == result.report["n"]


def test_off_a_terminal_synth_prints_no_bar(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", str(tmp_path / "s"), "--per-class", "AML=2", "--size", "96x64"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("synth: ") and "\r" not in result.output
    quiet = runner.invoke(main, ["synth", str(tmp_path / "q"), "--per-class", "AML=1", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


@pytest.mark.parametrize("command", ["expand", "cells", "synth", "verify", "preview", "train"])
def test_every_quiet_help_says_what_quiet_hides(command: str) -> None:
    (quiet,) = [p.help for p in main.commands[command].params if p.name == "quiet"]
    has_bar = command in ("expand", "cells", "synth", "verify", "train")
    assert ("progress bar" in quiet) == has_bar, quiet
    if command == "train":
        assert "summary still prints" in quiet, quiet
    else:
        assert "summary" in quiet, quiet
