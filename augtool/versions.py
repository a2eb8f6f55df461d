"""The library versions that decide augtool's bytes, read without importing the libraries.

augtool's outputs are byte-identical for the same inputs, options and seed *under
the same library versions*: OpenCV's resampling and PNG encoder, numpy's
arithmetic and albumentations' transforms may change a pixel or a compressed byte
from one release to the next. ``constraints.txt`` pins the versions the project
tests with; ``augtool --version`` prints the ones installed; ``augtool.json``
records those a dataset was made with, and ``verify --regenerate`` names the
ones that differ before it compares any bytes (docs/reproducibility.md).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

from augtool import __version__

#: Distributions whose versions ``augtool --version`` reports, in that order.
#: OpenCV is whichever of its wheels is installed (they all provide ``cv2``).
REPORTED = ("numpy", "opencv", "albumentations", "h5py", "torch")

#: The wheels that provide ``cv2``, the headless one first (the one augtool asks for).
OPENCV_DISTRIBUTIONS = (
    "opencv-python-headless",
    "opencv-python",
    "opencv-contrib-python-headless",
    "opencv-contrib-python",
)

#: Keys of ``augtool.json``'s ``versions`` whose difference can change output bytes.
#: (``python`` is recorded too; the bytes do not depend on it.)
BYTE_KEYS = ("augtool", "numpy", "opencv", "albumentations")


def distribution_version(name: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed.

    Args:
        name: A distribution name, or ``opencv`` for whichever OpenCV wheel is
            installed.
    """
    names = OPENCV_DISTRIBUTIONS if name == "opencv" else (name,)
    for candidate in names:
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def installed_versions() -> dict[str, str | None]:
    """augtool, Python and every library of :data:`REPORTED` (None: not installed)."""
    found: dict[str, str | None] = {"augtool": __version__, "python": platform.python_version()}
    for name in REPORTED:
        found[name] = distribution_version(name)
    return found


def version_report() -> str:
    """What ``augtool --version`` prints: augtool's version, then one line per library."""
    found = installed_versions()
    lines = [f"augtool, version {found.pop('augtool')}"]
    lines += [f"  {name:<15} {version or 'not installed'}" for name, version in found.items()]
    return "\n".join(lines)


def recorded_differences(recorded: Mapping[str, object], running: Mapping[str, str]) -> list[str]:
    """The byte-deciding libraries whose recorded version differs from the running one.

    Args:
        recorded: ``augtool.json``'s ``versions`` (as written by ``expand``).
        running: The same keys for this process (``opencv`` is ``cv2.__version__``,
            as ``expand`` records it).

    Returns:
        One ``"name recorded -> running"`` entry per difference, in
        :data:`BYTE_KEYS` order; a library recorded but absent here reads
        ``not installed``. Libraries not recorded are not compared.
    """
    differences = []
    for key in BYTE_KEYS:
        if key not in recorded:
            continue
        was, now = str(recorded[key]), running.get(key) or "not installed"
        if was != now:
            differences.append(f"{key} {was} -> {now}")
    return differences
