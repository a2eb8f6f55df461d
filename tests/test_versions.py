"""The versions that decide the bytes: printed by ``augtool --version``, compared by verify."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from click.testing import CliRunner

from augtool import __version__
from augtool.versions import (
    distribution_version,
    installed_versions,
    recorded_differences,
    version_report,
)
from cli import main


def test_version_names_every_library_that_decides_the_bytes() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"augtool, version {__version__}"
    shown = dict(line.split(None, 1) for line in lines[1:])
    assert list(shown) == ["python", "numpy", "opencv", "albumentations", "h5py", "torch"]
    assert shown["numpy"] == metadata.version("numpy")
    assert shown["h5py"] == metadata.version("h5py")
    assert shown["opencv"] == distribution_version("opencv")
    assert shown["opencv"].startswith(".".join(__import__("cv2").__version__.split(".")[:2]))


def test_version_imports_none_of_the_heavy_libraries() -> None:
    code = (
        "import sys, cli; sys.argv = ['augtool', '--version']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'cv2', 'h5py', 'albumentations') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_library_that_is_not_installed_says_so(monkeypatch) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name == "albumentations":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    assert installed_versions()["albumentations"] is None
    assert "  albumentations  not installed\n" in version_report()


def test_recorded_differences_compare_the_byte_deciding_libraries_only() -> None:
    running = {"augtool": "0.1.0", "numpy": "2.4.6", "opencv": "5.1.0", "albumentations": ""}
    same = {"augtool": "0.1.0", "python": "3.11.0", "numpy": "2.4.6", "opencv": "5.1.0"}
    assert recorded_differences(same, running) == []  # python is recorded, not compared
    other = {**same, "opencv": "5.0.0", "albumentations": "2.0.8"}
    assert recorded_differences(other, running) == [
        "opencv 5.0.0 -> 5.1.0",
        "albumentations 2.0.8 -> not installed",
    ]
