"""The suite's set-up: one test command everywhere, xdist declared, fixtures built once."""

from __future__ import annotations

import configparser
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import build_once

REPO = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    """The one command of the README's "Tests" section."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Tests\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0].strip()


def test_readme_ci_and_quickstart_run_the_same_test_command() -> None:
    command = readme_test_command()
    assert command.startswith("python -m pytest -n ")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert [line for line in ci if line.strip() and not line.startswith("#")][-1] == command
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    install = "pip install -c constraints.txt -e '.[train,test]'"
    assert f"{install} && {command}\n" in readme  # the Quickstart's second command
    assert "pip install -c constraints.txt -e . && augtool synth" in readme  # its first
    locked = "-c constraints.txt -e '.[train,test]'"
    assert any(line.startswith("python -m pip install") and locked in line for line in ci)
    quickstart = (REPO / "checks" / "quickstart.sh").read_text(encoding="utf-8")
    assert f'step "2-pytest" {command}\n' in quickstart
    assert f'step "2-pip-install" {install}\n' in quickstart


def _requirements() -> list[str]:
    """Every requirement of setup.cfg: install_requires and every extra."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].split("\n")
    for extra in cfg["options.extras_require"].values():
        lines += extra.split("\n")
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_requirement_within_setup_cfg_bounds() -> None:
    pins = _lock()
    for line in _requirements():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {name} (python checks/lock.py)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside setup.cfg's {line!r}"
        )
    assert pins["torch"] == "2.13.0"  # the CPU build on this project's machines
    header = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()[:5]
    assert any("python checks/lock.py" in line for line in header)


def test_the_test_extra_installs_what_the_command_needs() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    test_extra = cfg["options.extras_require"]["test"].split()
    assert any(req.startswith("pytest-xdist>=") and ",<" in req for req in test_extra)


def test_the_slow_marker_is_registered_and_the_default_run_keeps_slow_tests(
    pytestconfig: pytest.Config,
) -> None:
    assert any(line.startswith("slow:") for line in pytestconfig.getini("markers"))
    assert "-m" not in pytestconfig.getini("addopts")  # the full suite is the default run


def _factory(base: Path) -> SimpleNamespace:
    base.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(getbasetemp=lambda: base)


def test_build_once_builds_one_folder_for_all_workers(tmp_path: Path) -> None:
    """Two xdist workers (threads here, each with its own lock file handle) ask at once."""
    built: list[str] = []

    def build(folder: Path) -> None:
        built.append(folder.name)
        time.sleep(0.2)  # the other worker arrives while this one builds
        (folder / "data").write_text("x")

    worker = SimpleNamespace(workerinput={})
    got: dict[str, Path] = {}

    def ask(name: str) -> None:
        got[name] = build_once(worker, _factory(tmp_path / f"popen-{name}"), "thing", build)

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("gw0", "gw1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == ["shared-thing"]
    assert got["gw0"] == got["gw1"] == tmp_path / "shared-thing"
    assert (got["gw0"] / "data").read_text() == "x"


def test_build_once_without_xdist_and_after_a_failed_build(tmp_path: Path) -> None:
    plain = SimpleNamespace()  # no workerinput: a run without -n
    calls: list[int] = []

    def fails(folder: Path) -> None:
        calls.append(1)
        (folder / "half").write_text("x")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        build_once(plain, _factory(tmp_path), "thing", fails)

    def works(folder: Path) -> None:
        calls.append(2)
        (folder / "whole").write_text("y")

    folder = build_once(plain, _factory(tmp_path), "thing", works)
    assert folder == tmp_path / "shared-thing"
    assert calls == [1, 2]
    assert sorted(p.name for p in folder.iterdir()) == ["whole"]  # the failed half is gone
    assert build_once(plain, _factory(tmp_path), "thing", works) == folder
    assert calls == [1, 2]
