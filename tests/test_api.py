"""The public API: light to import, every name there, keywords that mirror the flags.

``import augtool`` loads nothing heavy; each name of ``__all__`` resolves; the
keyword functions take one keyword per flag of their command, named and
defaulted as the command does (so the two cannot drift apart); the command
line and the function make the same bytes; docs/api.md's examples run.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import pytest

import augtool
from augtool import api
from cli import main
from tests.child_process import run_cli

REPO = Path(__file__).resolve().parents[1]
#: Keywords of an API function that are no flag: where progress and provenance go.
NOT_FLAGS = {"progress", "command_line"}
#: Flags that are no keyword: the terminal's (``--quiet``), the config file, and
#: ``--dry-run``, which is its own function.
NOT_KEYWORDS = {"quiet", "config", "dry_run", "format_alias", "out_option"}
#: Each keyword function and the command it mirrors.
MIRRORS: list[tuple[Callable, str]] = [
    (api.expand, "expand"),
    (api.dry_run, "expand"),
    (api.verify, "verify"),
    (api.cut_cells, "cells"),
    (api.synthesize, "synth"),
    (api.preview, "preview"),
    (augtool.report, "report"),
]


def test_importing_augtool_loads_nothing_heavy() -> None:
    code = (
        "import sys, augtool\n"
        "heavy = [m for m in ('numpy', 'cv2', 'click', 'h5py', 'torch', 'albumentations')"
        " if m in sys.modules]\n"
        "assert heavy == [], heavy\n"
        "assert [m for m in sys.modules if m.startswith('augtool.')] == []\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_public_name_resolves() -> None:
    for name in augtool.__all__:
        assert getattr(augtool, name) is not None, name
    assert dir(augtool) == sorted(augtool.__all__)
    assert augtool.StepType.__module__ == "augtool.pipeline.steps"
    with pytest.raises(AttributeError, match="no attribute 'registry'"):
        augtool.registry  # noqa: B018
    assert isinstance(augtool.OptionError("x", "y"), augtool.AugtoolError)


def _flag_default(command: click.Command, param: click.Parameter) -> object:
    """A flag's default as the command receives it (types and callbacks applied)."""
    ctx = click.Context(command)
    return param.process_value(ctx, param.get_default(ctx))


def _keyword_default(name: str, value: object) -> object:
    """An API default in the command's form: a size is ``(side, None)`` or ``(w, h)``."""
    if name == "size" and isinstance(value, int):
        return (value, None)
    if isinstance(value, list):
        return tuple(value)
    return value


@pytest.mark.parametrize(
    ("function", "command_name"), MIRRORS, ids=lambda v: getattr(v, "__name__", v)
)
def test_keywords_mirror_the_flags(function: Callable, command_name: str) -> None:
    command = main.commands[command_name]
    signature = inspect.signature(function)
    keywords = {
        n: p
        for n, p in signature.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in NOT_FLAGS
    }
    positional = [n for n, p in signature.parameters.items() if p.kind is not p.KEYWORD_ONLY]
    assert positional == [p.name for p in command.params if isinstance(p, click.Argument)]
    flags = [
        p for p in command.params if isinstance(p, click.Option) and p.name not in NOT_KEYWORDS
    ]
    if function is api.dry_run:  # what decides the plan: not the run's own flags
        skip = {"resume", "overwrite", "backend", "scheduler", "scheduler_timeout", "send_sources"}
        flags = [p for p in flags if p.name not in skip]
    matched = set()
    for param in flags:
        names = [param.name, *getattr(param, "library_names", ())]
        found = [n for n in names if n in keywords]
        assert found, f"{command_name} --{param.name}: no keyword of {function.__name__}"
        name = found[0]
        matched.add(name)
        default = keywords[name].default
        if default is inspect.Parameter.empty:  # required keyword: a required flag
            continue
        flag = _flag_default(command, param)
        if command_name == "synth" and name == "size":
            flag = (flag[0], flag[1] or flag[0])
            default = default if isinstance(default, tuple) else (default, default)
        assert _keyword_default(name, default) == flag, (command_name, name)
    assert set(keywords) == matched, sorted(set(keywords) - matched)


def test_api_and_command_line_write_the_same_bytes(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2, "B": 2}, size=(64, 48))
    options = {"target": 12, "size": 32, "seed": 3, "workers": 1, "pca": True, "pca_count": 2}
    augtool.expand(raw, tmp_path / "api", **options)
    code, text = run_cli(
        "expand", raw, tmp_path / "cli", "--target", 12, "--size", 32, "--seed", 3, "-j", 1,
        "--pca", "--pca-count", 2, "-q",
    )  # fmt: skip
    assert code == 0, text
    for path in sorted((tmp_path / "api").rglob("*.png")):
        twin = tmp_path / "cli" / path.relative_to(tmp_path / "api")
        assert twin.read_bytes() == path.read_bytes(), path.name
    assert (tmp_path / "api" / "manifest.csv").read_bytes() == (
        tmp_path / "cli" / "manifest.csv"
    ).read_bytes()


def test_the_backend_keywords_are_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(augtool.OptionError, match="scheduler: needs backend dask"):
        augtool.expand(tmp_path / "raw", tmp_path / "out", scheduler="tcp://x:8786")
    with pytest.raises(augtool.OptionError, match="backend: one of local, dask"):
        augtool.expand(tmp_path / "raw", tmp_path / "out", backend="slurm")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", ["64", "64x48", (64, "48"), True, (64,), float("nan")])
def test_a_size_that_is_not_a_side_or_a_pair_is_refused_by_name(
    make_raw, tmp_path: Path, size: object
) -> None:
    raw = make_raw({"A": 2, "B": 2}, size=(64, 48))
    for call in (
        lambda: augtool.dry_run(raw, size=size, target=8),
        lambda: augtool.expand(raw, tmp_path / "out", size=size, target=8),
        lambda: augtool.synthesize(tmp_path / "demo", per_class={"A": 1}, size=size),
    ):
        with pytest.raises(augtool.OptionError, match="a side in pixels or") as err:
            call()  # not "must be between 8 and 4096, got 6" for the string "64"
        assert err.value.option == "size"
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists()
    assert augtool.dry_run(raw, size=(64.0, 48), target=8).total == 8


@pytest.mark.parametrize(("key", "value"), [("target", 8.0), ("folds", "3"), ("seed", 1.5)])
def test_a_count_that_is_not_a_whole_number_is_refused_by_name(
    make_raw, tmp_path: Path, key: str, value: object
) -> None:
    raw = make_raw({"A": 2, "B": 2}, size=(64, 48))
    options = {"target": 8, "size": 16, key: value}
    with pytest.raises(augtool.OptionError) as err:
        augtool.expand(raw, tmp_path / "out", **options)  # not a TypeError from inside
    assert err.value.option == key and "a whole number" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_numpy_integers_are_taken_as_counts(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2, "B": 2}, size=(64, 48))
    summary = augtool.expand(raw, tmp_path / "out", target=np.int64(8), size=np.int32(16))
    assert summary.total == 8  # and augtool.json, written as JSON, holds plain numbers
    assert augtool.verify(tmp_path / "out").ok


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


@pytest.mark.slow
def test_the_examples_of_docs_api_md_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of docs/api.md, in order, in one namespace, on generated data."""
    pytest.importorskip("albumentations")
    blocks = python_blocks(REPO / "docs" / "api.md")
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/api.md, python block {i + 1}", "exec"), namespace)
    assert (tmp_path / "out" / "augtool.json").is_file() and (tmp_path / "cells").is_dir()
