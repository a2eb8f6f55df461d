"""Write ``constraints.txt``: the exact versions of everything augtool installs, every extra.

augtool's bytes (its outputs, the pictures in docs/, the benchmarks' workloads)
depend on the versions of OpenCV, numpy and albumentations, so the tests, the
docs and CI run under one lock of exact versions, while ``setup.cfg`` keeps loose
lower bounds for people who install augtool into an environment of their own
(docs/reproducibility.md says which to use when).

The lock is pip's own resolution of ``setup.cfg`` with every extra, made without
installing anything (``pip install --dry-run --ignore-installed --report``), plus
pip itself, with torch held at the CPU build this project tests with::

    python checks/lock.py              # resolve the newest allowed versions, write constraints.txt
    python checks/lock.py --print      # print the lock instead of writing it

Then regenerate the docs (``python docs/regenerate.py``) and run the suite under
the new lock before committing it. It resolves for the running Python and
platform (the file's header names them); run it with the Python 3.11 on Linux
x86_64 that CI uses.
"""

from __future__ import annotations

import argparse
import configparser
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "constraints.txt"
#: The CPU build on this project's machines; a newer torch from PyPI is a multi-GB CUDA build.
TORCH = "torch==2.13.0"


def extras() -> list[str]:
    """Every extra that ``setup.cfg`` declares."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return sorted(config["options.extras_require"])


def resolve() -> dict[str, str]:
    """The resolution by pip of augtool with every extra: ``{name: version}``, public versions."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--report", str(report), TORCH, "-e", f"{REPO}[{','.join(extras())}]",
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        installs = json.loads(report.read_text())["install"]
    pins = {}
    for item in installs:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if name.lower() != "augtool":
            pins[name] = version.split("+", 1)[0]  # torch 2.13.0+cpu: the public version
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    pins["pip"] = pip
    return pins


def render(pins: dict[str, str]) -> str:
    """The text of ``constraints.txt``."""
    made = datetime.now(UTC).strftime("%Y-%m-%d")
    header = [
        "# The exact versions augtool's tests, docs pictures and benchmarks are made with.",
        f"# Made by `python checks/lock.py` on {made} with Python {platform.python_version()}",
        f"# on {platform.system()} {platform.machine()}, for every extra of setup.cfg.",
        "# Use it as pip constraints: pip install -c constraints.txt -e '.[train,test]'",
        "# (docs/reproducibility.md: when to use the lock, and how to refresh it).",
    ]
    body = [f"{name}=={pins[name]}" for name in sorted(pins, key=str.lower)]
    return "\n".join(header + body) + "\n"


def main() -> None:
    """Resolve, then write or print the lock."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print instead of writing")
    args = parser.parse_args()
    text = render(resolve())
    if args.print:
        sys.stdout.write(text)
        return
    LOCK.write_text(text)
    print(f"wrote {LOCK.relative_to(REPO)} ({text.count(chr(10)) - 5} pins)")


if __name__ == "__main__":
    main()
