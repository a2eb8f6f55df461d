"""checks/gpu_check.sh in its --cpu dry mode: it runs, and its report has every section."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from checks.gpu_check import SECTIONS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_mode_writes_every_section(tmp_path):
    report = tmp_path / "report.md"
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(out))
    done = subprocess.run(
        ["bash", str(ROOT / "checks" / "gpu_check.sh"), "--cpu", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    assert (out / "report.md").read_text() == text
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    assert "FAILED" not in text
    for figure in ("| torch |", "| library (uint8 on device) |", "pca_jitter", "test accuracy"):
        assert figure in text, figure
    assert "path streamed" in text


def test_gpu_check_refuses_without_cuda_unless_dry(tmp_path, monkeypatch, capsys):
    """Without CUDA and without --cpu: exit 2, the advice, no report.

    The check runs in this process (gpu_check.sh only ``exec``s gpu_check.py, whose
    status it returns, as the dry-mode test shows); a second Python that imports
    torch to find no GPU would cost seconds.
    """
    import torch

    from checks import gpu_check

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--report", str(tmp_path / "r.md")])
    assert gpu_check.main() == 2
    assert "--cpu" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_gpu_check_sh_refuses_an_unknown_option(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(ROOT / "checks" / "gpu_check.sh"), "--gpu", str(tmp_path / "r.md")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "unknown option --gpu" in done.stderr
    assert not (tmp_path / "r.md").exists()
