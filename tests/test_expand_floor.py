"""benchmarks/expand_floor.py measures what it says: its render makes expand's images.

``bench_expand.py --only floor`` compares ``augtool expand`` with the floor and
with ``expand_floor.py --render``, augtool's own rendering without its
bookkeeping. That comparison means something only while the render makes the
very images ``expand`` makes; these runs keep it so as the code changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from tests.child_process import REPO, run_cli
from tests.conftest import write_upscaled_smears

FLOOR = REPO / "benchmarks" / "expand_floor.py"
COUNT = 60
SIZE = 64


def floor_run(raw: Path, out: Path, *flags: str) -> None:
    """``expand_floor.py RAW OUT`` in a new process, as ``bench_expand.py`` runs it."""
    cmd = [sys.executable, str(FLOOR), str(raw), str(out), "--count", str(COUNT)]
    done = subprocess.run(
        [*cmd, "--size", str(SIZE), "--workers", "2", *flags], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def images(out: Path) -> list[str] | bytes:
    """The sorted hashes of a folder's PNG files, or an HDF5 file's image rows in order."""
    if out.suffix == ".h5":
        with h5py.File(out, "r") as fh:
            return fh["images"][:].tobytes()
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.png"))


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 600x450 at output 64: decoded at half size, then halved again by the resize.
    root = tmp_path_factory.mktemp("floor") / "raw"
    return write_upscaled_smears(root, {"ALL": 3, "AML": 2, "normal": 3}, (600, 450))


@pytest.mark.parametrize("suffix", ["", ".h5"], ids=["folder", "hdf5"])
def test_the_render_makes_the_images_expand_makes(raw: Path, tmp_path: Path, suffix: str) -> None:
    expanded, rendered = tmp_path / f"expand{suffix}", tmp_path / f"render{suffix}"
    code, output = run_cli(
        "expand", raw, expanded, "--target", COUNT, "--size", SIZE, "--split", "none", "--quiet"
    )
    assert code == 0, output
    floor_run(raw, rendered, *(["--hdf5"] if suffix else []), "--render")
    assert images(rendered) == images(expanded)
    if not suffix:
        assert len(images(rendered)) == COUNT


def test_the_floor_and_the_render_at_output_size_make_other_images(
    raw: Path, tmp_path: Path
) -> None:
    floor_run(raw, tmp_path / "render", "--render")
    floor_run(raw, tmp_path / "floor")
    floor_run(raw, tmp_path / "at-output", "--render", "--at-output-size")
    rendered = images(tmp_path / "render")
    for way in ("floor", "at-output"):
        made = images(tmp_path / way)
        assert len(made) == COUNT
        assert made != rendered, way
    # The floor writes each source's one resized image for every output of that source.
    assert len(set(images(tmp_path / "floor"))) == 8


def test_at_output_size_needs_render(raw: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, str(FLOOR), str(raw), str(tmp_path / "x"), "--at-output-size"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert "--at-output-size needs --render" in done.stderr
    assert not (tmp_path / "x").exists()
