"""The examples run end to end (tiny settings)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.child_process import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_end_to_end_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    """examples/end_to_end.py --tiny: synth, expand, verify, train, evaluate, all succeed.

    The example's five commands run in this process (tests.child_process.run_cli): each
    would otherwise be a Python of its own, train and evaluate importing torch, for
    seconds of imports. Its ``augtool`` helper, which starts them as processes, is
    run for real by the next test.
    """
    example = _load_example("end_to_end.py")
    calls: list[tuple[str, ...]] = []

    def augtool(*args: str) -> None:
        print("$ augtool " + " ".join(args), flush=True)
        calls.append(args)
        code, output = run_cli(*args)
        print(output, end="")
        if code != 0:
            raise subprocess.CalledProcessError(code, ["augtool", *args], output)

    monkeypatch.setattr(example, "augtool", augtool)
    monkeypatch.setattr(sys, "argv", ["end_to_end.py", "--tiny", "--workdir", str(tmp_path)])
    example.main()
    printed = capsys.readouterr().out
    assert [args[0] for args in calls] == ["synth", "expand", "verify", "train", "evaluate"]
    assert "Accuracy" in printed
    assert (tmp_path / "run" / "model.pt").is_file()
    assert (tmp_path / "data.h5").is_file()


def test_end_to_end_example_starts_augtool_as_a_process(capfd) -> None:
    example = _load_example("end_to_end.py")
    example.augtool("--version")
    out = capfd.readouterr().out
    assert out.startswith("$ augtool --version\n") and "version" in out.splitlines()[1]
    with pytest.raises(subprocess.CalledProcessError):
        example.augtool("no-such-command")
