"""expand on the GPU machine's packages (../shared/DEVICE.md): no tqdm, no Pillow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Runs the CLI with tqdm and Pillow made unimportable, as on the device machine.
BLOCKED = (
    "import sys; sys.modules['tqdm'] = None; sys.modules['PIL'] = None; "
    "import cli; cli.main(sys.argv[1:], prog_name='augtool')"
)


def test_expand_warns_and_writes_without_tqdm_or_pillow(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (raw / cls).mkdir(parents=True)
        for i in range(4):
            name = f"smear{i}_{cls}.jpg" if i else f"other_{cls}.jpg"
            image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            cv2.imwrite(str(raw / cls / name), image)
    out = tmp_path / "out.h5"
    args = [str(raw), str(out), "--target", "16", "--size", "32", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, "expand", *args, "--group-regex", r"smear\d+"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr  # a partial --group-regex match warns, without tqdm
    assert out.is_file()
