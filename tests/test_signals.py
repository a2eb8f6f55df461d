"""Stop signals end a command with exit 130 wherever they land."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.child_process import REPO


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell job would ignore SIGINT


def _run_child(name: str, where: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.interrupt_child", name, where],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_default_sigint,
    )


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_inside_a_string_exec_exits_130(name: str) -> None:
    """CPython kills a ``-m`` process by SIGINT at exit after a plain KeyboardInterrupt left a
    string ``exec`` (caught or not); the commands' interrupt must not be one (exit -2 before)."""
    proc = _run_child(name, "exec")
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert "interrupted; nothing final was written" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_during_an_import_waits_for_the_import(name: str) -> None:
    """Raised inside a module's import, the interrupt broke the module (h5py's Cython init
    turned it into ImportError or KeyError); it now waits for the next check."""
    proc = _run_child(name, "import")
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stdout == "imported whole: True\n"
    assert "interrupted; nothing final was written" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_train_run_whose_interrupt_was_lost_stops_at_the_next_batch(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raise swallowed in a ``__del__`` or deferred under an import leaves only the flag;
    training checks it on every batch (before, a run could go on to its last epoch)."""
    from click.testing import CliRunner

    import cli
    import model.run
    from augtool.commands import exit_codes as cli_errors
    from tests.h5data import make_blob_h5

    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6, 6], size=32, seed=1)
    real = model.run.compute_normalization

    def normalization(*args: object, **kwargs: object) -> object:
        cli_errors._STOP.set()  # the handler ran; its raise was lost
        return real(*args, **kwargs)

    monkeypatch.setattr(model.run, "compute_normalization", normalization)
    run = tmp_path / "run"
    args = ["train", str(data), str(run), "--epochs", "50", "--device", "cpu"]
    try:
        result = CliRunner().invoke(cli.main, args)
    finally:
        cli_errors._STOP.clear()
    assert result.exit_code == 130, result.output
    assert "interrupted; nothing final was written" in result.output
    assert not run.exists()
