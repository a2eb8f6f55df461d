"""Forked workers (augtool.engine.pool) and the sources the scan keeps for the render."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.engine import pool
from augtool.engine import scan as sources
from augtool.engine.backends import LocalBackend
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.render import Rendered, RenderSettings, SourceTask, render_source
from augtool.errors import ClusterError, InputError, OptionError
from augtool.store.decode import choose_reduction, decode_rgb
from tests.conftest import write_upscaled_smears

pytestmark = pytest.mark.skipif(not pool.fork_available(), reason="workers are forked on Linux")

#: Sources per class of :func:`raw`.
PER_CLASS = {"ALL": 4, "AML": 3, "normal": 5}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 sources of 480x360 (reduced 4x for a 32-pixel output), written once for the module;
    every test only reads them.

    Each is a 120x90 smear scaled up 4x: drawn at 480x360 it took 0.2 CPU-seconds an
    image, 2.5 per test that built its own.
    """
    root = tmp_path_factory.mktemp("pool") / "raw"
    return write_upscaled_smears(root, PER_CLASS, (480, 360))


def _square_or_fail(x: int) -> int:
    if x == 7:
        raise InputError(f"item {x} is bad")
    return x * x


def _pid(_: int) -> int:
    time.sleep(0.01)
    return os.getpid()


def _die_on_five(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def _alive(pids: Sequence[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_results_come_in_order_from_several_processes() -> None:
    items = list(range(40))
    assert list(pool.run_ordered(lambda x: x * x, items, 3)) == [x * x for x in items]
    pids = set(pool.run_ordered(_pid, items, 2))
    assert len(pids) == 2 and os.getpid() not in pids


def test_an_exception_in_a_worker_reaches_the_caller_unchanged() -> None:
    with pytest.raises(InputError, match="item 7 is bad"):
        list(pool.run_ordered(_square_or_fail, list(range(20)), 2))


def test_a_worker_that_dies_is_reported_not_waited_for() -> None:
    with pytest.raises(ClusterError, match=r"died \(killed by signal 9\) while working on 5"):
        list(pool.run_ordered(_die_on_five, list(range(20)), 2))


def test_workers_end_when_the_caller_stops_early() -> None:
    results = pool.run_ordered(_pid, list(range(50)), 2)
    pids = {next(results) for _ in range(3)}
    results.close()
    assert pids and not _alive(sorted(pids))


def test_workers_ignore_sigint_and_end_after_the_run() -> None:
    results = pool.run_ordered(_pid, list(range(30)), 2)
    pids = {next(results) for _ in range(4)}
    for pid in pids:
        os.kill(pid, signal.SIGINT)  # a Ctrl-C reaches the whole process group
    pids |= set(results)
    assert len(pids) == 2 and not _alive(sorted(pids))


def test_the_scan_keeps_the_working_image_it_checked(raw: Path) -> None:
    kept = sources.scan(raw, workers=2, keep_size=32)
    assert len(kept.pixels) == len(kept.sources)
    for src in kept.sources:
        data = (raw / src.path).read_bytes()
        reduction = choose_reduction(src.width, src.height, 32)
        assert reduction == 4
        expected = decode_rgb(data, reduction)
        np.testing.assert_array_equal(kept.pixels[(src.sha256, reduction)], expected)
    plain = sources.scan(raw, workers=2)
    assert plain.pixels == {} and plain.sources == kept.sources


def test_the_scan_keeps_no_more_than_its_budget(raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = 120 * 90 * 3  # a source at 1/4
    monkeypatch.setattr(sources, "KEEP_BUDGET", 5 * one)
    assert len(sources.scan(raw, workers=1, keep_size=32).pixels) == 5
    assert len(sources.scan(raw, workers=2, keep_size=32).pixels) <= 5


class _Elsewhere:
    """A backend that is not local: the scan keeps nothing, every source is decoded again."""

    def __init__(self) -> None:
        self.local = LocalBackend(1)

    def render(self, tasks: Sequence[SourceTask], settings: RenderSettings) -> Iterator:
        return self.local.render(tasks, settings)


def _tree(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "augtool.json"
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_outputs_from_kept_sources_are_the_bytes_of_decoded_ones(
    raw: Path, tmp_path: Path, workers: int
) -> None:
    opts = ExpandOptions(size=32, target=40, pca_count=6, workers=workers)
    expand(raw, tmp_path / "kept", opts)
    expand(raw, tmp_path / "decoded", opts, backend=_Elsewhere())
    assert _tree(tmp_path / "kept") == _tree(tmp_path / "decoded")


def test_render_source_uses_kept_pixels_and_leaves_them_unchanged(raw: Path) -> None:
    from augtool.engine.render import preloaded

    scanned = sources.scan(raw, workers=1, keep_size=32)
    src = scanned.sources[0]
    task = SourceTask(str(raw / src.path), src.sha256, src.width, src.height, ((0, 0, "original"),))
    settings = RenderSettings(size=32, seed=0)
    plain = render_source(task, settings)
    marked = {key: np.full_like(img, 7) for key, img in scanned.pixels.items()}
    with preloaded(marked):
        used: list[Rendered] = render_source(task, settings)
    assert used[0].sha256 != plain[0].sha256  # the kept pixels were used, not the file
    assert all((img == 7).all() for img in marked.values())
    assert render_source(task, settings)[0].sha256 == plain[0].sha256  # and forgotten after


def _resize(_: int) -> tuple[int, ...]:
    return cv2.resize(np.zeros((600, 800, 3), np.uint8), (99, 77)).shape


def test_workers_fork_safely_after_opencv_used_its_threads_here() -> None:
    """A child forked while OpenCV's pool had sleeping threads hung in setNumThreads."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the forked workers hung")

    big = np.zeros((1500, 2000, 3), np.uint8)
    before = cv2.getNumThreads()
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        for _ in range(3):
            cv2.resize(big, (700, 500), interpolation=cv2.INTER_AREA)  # starts the pool's threads
            time.sleep(0.2)  # which then sleep on a condition a child cannot destroy
            assert list(pool.run_ordered(_resize, list(range(6)), 2)) == [(77, 99, 3)] * 6
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert cv2.getNumThreads() == before


def _refuse(x: int) -> int:
    raise OptionError("pca_std", "must be >= 0, got {pca_k}", refs=True)


def test_an_option_error_in_a_worker_keeps_its_option_and_references() -> None:
    with pytest.raises(OptionError) as caught:
        list(pool.run_ordered(_refuse, [1, 2, 3], 2))
    assert caught.value.option == "pca_std"
    assert caught.value.render(lambda p: f"--{p}") == "--pca_std: must be >= 0, got --pca_k"
