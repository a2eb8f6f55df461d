"""Library messages name Python parameters; the terminal shows the flags.

Every message the library raises or reports (errors, warnings, reasons in a
summary) refers to a parameter as ``{name}`` (or ``{command.name}`` for another
command's); :func:`augtool.commands.exit_codes.flag_name` is the one place that turns
those into flags. These tests scan the library's source for a spelled flag, check
that every reference names a real parameter of a command, and run the commands
to see the flags on the terminal.
"""

from __future__ import annotations

import ast
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from augtool.commands.exit_codes import flag_name, render_text_for
from augtool.errors import InputError, Message, literal, template_of
from cli import main

REPO = Path(__file__).resolve().parents[1]
#: A command-line flag spelled out: ``--skip-invalid``, not a ``---`` rule or ``x--y``.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: A parameter reference in a template (after ``{{``/``}}`` escapes are removed).
REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\}")


def library_modules() -> list[Path]:
    """Every module of ``augtool/`` and ``model/`` except the command line's own."""
    paths = [*sorted((REPO / "augtool").rglob("*.py")), *sorted((REPO / "model").rglob("*.py"))]
    return [p for p in paths if "commands" not in p.relative_to(REPO).parts]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def message_strings() -> Iterator[tuple[str, int, str]]:
    """``(module, line, text)`` of every string in the library that is not a docstring.

    Error messages, warnings, reasons and report lines are all string constants
    (or the constant parts of f-strings); docstrings may name flags, as they
    document the command line too.
    """
    for path in library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and id(node) not in docs:
                yield str(path.relative_to(REPO)), node.lineno, node.value


def _is_template_call(node: ast.Call) -> bool:
    """``Message(...)`` or any call with ``refs=True``: its strings are templates."""
    named = getattr(node.func, "id", getattr(node.func, "attr", ""))
    refs = any(
        k.arg == "refs" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )
    return named == "Message" or refs


def template_references() -> Iterator[tuple[str, int, str]]:
    """``(module, line, parameter)`` of every ``{parameter}`` in a library message template."""
    for path in library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not _is_template_call(call):
                continue
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                for node in ast.walk(arg):
                    if isinstance(node, ast.Constant) and isinstance(node.value, str):
                        text = node.value.replace("{{", "").replace("}}", "")
                        for ref in REFERENCE.findall(text):
                            yield str(path.relative_to(REPO)), node.lineno, ref


def test_no_library_message_spells_a_flag() -> None:
    spelled = [f"{m}:{line}: {text!r}" for m, line, text in message_strings() if FLAG.search(text)]
    assert not spelled, "library strings that name flags:\n" + "\n".join(spelled)


def test_the_scan_sees_messages_and_would_catch_a_flag() -> None:
    texts = [text for _, _, text in message_strings()]
    assert any("give it with {names}" in t for t in texts)  # a converted message is scanned
    assert FLAG.search("pass --skip-invalid to leave them out")
    assert not FLAG.search("a ---- rule, x--y, and {skip_invalid}")


def _parameter_names(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        names |= {param.name or "", *getattr(param, "library_names", ())}
    return names


def test_every_reference_names_a_parameter_of_some_command() -> None:
    commands = main.commands
    anywhere = set().union(*(_parameter_names(c) for c in commands.values()))
    references = list(template_references())
    assert len(references) > 30  # the scan finds the templates
    unknown = []
    for module, line, ref in references:
        other, dot, name = ref.partition(".")
        known = name in _parameter_names(commands[other]) if dot else ref in anywhere
        if not known:
            unknown.append(f"{module}:{line}: {{{ref}}}")
    assert not unknown, "references no command has:\n" + "\n".join(unknown)


#: Calls whose result may sit in a template as it is: escaped text, or a number.
SAFE_CALLS = {"literal", "template_of", "len"}


def _unescaped(value: ast.FormattedValue) -> bool:
    """True for an interpolation that could put a stray ``{name}`` into a template.

    Safe: :func:`literal` / :func:`template_of` / ``len`` calls, arithmetic, and any
    value with a format spec (``{n:,}``, ``{width:d}``: numbers, which have no braces).
    """
    node = value.value
    if value.format_spec is not None or isinstance(node, ast.BinOp | ast.UnaryOp):
        return False
    return not (isinstance(node, ast.Call) and getattr(node.func, "id", "") in SAFE_CALLS)


def unescaped_interpolations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, expression)`` of every unsafe interpolation in a template call of ``tree``."""
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and _is_template_call(call):
            for arg in call.args:
                for node in ast.walk(arg):
                    if isinstance(node, ast.FormattedValue) and _unescaped(node):
                        yield node.lineno, ast.unparse(node.value)


def test_text_in_a_template_is_escaped() -> None:
    # A path such as out{overwrite} would otherwise render as out--overwrite.
    found = [
        f"{path.relative_to(REPO)}:{line}: {{{expr}}}"
        for path in library_modules()
        for line, expr in unescaped_interpolations(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not found, "interpolate text with literal(), numbers with a format spec:\n" + "\n".join(
        found
    )


def test_the_escape_scan_would_catch_a_raw_path() -> None:
    bad = ast.parse('raise OutputError(f"{out} exists; pass {{overwrite}}", refs=True)')
    good = ast.parse(
        'raise OutputError(f"{literal(out)} has {len(x)} and {n:,} {a - b}", refs=True)\n'
        'Message(f"{template_of(why)} at {size:d}")'
    )
    assert list(unescaped_interpolations(bad)) == [(1, "out")]
    assert list(unescaped_interpolations(good)) == []


def test_a_path_with_braces_is_quoted_as_it_is(tmp_path: Path) -> None:
    out = tmp_path / "out{overwrite}"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["synth", str(out), "--per-class", "ALL=1", "--size", "64"])
    assert result.exit_code != 0
    assert f"{out} is not empty" in result.output
    assert "--overwrite" in result.output  # the real reference still renders as a flag
    assert (out / "keep.txt").read_text() == "mine"


# --- Message, literal text, other commands ---------------------------------------------------


def test_message_is_its_plain_text_and_renders_flags() -> None:
    message = Message(f"{{group_regex}} '{literal('p_{id}')}' matched; see {{expand.folds}}")
    assert message == "group_regex 'p_{id}' matched; see expand's folds"
    rendered = message.render(lambda n: f"<{n}>")
    assert rendered == "<group_regex> 'p_{id}' matched; see <expand.folds>"
    copy = pickle.loads(pickle.dumps(message))  # crosses to and from worker processes
    assert copy == message and copy.template == message.template
    assert template_of("a {b}") == "a {{b}}" and template_of(message) == message.template


def test_flag_name_writes_another_command_s_flag() -> None:
    root = click.Context(main, info_name="augtool")
    with root, click.Context(main.commands["train"], parent=root):
        assert flag_name(main.commands["train"], "expand.folds") == "augtool expand --folds"
        assert flag_name(main.commands["train"], "patience") == "--patience"
        assert render_text_for(Message("see {expand.split}")) == "see augtool expand --split"
    assert flag_name(None, "expand.folds") == "augtool expand folds"  # no command line


def test_error_with_literal_braces_keeps_them() -> None:
    err = InputError(f"{literal('/data/{x}')}: pass {{skip_invalid}}", refs=True)
    assert str(err) == "/data/{x}: pass skip_invalid"
    assert err.render(lambda n: "--" + n.replace("_", "-")) == "/data/{x}: pass --skip-invalid"


# --- the terminal shows the flags -------------------------------------------------------------


def test_expand_refusal_names_max_pixels_and_skip_invalid(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2, "B": 2})
    args = ["expand", str(raw), str(tmp_path / "o"), "--max-pixels", "1000", "--dry-run"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "above the limit of 1,000 (raise --max-pixels if" in result.output
    assert "or pass --skip-invalid to leave them out" in result.output
    assert "max_pixels" not in result.output and "skip_invalid" not in result.output


def test_expand_leak_warning_names_split_by(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 3, "B": 3})
    args = ["expand", str(raw), str(tmp_path / "o"), "--split-by", "image", "--dry-run"]
    result = CliRunner().invoke(main, [*args, "--target", "12"])
    assert result.exit_code == 0, result.output
    assert "warning: --split-by image reproduces the paper's protocol" in result.stderr
    assert "the default --split-by source does not leak" in result.stderr


def test_cells_yolo_without_names_names_the_flag(tmp_path: Path) -> None:
    smears, labels = tmp_path / "smears", tmp_path / "labels"
    smears.mkdir()
    labels.mkdir()
    args = ["cells", str(smears), str(labels), str(tmp_path / "o"), "--annotation-format", "yolo"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "give it with --names" in result.output


def test_train_on_data_without_folds_names_expand_s_flag(tiny_h5: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", str(tiny_h5), str(tmp_path / "run"), "--fold", "0"])
    assert result.exit_code == 2, result.output
    assert "make it with augtool expand --folds K" in result.output
