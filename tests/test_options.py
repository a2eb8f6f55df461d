"""Each shared option is declared once; each flag means one thing across commands.

* An option that two commands take is a factory of ``augtool/commands/flags.py``;
  no command module declares a flag another command module declares too.
* ``--split`` says how expand splits; a command that reads one split of an expand
  output says which with ``--subset`` (``--split NAME`` there is a deprecated alias).
* ``--format`` in expand is the container (folder, hdf5); the annotations' format is
  ``--annotation-format`` in expand, cells and preview (``--format voc`` still works,
  with one deprecation line).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from augtool import defaults
from augtool.commands.flags import subset_option
from cli import main

COMMANDS = Path(__file__).resolve().parents[1] / "augtool" / "commands"


def declared_flags() -> dict[str, set[str]]:
    """Flag -> the command modules whose own ``click.option`` calls declare it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(COMMANDS.glob("*.py")):
        if path.name in ("flags.py", "backend_flags.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "option":
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and str(arg.value).startswith("-"):
                        found[str(arg.value)].add(path.stem)
    return found


def test_no_flag_is_declared_by_two_command_modules() -> None:
    flags = declared_flags()
    assert "--epochs" in flags and "--crop" in flags  # the scan sees the modules' own options
    twice = {flag: sorted(mods) for flag, mods in flags.items() if len(mods) > 1}
    assert not twice, f"declare these once, in flags.py: {twice}"


def test_shared_options_are_the_same_option_in_every_command() -> None:
    """Every flag that several commands take has one type and one default everywhere."""
    seen: dict[str, list[tuple[str, click.Parameter]]] = defaultdict(list)
    for name, command in main.commands.items():
        for param in command.params:
            if getattr(param, "hidden", False):
                continue  # a deprecated alias (evaluate's --split, cells' --format)
            for flag in param.opts:
                seen[flag].append((name, param))
    shared = {flag: uses for flag, uses in seen.items() if len(uses) > 1}
    for flag in ("--annotation-format", "--names", "--skip-invalid", "--jpeg-quality", "--quiet"):
        assert len(shared[flag]) >= 2, flag
    for flag, uses in shared.items():
        kinds = {type(p.type).__name__ for _, p in uses}
        assert len(kinds) == 1, (flag, [(c, p.type) for c, p in uses])


# --- --split defines, --subset chooses ---------------------------------------------------------


def test_subset_replaces_split_in_evaluate() -> None:
    help_text = CliRunner().invoke(main, ["evaluate", "--help"]).output
    assert "--subset [train|val|test|all]" in help_text
    assert "--split" not in help_text  # the deprecated alias works but is not advertised
    assert "cells.h5 --subset test" in help_text


def _subset_probe() -> click.Command:
    @click.command()
    @subset_option(help="Which split.")
    def probe(subset: str) -> None:
        click.echo(f"subset={subset}")

    return probe


def test_split_still_works_in_evaluate_with_one_deprecation_line() -> None:
    probe = _subset_probe()
    result = CliRunner().invoke(probe, ["--split", "val"])
    assert result.exit_code == 0 and result.stdout == "subset=val\n"
    assert result.stderr.splitlines() == [
        "warning: --split val is deprecated here; use --subset val (--split only says how "
        "expand splits)"
    ]
    result = CliRunner().invoke(probe, [])
    assert result.stdout == f"subset={defaults.DEFAULT_EVAL_SUBSET}\n" and not result.stderr
    result = CliRunner().invoke(probe, ["--subset", "all"])
    assert result.stdout == "subset=all\n" and not result.stderr
    result = CliRunner().invoke(probe, ["--subset", "val", "--split", "test"])
    assert result.exit_code == 2 and "give --subset once" in result.output


def test_evaluate_passes_the_subset_on(monkeypatch, tmp_path: Path) -> None:
    """``--split test`` and ``--subset test`` reach the library as the same split."""
    import model.evaluation

    seen = []

    def fake_evaluate_run(model: str, data: str, split: str | None, *rest: Any, **kw: Any) -> None:
        seen.append(split)
        raise click.UsageError("stop here")

    monkeypatch.setattr(model.evaluation, "evaluate_run", fake_evaluate_run)
    model_file, data = tmp_path / "model.pt", tmp_path / "data.h5"
    model_file.write_bytes(b"x")
    data.write_bytes(b"x")
    for args in (["--subset", "val"], ["--split", "val"], ["--subset", "all"]):
        CliRunner().invoke(main, ["evaluate", str(model_file), str(data), *args])
    assert seen == ["val", "val", None]


# --- --format is the container; --annotation-format the boxes' format -------------------------


def test_expand_format_help_lists_containers_only() -> None:
    help_text = " ".join(CliRunner().invoke(main, ["expand", "--help"]).output.split())
    assert "--format [folder|hdf5] Output container" in help_text
    assert "--annotation-format [voc|coco|yolo|png|png-instances]" in help_text


def test_cells_and_preview_take_annotation_format() -> None:
    formats = {"cells": "[voc|coco|yolo|png-instances]", "preview": "[voc|coco|yolo|png|"}
    for command, listed in formats.items():
        help_text = CliRunner().invoke(main, [command, "--help"]).output
        assert f"--annotation-format {listed}" in help_text, command
        assert "--format" not in help_text.replace("--annotation-format", ""), command


def test_old_format_spellings_work_with_one_deprecation_line(tmp_path: Path) -> None:
    """``expand --format voc`` and ``cells/preview --format voc`` still mean the annotations."""
    line = "warning: --format voc is deprecated; the annotations' format is --annotation-format voc"
    raw = tmp_path / "raw"
    raw.mkdir()
    cases = [
        # expand: the old spelling reaches the library as annotation_format (which needs
        # --annotations: the error proves where the value went).
        (["expand", str(raw), str(tmp_path / "o"), "--format", "voc"], "needs --annotations"),
        (["cells", str(raw), str(tmp_path / "a"), str(tmp_path / "c"), "--format", "voc"], ""),
    ]
    for args, error in cases:
        result = CliRunner().invoke(main, args)
        assert result.stderr.splitlines()[0] == line, (args, result.output)
        assert error in result.output
    result = CliRunner().invoke(main, ["cells", str(raw), str(tmp_path / "a"), str(tmp_path / "c")])
    assert result.exit_code == 2 and "Missing option '--annotation-format'" in result.output
    both = ["--format", "voc", "--annotation-format", "coco"]
    result = CliRunner().invoke(main, ["expand", str(raw), str(tmp_path / "o"), *both])
    assert result.exit_code == 2 and "give the annotations' format once" in result.output


def test_expand_format_hdf5_is_unchanged(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    result = CliRunner().invoke(main, ["expand", str(raw), str(tmp_path / "o"), "--format", "hdf5"])
    assert "deprecated" not in result.output
