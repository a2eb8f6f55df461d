"""Off a terminal, expand, cells and verify print plain progress lines a log file can show."""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import augtool.commands.terminal as terminal
from augtool.progress import LogLines
from cli import main

LINE = re.compile(
    r"^(?P<phase>[\w ]+): (?P<done>\d+)/(?P<total>\d+) \((?P<pct>\d+) %\), "
    r"(?P<rate>[\d.]+/(?:s|min)), (?:elapsed [\w ]+, ETA (?P<eta>[\w ]+)|done in [\w ]+)$"
)


class FlushLog(io.StringIO):
    """A non-terminal stream that records what had been flushed at each write."""

    def __init__(self) -> None:
        super().__init__()
        self.unflushed_writes = 0
        self._pending = False

    def write(self, text: str) -> int:
        if self._pending:
            self.unflushed_writes += 1
        self._pending = True
        return super().write(text)

    def flush(self) -> None:
        self._pending = False
        super().flush()

    def isatty(self) -> bool:
        return False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(total: int, step_seconds: float, grace: float = 5.0) -> tuple[list[str], FlushLog]:
    clock, stream = Clock(), FlushLog()
    lines = LogLines(stream, clock=clock, grace=grace)
    lines.start("expand", total)
    for _ in range(total):
        clock.now += step_seconds
        lines.advance(1)
    return stream.getvalue().splitlines(), stream


def test_a_fast_phase_prints_a_line_every_tenth() -> None:
    printed, stream = _run(200, 0.5)  # 100 s in all: tenths come every 10 s
    done = [int(LINE.match(line)["done"]) for line in printed]
    # the first 5 s (10 steps) are quiet; then one line per tenth, the last one at 200
    assert done == [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
    assert stream.unflushed_writes == 0


def test_a_slow_phase_prints_a_line_every_30_seconds() -> None:
    printed, _ = _run(100, 6.0)  # 600 s in all: a tenth takes 60 s, so 30 s comes first
    done = [int(LINE.match(line)["done"]) for line in printed]
    assert done == list(range(5, 101, 5))  # every 5 steps = 30 s


def test_the_line_says_count_percent_rate_and_eta() -> None:
    printed, _ = _run(200, 0.5)
    first = LINE.match(printed[0])
    assert first is not None, printed[0]
    assert (first["phase"], first["done"], first["total"], first["pct"]) == (
        "expand",
        "20",
        "200",
        "10",
    )
    assert first["rate"] == "2.0/s" and first["eta"] == "1 min 30 s"
    assert printed[-1] == "expand: 200/200 (100 %), 2.0/s, done in 1 min 40 s"


def test_a_phase_done_within_the_grace_prints_nothing() -> None:
    printed, _ = _run(1000, 0.001)
    assert printed == []


def test_a_phase_longer_than_the_grace_prints_its_end() -> None:
    clock, stream = Clock(), FlushLog()
    lines = LogLines(stream, clock=clock)
    lines.start("verify", 10)
    clock.now += 7.0
    lines.advance(10)
    assert stream.getvalue() == "verify: 10/10 (100 %), 1.4/s, done in 7 s\n"


def test_rates_under_one_a_second_are_per_minute() -> None:
    printed, _ = _run(10, 40.0)
    assert printed[0].startswith("expand: 1/10 (10 %), 1.5/min, elapsed 40 s, ETA 6 min 00 s")


@pytest.mark.parametrize("command", ["expand", "verify", "cells"])
def test_off_a_terminal_the_commands_print_lines(
    command: str, make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CliRunner's stderr is no terminal: the commands print lines (grace 0 here)."""
    monkeypatch.setattr(terminal, "LogLines", functools.partial(LogLines, grace=0.0))
    runner = CliRunner()
    if command == "cells":
        smears, annotations = _voc_smears(tmp_path)
        args = ["cells", str(smears), str(annotations), str(tmp_path / "c")]
        args += ["--annotation-format", "voc", "--window", "16"]
        phase, total = "cells", 4
    else:
        raw, out = make_raw(), tmp_path / "out"
        assert runner.invoke(main, ["expand", str(raw), str(out), "--target", "20"]).exit_code == 0
        args = ["expand", str(raw), str(tmp_path / "o2"), "--target", "20"]
        if command == "verify":
            args = ["verify", str(out)]
        phase, total = command, 20
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [LINE.match(line) for line in result.stderr.splitlines()]
    ours = [m for m in lines if m is not None and m["phase"] == phase]
    assert ours and ours[-1]["done"] == ours[-1]["total"] == str(total)
    assert "\r" not in result.stderr


def test_quiet_prints_no_lines(make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal, "LogLines", functools.partial(LogLines, grace=0.0))
    raw = make_raw()
    args = ["expand", str(raw), str(tmp_path / "o"), "--target", "20", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and result.stderr == ""


def _voc_smears(tmp_path: Path) -> tuple[Path, Path]:
    """Two 64x48 smears with two VOC boxes each."""
    import cv2
    import numpy as np

    smears, annotations = tmp_path / "smears", tmp_path / "ann"
    smears.mkdir()
    annotations.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        cv2.imwrite(str(smears / f"s{k}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        objects = "".join(
            f"<object><name>{label}</name><bndbox><xmin>{x}</xmin><ymin>5</ymin>"
            f"<xmax>{x + 10}</xmax><ymax>15</ymax></bndbox></object>"
            for label, x in (("RBC", 5), ("WBC", 40))
        )
        (annotations / f"s{k}.xml").write_text(
            f"<annotation><filename>s{k}.png</filename><size><width>64</width>"
            f"<height>48</height><depth>3</depth></size>{objects}</annotation>"
        )
    return smears, annotations
