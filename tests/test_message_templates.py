"""Every message template is rendered: no ``{placeholder}`` ever reaches the terminal.

A library message that names a parameter is a template (``{skip_invalid}``),
rendered by the face as a flag only when it is raised or reported as one
(``refs=True`` or a :class:`~augtool.errors.Message`). A template that reaches
an error without ``refs=True`` prints its braces as they are. The scan finds
every string of the library that refers to a parameter of some command and
requires it to sit in a template call, or in a function whose every use is
inside one; the commands are then run with real values and their output read.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from augtool.errors import InputError, fill
from cli import main
from tests.child_process import run_cli
from tests.test_library_messages import (
    REFERENCE,
    _docstrings,
    _is_template_call,
    _parameter_names,
    library_modules,
)

REPO = Path(__file__).resolve().parents[1]


def _known_parameters() -> set[str]:
    names: set[str] = set()
    for command in main.commands.values():
        names |= _parameter_names(command)
    return names - {""}


def _renders(call: ast.Call) -> bool:
    """A template call, or ``fill(template, name)`` (which renders it at once)."""
    return _is_template_call(call) or getattr(call.func, "id", "") == "fill"


def _template_regions(tree: ast.AST) -> set[int]:
    """ids of every node inside the arguments of a rendering call.

    Also the value of a variable that a rendering call of the same function is
    given (``message = "... {fold} ..."; raise InputError(message, refs=True)``).
    """
    inside: set[int] = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]
    for scope in scopes:
        rendered_names: set[str] = set()
        for call in ast.walk(scope):
            if isinstance(call, ast.Call) and _renders(call):
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    for n in ast.walk(arg):
                        inside.add(id(n))
                        if isinstance(n, ast.Name):
                            rendered_names.add(n.id)
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id in rendered_names for t in targets):
                    inside |= {id(n) for n in ast.walk(node.value)}
    return inside


def leaked_templates() -> list[str]:
    """``module:line: text`` of every parameter reference that no template call renders."""
    known = _known_parameters()
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in library_modules()}
    regions = {path: _template_regions(tree) for path, tree in trees.items()}
    calls_inside: dict[str, int] = defaultdict(int)
    calls_outside: dict[str, int] = defaultdict(int)
    for path, tree in trees.items():
        inside = regions[path]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = calls_inside if id(node) in inside else calls_outside
                target[node.func.id] += 1
    leaks = []
    for path, tree in trees.items():
        docs, inside = _docstrings(tree), regions[path]
        owner: dict[int, str] = {}
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef):
                owner |= {id(n): func.name for n in ast.walk(func)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in docs or id(node) in inside:
                continue
            text = node.value.replace("{{", "").replace("}}", "")
            refs = [r for r in REFERENCE.findall(text) if r.rpartition(".")[2] in known]
            if not refs:
                continue
            func = owner.get(id(node))
            if func and calls_inside[func] and not calls_outside[func]:
                continue  # a template builder used only inside template calls
            leaks.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    return leaks


def test_no_template_reaches_the_terminal_unrendered() -> None:
    leaks = leaked_templates()
    assert not leaks, "templates raised or printed without refs=True:\n" + "\n".join(leaks)


def test_the_scan_would_catch_the_leak() -> None:
    source = (
        "def listing(n):\n    return f'{n} bad; pass {{skip_invalid}}'\n"
        "def a():\n    raise InputError(listing(1), refs=True)\n"
        "def b():\n    raise InputError(listing(2))\n"
    )
    tree = ast.parse(source)
    assert any(isinstance(n, ast.Call) and _is_template_call(n) for n in ast.walk(tree))
    rendered = InputError("pass {skip_invalid}", refs=True).render(lambda n: "--skip-invalid")
    assert rendered == "pass --skip-invalid"
    assert fill("a {{literal}} {skip_invalid}", str.upper) == "a {literal} SKIP_INVALID"


def test_bad_voc_annotations_are_refused_with_the_flag_rendered(tmp_path: Path) -> None:
    smears, ann = tmp_path / "smears", tmp_path / "ann"
    smears.mkdir()
    ann.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(smears / "a.png"), np.full((64, 64, 3), 200, np.uint8))
    (ann / "a.xml").write_text("<annotation><object><name>WBC</name></object>")
    code, out = run_cli(
        "expand", smears, tmp_path / "det", "--annotations", ann, "--annotation-format", "voc"
    )
    assert code == 2, out
    assert "--skip-invalid" in out and not re.search(r"\{[a-z_]+\}", out), out
