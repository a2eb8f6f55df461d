"""model/: no import cycle, cross-validation on top, readable modules, a lazy public face.

Every module of ``model/`` is read with :mod:`ast`; nothing is imported. An
import counts wherever it is written, inside functions too (it runs when its
function does), but not under ``if TYPE_CHECKING:``. ``from model.x import y``
is an arrow to ``model.x``; importing a submodule is not counted as an arrow to
its package's ``__init__`` (``model/__init__.py`` imports its submodules lazily,
only when a name is asked for). Each check also runs on planted sources, to
show it can fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The most lines a module of ``model/`` may have.
MAX_LINES = 500


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sources(root: Path = REPO, packages: tuple[str, ...] = ("model",)) -> dict[str, str]:
    """``{dotted name: source}`` of every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path.read_text(encoding="utf-8")
    return found


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, inside functions too, but not the body of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if _is_type_checking(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported_names(source: str, name: str, is_package: bool = False) -> set[str]:
    """Dotted names a module imports (``from a import b`` gives ``a`` and ``a.b``).

    Args:
        source: The module's source.
        name: Its dotted name (relative imports resolve against it).
        is_package: The module is a package's ``__init__``.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """Arrows between ``modules``: each import goes to the module it names, if one of them."""
    graph: dict[str, set[str]] = {}
    for name, source in modules.items():
        targets = set()
        is_package = any(other.startswith(name + ".") for other in modules)
        for imported in imported_names(source, name, is_package):
            parts = imported.split(".")
            # ``from model.report import pct`` names model.report.pct: the module is model.report.
            for i in range(len(parts), 0, -1):
                candidate = ".".join(parts[:i])
                if candidate in modules:
                    targets.add(candidate)
                    break
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def importers_of(target: str, modules: dict[str, str]) -> set[str]:
    """Modules that import ``target`` (or a name from it)."""
    return {
        name
        for name, source in modules.items()
        if any(i == target or i.startswith(target + ".") for i in imported_names(source, name))
    }


# --- the checks on the repository ------------------------------------------------------------


def test_model_has_no_import_cycle() -> None:
    found = cycles(import_graph(sources()))
    assert not found, "import cycles in model/: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_the_train_command_imports_cross_validation() -> None:
    """``model.cv`` sits at the top of model/: a client of runs, never a base for them."""
    modules = sources(packages=("model", "augtool"))
    modules["cli"] = (REPO / "cli.py").read_text(encoding="utf-8")
    importers = importers_of("model.cv", modules)
    assert importers, "the train command imports model.cv (--fold all)"
    assert all(name.startswith("augtool.commands.") for name in importers), sorted(importers)


def test_model_modules_stay_readable() -> None:
    long = {
        name: len(source.splitlines())
        for name, source in sources().items()
        if len(source.splitlines()) > MAX_LINES
    }
    assert not long, f"modules of more than {MAX_LINES} lines: {long}"


def test_the_package_names_its_public_functions_and_imports_them_lazily() -> None:
    import importlib

    import model

    for name in model.__all__:
        home = importlib.import_module(model._HOME[name])
        assert getattr(model, name) is getattr(home, name)
    assert dir(model) == sorted(model.__all__)
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        model.fit  # noqa: B018  (a name of a submodule, not of the package)
    code = "import sys, model; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    fresh = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert fresh.stdout.strip() == "[]"  # `import model` loads neither torch nor numpy


# --- the checks can fail ---------------------------------------------------------------------


def test_a_cycle_through_a_function_level_import_is_found() -> None:
    planted = {
        "pkg.a": "from pkg.b import thing\n",
        "pkg.b": "def f():\n    from pkg.c import other\n",
        "pkg.c": "import pkg.a\n",
        "pkg.d": "from pkg.a import thing\n",  # reaches the cycle, is not in it
    }
    assert cycles(import_graph(planted)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_type_checking_imports_and_names_are_not_arrows() -> None:
    planted = {
        "pkg.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "pkg.b": "from pkg.a import helper\n",
        "pkg": "def __getattr__(name):\n    from pkg import b\n    return b\n",
    }
    graph = import_graph(planted)
    assert graph == {"pkg.a": set(), "pkg.b": {"pkg.a"}, "pkg": {"pkg.b"}}
    assert cycles(graph) == []


def test_a_relative_import_resolves_to_its_module() -> None:
    planted = {"pkg.a": "from .b import x\n", "pkg.b": "from . import a\n"}
    assert cycles(import_graph(planted)) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from model.cv import cv_run\n", {"model.run"}),
        ("def f():\n    import model.cv\n", {"model.run"}),
        ("from model import cv\n", {"model.run"}),
        ("from model.cvx import y\n", set()),
    ],
)
def test_an_import_of_cv_is_found(source: str, expected: set[str]) -> None:
    assert importers_of("model.cv", {"model.run": source, "model.cv": ""}) == expected
