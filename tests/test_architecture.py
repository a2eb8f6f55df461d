"""Every arrow of ARCHITECTURE.md "Arrows that must never exist", checked on the source.

Each module of ``augtool/``, ``model/`` and the command line (``cli.py``, and
``cli/`` should it become a package) is read with :mod:`ast`; nothing is
imported or run. Imports inside functions count (they run on the GPU machine
too when their function does); imports under ``if TYPE_CHECKING:`` do not.
Where an arrow is about what a machine must have installed (``model/`` on the
GPU machine, ``augtool/store``), the imports are followed through the
repository's own modules, so ``model -> augtool.x -> albumentations`` is
caught as well as a direct import. Every check is also run on small planted
sources, to show it can fail.

The house is drawn by packages, each a layer (docs/architecture.md): a module
may import its own layer and the layers :data:`ALLOWED` names, nothing else;
no import cycle exists, and no two modules share a name.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Package prefix -> layer; the longest matching prefix gives a module's layer.
LAYERS = {
    "augtool.errors": "base",
    "augtool.defaults": "base",
    "augtool.progress": "base",
    "augtool.versions": "base",
    "augtool.drawing": "base",
    "augtool.__version__": "base",
    "augtool.ops": "ops",
    "augtool.store": "store",
    "augtool.annotations": "annotations",
    "augtool.pipeline": "pipeline",
    "augtool.engine": "engine",
    "augtool.tools": "tools",
    "augtool": "api",
    "augtool.commands": "commands",
    "cli": "commands",
    "model": "model",
}
#: Layer -> the layers it may import (besides its own).
ALLOWED = {
    "base": set(),
    "ops": {"base"},
    "store": {"base", "ops"},
    "annotations": {"base", "ops", "store"},  # mask forms use ops.mask_geometry
    "pipeline": {"base", "ops", "store"},
    "engine": {"base", "ops", "store", "annotations", "pipeline"},
    "tools": {"base", "ops", "store", "annotations", "pipeline", "engine"},
    "api": {"base", "ops", "store", "annotations", "pipeline", "engine", "tools"},
    "commands": {"base", "api", "model"},
    "model": {"base", "store"},
}
#: Arrows against the layers that the move has not removed yet: (importer, imported).
PENDING_ARROWS: set[tuple[str, str]] = set()
#: Cycles known and not yet removed (none: model/'s cv -> run -> scoring -> cv went when
#: folds and run-folder helpers got modules of their own). The test fails when a listed
#: cycle no longer exists, or another appears.
PENDING_CYCLES: list[set[str]] = []

#: Arrows about what a machine has installed: (importer prefix, forbidden target, why).
INSTALL_ARROWS = [
    ("model", "albumentations", "the GPU machine has no albumentations"),
    ("model", "albucore", "the GPU machine has no albumentations"),
    ("model", "augtool.pipeline", "training must not depend on the pipeline"),
    ("model", "augtool.engine.expand", "training must not depend on expand"),
    ("model", "PIL", "the GPU machine has no Pillow"),
    ("augtool.store", "albumentations", "the store is read on the GPU machine"),
    ("augtool.tools.synth", "albumentations", "synth.py runs without albumentations"),
    ("model", "tqdm", "the GPU machine has no guaranteed tqdm"),
]
#: Heavy or optional packages imported only when used: (importer prefix, target, why).
#: Checked on what runs at import time (imports inside functions are the lazy ones).
LAZY_ARROWS = [
    ("augtool", "albumentations", "imported only when a recipe names it"),
    ("cli", "albumentations", "imported only when a recipe names it"),
    ("augtool", "dask", "the optional dask extra, imported when that backend connects"),
    ("augtool", "distributed", "the optional dask extra, imported when that backend connects"),
    ("cli", "dask", "the optional dask extra, imported when that backend connects"),
    ("augtool.ops", "torch", "the optional torch path of the PCA, imported when used"),
]
#: The library knows no terminal: only the command modules may import these.
FACE = ("click", "cli", "augtool.commands")
#: Modules that are the command line, free to import click.
FACE_MODULES = ("cli", "augtool.commands")
#: Pure modules and packages: the same inputs give the same bytes.
PURE = (
    "augtool.ops",
    "augtool.engine.plan",
)
#: Standard modules that reach files or the clock.
FILE_OR_CLOCK = (
    "os",
    "pathlib",
    "io",
    "time",
    "datetime",
    "shutil",
    "tempfile",
    "glob",
    "fileinput",
    "h5py",
)
#: Calls that read or write files, or read the clock, whatever module they come from.
FILE_OR_CLOCK_CALLS = frozenset(
    {
        "open",
        "imread",
        "imwrite",
        "fromfile",
        "tofile",
        "loadtxt",
        "savetxt",
        "read_bytes",
        "write_bytes",
        "read_text",
        "write_text",
        "perf_counter",
        "monotonic",
        "now",
        "utcnow",
        "today",
    }
)
#: ``np.random`` names that make an explicit generator (everything else is global state).
EXPLICIT_NP_RANDOM = frozenset(
    {
        "default_rng",
        "Generator",
        "SeedSequence",
        "BitGenerator",
        "PCG64",
        "PCG64DXSM",
        "Philox",
        "SFC64",
        "MT19937",
    }
)
#: ``random`` names that make an explicit generator.
EXPLICIT_RANDOM = frozenset({"Random", "SystemRandom"})
#: torch functions that seed or draw from the global generator.
TORCH_GLOBAL_SEED = frozenset({"manual_seed", "seed", "manual_seed_all"})


@dataclass(frozen=True)
class Module:
    """One source file: dotted name, path relative to the repository, syntax tree."""

    name: str
    path: str
    tree: ast.Module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def repository_modules() -> dict[str, Module]:
    files = [REPO / "cli.py", *REPO.glob("cli/**/*.py")]
    files += [*REPO.glob("augtool/**/*.py"), *REPO.glob("model/**/*.py")]
    modules = {}
    for path in sorted(p for p in files if p.is_file()):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[module_name(path)] = Module(module_name(path), str(path.relative_to(REPO)), tree)
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def runtime_nodes(tree: ast.AST, at_import: bool = False) -> Iterator[ast.AST]:
    """Every node but the body of ``if TYPE_CHECKING:``; with ``at_import``, not in functions."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if _is_type_checking(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        if at_import and isinstance(node, _FUNCTIONS):
            stack.extend(getattr(node, "decorator_list", []))
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, level: int, package: str) -> str:
    if not level:
        return module
    base = package.split(".")
    base = base[: len(base) - level + 1]
    return ".".join([*base, module] if module else base)


def imports_of(
    tree: ast.AST, name: str = "", is_package: bool = False, at_import: bool = False
) -> set[str]:
    """Dotted names imported in ``tree`` (``from a import b`` gives ``a`` and ``a.b``).

    Args:
        tree: The module's syntax tree.
        name: The module's dotted name (resolves relative imports).
        is_package: The module is a package's ``__init__``.
        at_import: Only what runs when the module is imported (not inside functions).
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_nodes(tree, at_import):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def reaches(target: str, imported: str) -> bool:
    """True when importing ``imported`` means importing ``target`` (or a submodule of it)."""
    return imported == target or imported.startswith(target + ".")


@functools.lru_cache(maxsize=32)
def import_graph(modules: tuple[Module, ...], at_import: bool) -> dict[str, frozenset[str]]:
    """What each module imports, read once per set of sources (the closures share it).

    Keyed by the :class:`Module` objects themselves (their trees hash by identity), so a
    planted set of sources never meets the graph of another.
    """
    return {
        m.name: frozenset(imports_of(m.tree, m.name, m.path.endswith("__init__.py"), at_import))
        for m in modules
    }


def closure(
    start: str, modules: dict[str, Module], at_import: bool = False
) -> dict[str, list[str]]:
    """Every name imported by ``start`` and the repository modules it imports, with a path."""
    graph = import_graph(tuple(modules.values()), at_import)
    paths: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for imported in sorted(graph.get(current, ())):
            chain = [*paths[current], imported]
            # Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c.
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                if step not in paths:
                    paths[step] = chain if step == imported else [*paths[current], step]
                    if step in modules:
                        todo.append(step)
    return paths


def in_package(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# --- the checks, each a function of sources ----------------------------------------------


def install_violations(modules: dict[str, Module]) -> list[str]:
    problems = []
    for importer in sorted(modules):
        for prefix, target, why in INSTALL_ARROWS:
            if not in_package(importer, prefix):
                continue
            for name, chain in closure(importer, modules).items():
                if reaches(target, name):
                    problems.append(f"{' -> '.join(chain)}: {why}")
                    break
    return problems


def lazy_violations(modules: dict[str, Module]) -> list[str]:
    problems = []
    for importer in sorted(modules):
        for prefix, target, why in LAZY_ARROWS:
            if not in_package(importer, prefix):
                continue
            for name, chain in closure(importer, modules, at_import=True).items():
                if reaches(target, name):
                    problems.append(f"{' -> '.join(chain)} at import time: {why}")
                    break
    return problems


def face_violations(modules: dict[str, Module]) -> list[str]:
    problems = []
    for m in modules.values():
        if not (in_package(m.name, "augtool") or in_package(m.name, "model")):
            continue
        if any(in_package(m.name, face) for face in FACE_MODULES):
            continue
        for imported in sorted(imports_of(m.tree, m.name, m.path.endswith("__init__.py"))):
            if any(reaches(face, imported) for face in FACE):
                problems.append(f"{m.path} imports {imported}: the library knows no terminal")
    return problems


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def purity_violations(modules: dict[str, Module]) -> list[str]:
    problems = []
    for name in sorted(m for m in modules if any(in_package(m, p) for p in PURE)):
        for reached, chain in closure(name, modules).items():
            if any(reaches(bad, reached) for bad in FILE_OR_CLOCK):
                problems.append(f"{' -> '.join(chain)}: a pure module reaches files or the clock")
        for pure in [m for m in closure(name, modules) if m in modules]:
            for node in runtime_nodes(modules[pure].tree):
                if isinstance(node, ast.Call) and _called_name(node) in FILE_OR_CLOCK_CALLS:
                    problems.append(
                        f"{modules[pure].path}:{node.lineno} calls {_called_name(node)}(): "
                        f"{name} must not reach files or the clock"
                    )
    return problems


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def random_state_violations(modules: dict[str, Module]) -> list[str]:
    problems = []
    for m in modules.values():
        for node in runtime_nodes(m.tree):
            where = f"{m.path}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module in ("random", "numpy.random"):
                allowed = EXPLICIT_RANDOM if node.module == "random" else EXPLICIT_NP_RANDOM
                for alias in node.names:
                    if alias.name not in allowed:
                        problems.append(f"{where} imports {node.module}.{alias.name}")
            if not isinstance(node, ast.Attribute):
                continue
            dotted = _dotted(node)
            head, _, last = dotted.rpartition(".")
            explicit = {"np.random": EXPLICIT_NP_RANDOM, "numpy.random": EXPLICIT_NP_RANDOM}
            explicit["random"] = EXPLICIT_RANDOM
            if head in explicit and last not in explicit[head]:
                problems.append(f"{where} uses {dotted}: global random state")
            elif head in ("torch", "torch.cuda", "torch.random") and last in TORCH_GLOBAL_SEED:
                problems.append(f"{where} uses {dotted}: generators are passed in")
    return problems


def layer_of(name: str) -> str | None:
    """The layer of a dotted module name: its longest prefix in the layer tables."""
    table = LAYERS
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        layer = table.get(".".join(parts[:i]))
        if layer is not None:
            return layer
    return None


def imported_modules(m: Module, modules: dict[str, Module]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import of ``m`` (``TYPE_CHECKING`` blocks excluded).

    ``from a import b`` imports module ``a.b`` when that is a module (a repository
    module or a package of the layer tables), else names of ``a``; ``from augtool
    import __version__`` reads the version, a base name.
    """
    table = LAYERS
    package = m.name if m.path.endswith("__init__.py") else m.name.rpartition(".")[0]
    for node in runtime_nodes(m.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                known = full in modules or full in table
                yield node.lineno, full if known else base


def layer_violations(modules: dict[str, Module]) -> list[str]:
    problems: list[str] = []
    for m in modules.values():
        mine = layer_of(m.name)
        if mine is None:
            continue
        for line, target in imported_modules(m, modules):
            theirs = layer_of(target)
            if theirs is None or theirs == mine or (m.name, target) in PENDING_ARROWS:
                continue
            if theirs not in ALLOWED[mine]:
                problems.append(f"{m.path}:{line} imports {target}: {mine} may not import {theirs}")
            elif mine == "commands" and theirs == "api" and target != "augtool":
                problems.append(
                    f"{m.path}:{line} imports {target}: commands use the public API "
                    "(import augtool)"
                )
    return problems


def module_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Repository module -> the repository modules it imports (in functions too)."""
    graph: dict[str, set[str]] = {}
    for m in modules.values():
        found = set()
        for _, target in imported_modules(m, modules):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != m.name:
                found.add(target)
        graph[m.name] = found
    return graph


def cycles(modules: dict[str, Module]) -> list[set[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    graph = module_graph(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def cycle_violations(modules: dict[str, Module]) -> list[str]:
    return [
        " <-> ".join(sorted(c)) + ": an import cycle"
        for c in cycles(modules)
        if c not in PENDING_CYCLES
    ]


CHECKS = {
    "install": install_violations,
    "lazy": lazy_violations,
    "face": face_violations,
    "purity": purity_violations,
    "random": random_state_violations,
    "layers": layer_violations,
    "cycles": cycle_violations,
}


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = repository_modules()
    assert {"cli", "augtool.store.dataset", "augtool.pipeline.core", "model.data"} <= set(found)
    return found


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_no_forbidden_arrow_exists(check: str, modules: dict[str, Module]) -> None:
    assert CHECKS[check](modules) == []


def test_pending_exceptions_still_exist(modules: dict[str, Module]) -> None:
    """Every pending arrow and cycle is real: when one goes, its entry must go too."""
    found = {(m.name, t) for m in modules.values() for _, t in imported_modules(m, modules)}
    assert found >= PENDING_ARROWS
    assert all(c in cycles(modules) for c in PENDING_CYCLES)


def test_every_module_has_a_layer(modules: dict[str, Module]) -> None:
    assert [name for name in modules if layer_of(name) is None] == []


#: Folders whose Python files must not share a name (tests/ excepted: pytest's own).
NAMED_FOLDERS = ("augtool", "model", "benchmarks", "experiments", "checks")


def name_clashes(paths: list[str]) -> dict[str, list[str]]:
    """Module names (file stems, ``__init__`` excepted) borne by more than one file."""
    by_name: dict[str, list[str]] = {}
    for path in sorted(paths):
        stem = Path(path).stem
        if stem != "__init__":
            by_name.setdefault(stem, []).append(path)
    return {name: found for name, found in by_name.items() if len(found) > 1}


def test_module_names_are_unique() -> None:
    paths = [
        str(p.relative_to(REPO)) for folder in NAMED_FOLDERS for p in REPO.glob(f"{folder}/**/*.py")
    ]
    paths.append("cli.py")
    assert name_clashes(paths) == {}


#: "No module over about 500 lines": model/ holds to 500 (tests/test_model_layout.py);
#: augtool/ to 500 with a tenth's room for a module that would read worse split.
LIBRARY_MAX_LINES = 550


def long_modules(paths: list[Path], limit: int) -> dict[str, int]:
    """Repository path -> line count, for the modules over ``limit`` lines."""
    counts = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in paths
    }
    return {path: n for path, n in counts.items() if n > limit}


def test_no_module_of_augtool_is_over_about_500_lines() -> None:
    paths = sorted(REPO.glob("augtool/**/*.py"))
    assert len(paths) > 50
    assert long_modules(paths, LIBRARY_MAX_LINES) == {}
    assert list(long_modules([REPO / "augtool/api.py"], 100)) == ["augtool/api.py"]  # it counts


def test_a_repeated_module_name_is_caught() -> None:
    clashes = name_clashes(["augtool/tools/cells.py", "augtool/x/__init__.py", "model/cells.py"])
    assert clashes == {"cells": ["augtool/tools/cells.py", "model/cells.py"]}
    assert name_clashes(["augtool/a/__init__.py", "augtool/b/__init__.py"]) == {}


def test_only_the_backend_counts_cores(modules: dict[str, Module]) -> None:
    counting = sorted(
        m.path
        for m in modules.values()
        for node in runtime_nodes(m.tree)
        if isinstance(node, ast.Attribute) and node.attr in ("cpu_count", "sched_getaffinity")
    )
    assert set(counting) == {"augtool/engine/backends.py"}


# --- planted violations: every check can fail ----------------------------------------------


def planted(sources: dict[str, str]) -> dict[str, Module]:
    """Modules made from source strings, named like repository modules."""
    result = {}
    for name, source in sources.items():
        path = name.replace(".", "/") + ".py"
        result[name] = Module(name, path, ast.parse(source))
    return result


PLANTED = [
    (
        "install",
        {"model.data": "def load():\n    import albumentations\n"},
        "model.data -> albumentations",
    ),
    (
        "install",
        {
            "model.run": "from augtool.helper import thing\n",
            "augtool.helper": "def thing():\n    from augtool.pipeline import builtins\n",
            "augtool.pipeline.builtins": "",
        },
        "model.run -> augtool.helper -> augtool.pipeline",
    ),
    (
        "install",
        {"model.run": "from augtool.engine import expand\n", "augtool.engine.expand": ""},
        "model.run -> augtool.engine.expand",
    ),
    ("install", {"model.report": "from PIL import Image\n"}, "model.report -> PIL"),
    (
        "install",
        {"augtool.store.dataset": "import albumentations.core\n"},
        "augtool.store.dataset -> albumentations",
    ),
    (
        "install",
        {"augtool.tools.synth": "import albumentations as A\n"},
        "augtool.tools.synth -> album",
    ),
    ("install", {"model.run": "def f():\n    import tqdm\n"}, "model.run -> tqdm"),
    (
        "lazy",
        {
            "cli": "from augtool.engine import render\n",
            "augtool.engine.render": "import albumentations\n",
        },
        "cli -> augtool.engine.render -> albumentations at import time",
    ),
    ("lazy", {"augtool.engine.backends": "import distributed\n"}, "-> distributed at import time"),
    (
        "lazy",
        {"augtool.ops.pca": "try:\n    import torch\nexcept ImportError:\n    pass\n"},
        "torch",
    ),
    ("face", {"augtool.engine.expand": "def f():\n    import click\n"}, "imports click"),
    ("face", {"model.train": "from cli import main\n"}, "imports cli"),
    ("face", {"augtool.engine.verify": "from .. import commands\n"}, "imports augtool.commands"),
    ("purity", {"augtool.engine.plan": "import time\n"}, "augtool.engine.plan -> time"),
    ("purity", {"augtool.ops.pca": "def f():\n    from pathlib import Path\n"}, "-> pathlib"),
    (
        "purity",
        {
            "augtool.ops.a": "from augtool.store.decode import x\n",
            "augtool.store.decode": "import os\n",
        },
        "augtool.ops.a -> augtool.store.decode -> os",
    ),
    ("purity", {"augtool.ops.a": "def f(p):\n    return open(p)\n"}, "calls open()"),
    ("purity", {"augtool.engine.plan": "def f(p):\n    return p.read_bytes()\n"}, "read_bytes()"),
    ("purity", {"augtool.ops.geometry": "import datetime\n"}, "augtool.ops.geometry -> datetime"),
    ("random", {"augtool.engine.split": "import numpy as np\nnp.random.shuffle([1])\n"}, "shuffle"),
    ("random", {"model.train": "import random\nrandom.random()\n"}, "random.random"),
    ("random", {"augtool.tools.synth": "from numpy.random import rand\n"}, "numpy.random.rand"),
    ("random", {"model.train": "import torch\ntorch.manual_seed(0)\n"}, "torch.manual_seed"),
    (
        "layers",
        {"augtool.engine.render": "from augtool.tools.preview import sheet\n"},
        "imports augtool.tools.preview: engine may not import tools",
    ),
    (
        "layers",
        {"augtool.ops.geometry": "def f():\n    from augtool.store import decode\n"},
        "imports augtool.store: ops may not import store",
    ),
    (
        "layers",
        {"model.data": "from augtool.pipeline.core import Pipeline\n"},
        "model may not import pipeline",
    ),
    ("layers", {"model.run": "from augtool.engine import scan\n"}, "model may not import engine"),
    ("layers", {"augtool.store.decode": "from augtool import api\n"}, "store may not import api"),
    (
        "layers",
        {"augtool.commands.x_cmd": "def f():\n    from augtool.engine.expand import expand\n"},
        "commands may not import engine",
    ),
    (
        "layers",
        {"augtool.commands.x_cmd": "from augtool.api import expand\n"},
        "imports augtool.api: commands use the public API",
    ),
    ("layers", {"cli": "from augtool.store import ledger\n"}, "commands may not import store"),
    (
        "cycles",
        {"augtool.ops.a": "from augtool.ops import b\n", "augtool.ops.b": "import augtool.ops.a\n"},
        "augtool.ops.a <-> augtool.ops.b: an import cycle",
    ),
    (
        "cycles",
        {
            "augtool.x": "def f():\n    from augtool import y\n",
            "augtool.y": "from augtool.z import g\n",
            "augtool.z": "from augtool.x import f\n",
        },
        "augtool.x <-> augtool.y <-> augtool.z",
    ),
]


@pytest.mark.parametrize(("check", "sources", "expected"), PLANTED)
def test_a_planted_violation_is_caught(check: str, sources: dict[str, str], expected: str) -> None:
    problems = CHECKS[check](planted(sources))
    assert problems and expected in "\n".join(problems), problems


CLEAN = [
    ("lazy", {"augtool.pipeline.albu": "def load():\n    import albumentations\n"}),
    ("lazy", {"augtool.ops.pca": "class A:\n    def f(self):\n        import torch\n"}),
    (
        "install",
        {
            "model.data": "import numpy\nfrom augtool.store import dataset\n",
            "augtool.store.dataset": "",
        },
    ),
    ("face", {"augtool.commands.train_cmd": "import click\nfrom cli import main\n"}),
    ("face", {"cli": "import click\n"}),
    (
        "purity",
        {"augtool.engine.plan": "import numpy as np\nfrom augtool.errors import OptionError\n"},
    ),
    (
        "purity",
        {"augtool.ops.pca": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\n"},
    ),
    ("random", {"augtool.engine.plan": "import numpy as np\nrng = np.random.default_rng(0)\n"}),
    ("random", {"model.train": "import torch\ng = torch.Generator().manual_seed(0)\n"}),
    ("layers", {"augtool.engine.render": "from augtool.pipeline.core import Pipeline\n"}),
    ("layers", {"model.run": "from augtool.store import publish\nfrom augtool import defaults\n"}),
    ("layers", {"model.train": "def f():\n    from augtool import __version__\n"}),
    (
        "layers",
        {
            "augtool.commands.x_cmd": "import augtool\nfrom augtool import defaults\n"
            "from augtool.commands.flags import seed_option\nfrom model.run import train_run\n"
        },
    ),
    (
        "layers",
        {
            "augtool.ops.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from augtool.engine import x\n"
        },
    ),
    ("cycles", {"augtool.ops.a": "from augtool.ops import b\n", "augtool.ops.b": "import numpy\n"}),
]


@pytest.mark.parametrize(("check", "sources"), CLEAN)
def test_allowed_code_passes(check: str, sources: dict[str, str]) -> None:
    assert CHECKS[check](planted(sources)) == []


def test_imports_inside_functions_and_relative_imports_are_seen() -> None:
    tree = ast.parse("def f():\n    from .decode import image_size\n    import h5py.h5f\n")
    assert imports_of(tree, "augtool.store.dataset") == {
        "augtool.store.decode",
        "augtool.store.decode.image_size",
        "h5py.h5f",
    }


# --- the house on paper: docs/architecture.md and README's layout ----------------------------


def _draw_architecture():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "draw_architecture", REPO / "docs" / "draw_architecture.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_picture_of_the_layers_is_current() -> None:
    """docs/architecture.md quotes the layer graph of the source as it is now.

    (tests/test_docs.py re-runs the block and compares the picture's pixels too.)
    """
    draw = _draw_architecture()
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines()
    start = page.index("    $ python docs/draw_architecture.py architecture.png")
    quoted = [
        line.removeprefix("    ") for line in page[start + 1 : page.index("<!-- /output -->")]
    ]
    assert quoted == draw.graph_text(draw.layer_graph()), (
        "an import changed the layer graph: python docs/regenerate.py architecture.md"
    )
    assert set(draw.ORDER) == set(ALLOWED) == set(LAYERS.values())


def test_the_layer_graph_holds_only_allowed_arrows() -> None:
    draw = _draw_architecture()
    for layer, imported in draw.layer_graph().items():
        pending = {layer_of(t) for m, t in PENDING_ARROWS if layer_of(m) == layer}
        assert imported <= ALLOWED[layer] | pending, layer


def test_readmes_layout_is_current() -> None:
    draw = _draw_architecture()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert draw.readme_block(readme, draw.tree_lines()) == readme, (
        "README's layout is stale: python docs/draw_architecture.py --readme"
    )
