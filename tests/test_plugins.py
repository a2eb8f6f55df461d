"""Plug-ins run only by the user's own word: ``--plugin MODULE`` or an installed package.

A recipe or a dataset names transforms, never code: ``module:attribute`` and
``plugin_root`` are refused, a recorded plug-in is replayed only when the user
gives its module again, and whatever a module or entry point holds is checked
with ``isinstance`` before anything of it is called. Each hostile case writes a
marker file when its code runs; the tests assert the marker never appears.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from augtool.errors import OptionError
from augtool.pipeline.plugins import find_plugin, user_plugins
from augtool.pipeline.recipe_toml import read_recipe_file, recipe_from_dict
from tests.child_process import run_cli
from tests.test_recipes import PLUGIN

#: Module code that leaves a marker when it runs (imported = owned).
OWNED = """
from pathlib import Path
Path({marker!r}).write_text("ran")
X = 1
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on the import path with the invert plug-in and a hostile module."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_invert.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    user_plugins.cache_clear()
    yield folder
    user_plugins.cache_clear()
    for name in [n for n in sys.modules if n in ("my_invert", "owned_q", "calls_q", "ep_mod_q")]:
        del sys.modules[name]


def owned_module(folder: Path, name: str = "owned_q") -> Path:
    """Write ``<folder>/<name>.py`` that creates a marker file when imported; return the marker."""
    marker = folder.parent / f"{name}.ran"
    (folder / f"{name}.py").write_text(OWNED.format(marker=str(marker)))
    return marker


def test_recipe_naming_code_is_refused_naming_the_flag(plugin_dir: Path, make_raw) -> None:
    elsewhere = plugin_dir.parent / "elsewhere"
    elsewhere.mkdir()
    marker = owned_module(elsewhere)
    raw = make_raw({"A": 2})
    cases = {
        "attr.toml": "[[transform]]\nname = 'x'\nplugin = 'owned_q:X'\n",
        "root.toml": (
            f"[[transform]]\nname = 'x'\nplugin = 'owned_q:X'\nplugin_root = '{elsewhere}'\n"
        ),
        "system.toml": "[[transform]]\nname = 'x'\nplugin = 'os:system'\n",
    }
    for file, text in cases.items():
        (plugin_dir.parent / file).write_text(text)
        out = plugin_dir.parent / f"out-{file}"
        code, output = run_cli("expand", raw, out, "--recipe", plugin_dir.parent / file)
        assert code == 2, output
        assert "--plugin MODULE" in output and "Traceback" not in output, output
        assert not out.exists()
    assert not marker.exists() and "owned_q" not in sys.modules
    assert str(elsewhere) not in sys.path


def test_nothing_is_called_to_find_out_what_it_is(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append("system"))
    marker = plugin_dir.parent / "called"
    (plugin_dir / "calls_q.py").write_text(
        PLUGIN
        + f"\n\ndef make():\n    open({str(marker)!r}, 'w').write('called')\n    return INVERT\n"
        + "\n\nNOT_AN_ENTRY = 3\n"
    )
    table = user_plugins(("calls_q",))
    assert set(table) == {"invert"} and table["invert"].source == "calls_q"
    assert not marker.exists()  # make() was never called
    with pytest.raises(OptionError, match="a recipe names no code"):
        find_plugin("os:system")
    with pytest.raises(OptionError, match="no plug-in provides transform 'make'"):
        find_plugin("make", ("calls_q",))
    assert not calls and not marker.exists()
    with pytest.raises(OptionError, match=r"defines no augtool\.StepType"):
        user_plugins(("json",))


def test_a_module_the_user_names_that_does_not_import(plugin_dir: Path, make_raw) -> None:
    raw = make_raw({"A": 2})
    code, out = run_cli("expand", raw, plugin_dir.parent / "o", "--plugin", "no_such_mod_q")
    assert code == 2, out
    assert "--plugin: cannot import 'no_such_mod_q'" in out


def _recorded_with_plugin(plugin_dir: Path, make_raw) -> tuple[Path, Path]:
    raw = make_raw({"A": 2, "B": 2})
    recipe = plugin_dir.parent / "r.toml"
    recipe.write_text("[[transform]]\nname = 'neg'\nplugin = 'invert'\n")
    out = plugin_dir.parent / "out"
    code, text = run_cli(
        "expand", raw, out, "--recipe", recipe, "--plugin", "my_invert", "--target", 8, "-q",
        "--size", 32, "-j", 1,
    )  # fmt: skip
    assert code == 0, text
    return raw, out


def test_verify_regenerate_replays_a_plugin_only_by_the_users_word(
    plugin_dir: Path, make_raw
) -> None:
    raw, out = _recorded_with_plugin(plugin_dir, make_raw)
    code, text = run_cli("verify", out, "--regenerate", raw, "-j", 1, "-q")
    assert code == 2, text
    assert "'invert' (recorded from 'my_invert')" in text
    assert "--plugin MODULE" in text and "different bytes" not in text
    code, text = run_cli("verify", out, "--regenerate", raw, "--plugin", "my_invert", "-j", 1)
    assert code == 0, text
    assert "regenerated" in text or "ok" in text


def test_a_dataset_that_names_code_runs_none(plugin_dir: Path, make_raw) -> None:
    raw, out = _recorded_with_plugin(plugin_dir, make_raw)
    elsewhere = plugin_dir.parent / "elsewhere"
    elsewhere.mkdir()
    marker = owned_module(elsewhere)
    meta = json.loads((out / "augtool.json").read_text())
    step = meta["recipe"]["pipeline"]["transform"][0]
    for hostile in (
        {"plugin": "owned_q:X", "plugin_root": str(elsewhere)},
        {"plugin": "invert", "plugin_module": "owned_q"},
    ):
        step.clear()
        step.update({"name": "neg", **hostile})
        (out / "augtool.json").write_text(json.dumps(meta))
        code, text = run_cli("verify", out, "--regenerate", raw, "-j", 1, "-q")
        assert code == 2, text
        assert "--plugin" in text and "Traceback" not in text
    assert not marker.exists() and "owned_q" not in sys.modules
    assert str(elsewhere) not in sys.path
    # The recorded module name is never imported, even when the user's word is given.
    with pytest.raises(OptionError, match=r"no plug-in provides transform 'invert'.*owned_q"):
        recipe_from_dict(meta["recipe"]["pipeline"], ())
    assert not marker.exists()


def _install(site: Path, entry_points: str) -> None:
    """A fake installed distribution in ``site`` declaring ``entry_points``."""
    info = site / "fake_augtool_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-augtool-plugins\n")
    (info / "entry_points.txt").write_text(f"[augtool.transforms]\n{entry_points}\n")


def test_installed_package_entry_points(
    plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "ep_mod_q.py").write_text(PLUGIN + "\n\nNOT_AN_ENTRY = 3\n")
    marker = owned_module(site)
    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append("system"))
    _install(
        site,
        "ep_invert = ep_mod_q:INVERT\nowned = owned_q:X\nnot_entry = ep_mod_q:NOT_AN_ENTRY\n"
        "shell = os:system\n",
    )
    monkeypatch.syspath_prepend(str(site))
    recipe = tmp_path / "r.toml"
    recipe.write_text("[[transform]]\nname = 'neg'\nplugin = 'ep_invert'\n")
    loaded = read_recipe_file(recipe)
    assert loaded.steps[0].source == "entry point ep_mod_q:INVERT"
    assert not marker.exists()  # only the entry point a recipe names is loaded
    for name, why in (("not_entry", "is a int"), ("shell", "is a function")):
        recipe.write_text(f"[[transform]]\nname = 'x'\nplugin = '{name}'\n")
        with pytest.raises(OptionError, match=why):
            read_recipe_file(recipe)
    assert not calls


def test_an_albumentations_step_imports_nothing_outside_albumentations(
    plugin_dir: Path,
) -> None:
    pytest.importorskip("albumentations")
    marker = owned_module(plugin_dir)
    version = __import__("albumentations").__version__
    for name in ("owned_q.X", "os.system", "subprocess.run", "owned_q", "numpy.random.seed"):
        serialized = {"__version__": version, "transform": {"__class_fullname__": name, "p": 1}}
        text = f"[[transform]]\nname = 'a'\nalbumentations = '''{json.dumps(serialized)}'''\n"
        (plugin_dir / "a.toml").write_text(text)
        with pytest.raises(OptionError, match="is not a transform of albumentations"):
            read_recipe_file(plugin_dir / "a.toml")
    inner = {
        "__version__": version,
        "transform": {
            "__class_fullname__": "Compose",
            "p": 1,
            "transforms": [{"__class_fullname__": "owned_q.X", "p": 1}],
        },
    }
    with pytest.raises(OptionError, match=r"transforms\[0\]\.__class_fullname__"):
        recipe_from_dict({"transform": [{"name": "a", "albumentations": inner}]})
    assert not marker.exists() and "owned_q" not in sys.modules


def test_resume_of_a_run_with_a_plugin_needs_the_plugin_again(plugin_dir: Path, make_raw) -> None:
    import augtool
    from augtool.errors import Interrupted
    from augtool.store import writers
    from tests.test_expand_signals import InterruptAt

    raw = make_raw({"A": 2, "B": 2})
    recipe = plugin_dir.parent / "r.toml"
    recipe.write_text("[[transform]]\nname = 'neg'\nplugin = 'invert'\n")
    out = plugin_dir.parent / "out"
    options = {"recipe": recipe, "target": 8, "size": 32, "workers": 1}
    with pytest.raises(Interrupted):
        augtool.expand(raw, out, plugins=("my_invert",), progress=InterruptAt(3), **options)
    partial = writers.partial_path(out)
    held = writers.Journal(partial / writers.JOURNAL_NAME).count()
    assert held > 0
    args = ("expand", raw, out, "--recipe", recipe, "--target", 8, "--size", 32, "-j", 1)
    code, text = run_cli(*args, "--resume", "-q")
    assert code == 2, text
    assert "--plugin" in text and "invert" in text and "Traceback" not in text
    assert partial.is_dir() and not out.exists()  # the partial is kept for the right command
    summary = augtool.expand(raw, out, plugins=("my_invert",), resume=True, **options)
    assert summary.resumed == held and summary.total == 8
    assert not partial.exists() and (out / "augtool.json").is_file()
