"""model/ reads like its layers: cross-validation on top, short modules, a lazy package.

The import graph is tests/test_architecture.py's (imports inside functions count,
``TYPE_CHECKING`` blocks do not); that file also fails on any import cycle, model/'s
``cv -> run -> scoring -> cv`` of old included.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_architecture import REPO, module_graph, repository_modules

#: Longest module of model/ that stays readable in one sitting.
MAX_LINES = 500


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return module_graph(repository_modules())


def importers_of(target: str, graph: dict[str, set[str]]) -> set[str]:
    """Modules that import ``target``."""
    return {name for name, imported in graph.items() if target in imported}


def test_only_the_train_command_imports_cross_validation(graph: dict[str, set[str]]) -> None:
    """``model.cv`` sits at the top of model/: a client of runs, never a base for them."""
    importers = importers_of("model.cv", graph)
    assert importers, "the train command imports model.cv (--fold all)"
    assert all(name.startswith("augtool.commands.") for name in importers), sorted(importers)


def test_the_check_sees_an_importer_of_cv() -> None:
    planted = {"model.run": {"model.cv"}, "augtool.commands.train_cmd": {"model.cv"}}
    assert importers_of("model.cv", planted) == {"model.run", "augtool.commands.train_cmd"}


def test_model_modules_stay_readable() -> None:
    long = {
        path.name: n
        for path in sorted((REPO / "model").glob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
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
