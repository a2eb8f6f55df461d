"""Re-run every command whose output or picture is quoted in docs/, and rewrite the quotes.

A quoted output is marked in the Markdown source::

    <!-- output data=cells keep=sheet.png:img/preview_real_cell.png -->
        $ augtool preview raw/WBC/BloodImage_00039_wbc.jpg sheet.png --size 144
        wrote contact sheet sheet.png (768x614 px, 13 tiles)
    <!-- /output -->

The block's lines that start with ``$`` are shell commands. They run in order,
in a fresh temporary folder, with ``augtool`` and ``python`` meaning this
checkout (``python -m cli`` with ``PYTHONPATH`` set to the repository) and with
``examples/``, ``benchmarks/``, ``experiments/``, ``checks/``, ``tests/`` and
``docs/`` linked in. What each command prints (stdout and stderr together)
replaces the lines after it. Attributes:

``data=cells``
    ``raw/`` is a copy of ``../shared/data/bccd-cells`` (the 141 real cells); the
    block is skipped when that folder is absent.
``data=shared``
    The commands run in a folder beside a link named ``shared`` to the
    checkout's ``../shared``, so ``../shared/data/...`` means what it means in
    the repository root (read only: write outputs to the run folder); the block
    is skipped when ``../shared/data`` is absent.
``slow``
    Takes more than a few seconds: rewritten by this script, not re-run by
    ``tests/test_docs.py``.
``keep=FILE:DOCS_PATH``
    After the commands, copy ``FILE`` (in the temporary folder) to
    ``docs/DOCS_PATH``; repeatable. The test compares the pixels.
``setup: SHELL ...``
    Last in the comment: a shell snippet run before the commands, not shown.

Run from the repository root::

    python docs/regenerate.py               # every block of every page
    python docs/regenerate.py preview.md    # one page
    python docs/regenerate.py --check       # rewrite nothing; list what differs
    python docs/regenerate.py --list        # every block: quick (re-run by the test) or slow
    python docs/regenerate.py --unlocked    # write pictures under versions the lock does not pin

Pictures depend on the library versions that drew them (OpenCV above all).
``docs/img/versions.json`` records, for every kept picture, the numpy, OpenCV
and albumentations versions it was made with; ``tests/test_docs.py`` compares
pixels only under those versions and otherwise skips the comparison, naming
them. This script writes pictures only under the versions ``constraints.txt``
pins (``--unlocked`` to write them anyway, e.g. to try a new lock).

Progress lines that long commands print into a log (``expand: 410/1025 (40 %),
62/s, elapsed 7 s, ETA 10 s``, :class:`augtool.progress.LogLines`) are left out
of the quotes: how many appear depends on the machine's speed, and on a
terminal they are a bar that is gone when the command ends.

Timings inside outputs (``in 6.0 s (249 images/s)``) change from run to run
and with the load of the machine; :func:`normalise` replaces them before two
outputs are compared, and a block whose output is the same but for timings is
left as it is (its timings stay those of the run that last changed it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
SHARED = REPO.parent / "shared"
REAL_CELLS = SHARED / "data" / "bccd-cells"
DATA_KINDS = ("none", "cells", "shared")
LINKED = ("examples", "benchmarks", "experiments", "checks", "tests", "docs")
INDENT = "    "
LOCK = REPO / "constraints.txt"
#: Libraries whose versions decide a picture's pixels (``augtool.versions`` names).
PICTURE_LIBRARIES = ("numpy", "opencv", "albumentations", "pillow")
#: For each kept picture (``img/...``), the versions of :data:`PICTURE_LIBRARIES` that drew it.
PICTURE_VERSIONS = DOCS / "img" / "versions.json"

_OPEN = re.compile(r"^<!-- output(?P<attrs>(?: [^ >]+)*?)(?: setup: (?P<setup>.*?))? -->$")
_CLOSE = "<!-- /output -->"
#: A progress line of :class:`augtool.progress.LogLines`: ``phase: done/total (p %), ...``.
_PROGRESS = re.compile(r"^[\w ]+: \d+/\d+ \(\d+ %\), ")
_TIMINGS = (
    (re.compile(r"\bin \d+(?:\.\d+)? s\b"), "in <T> s"),
    (re.compile(r"\(\d+(?:\.\d+)? images/s"), "(<R> images/s"),
    (re.compile(r"\b\d+(?:\.\d+)? ms\b"), "<T> ms"),
)


@dataclass
class Block:
    """One marked output block of a page.

    Attributes:
        page: The Markdown file.
        start: Index of the opening comment line.
        end: Index of the closing comment line.
        data: ``none``, ``cells`` or ``shared``.
        slow: Not re-run by the test.
        keep: ``(file in the run folder, path under docs/)`` pairs.
        setup: Hidden shell snippet run first.
        commands: The ``$`` commands, in order.
        gaps: Whether a blank line precedes each command in the quote.
        quoted: The quoted lines between the comments, indentation removed.
    """

    page: Path
    start: int
    end: int
    data: str = "none"
    slow: bool = False
    keep: list[tuple[str, str]] = field(default_factory=list)
    setup: str = ""
    commands: list[str] = field(default_factory=list)
    gaps: list[bool] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        """``page.md:line`` of the opening comment."""
        return f"{self.page.name}:{self.start + 1}"

    @property
    def runnable(self) -> bool:
        """False when the block needs the real data and it is absent."""
        if self.data == "cells":
            return REAL_CELLS.is_dir()
        if self.data == "shared":
            return (SHARED / "data").is_dir()
        return True

    def workdir(self, folder: Path) -> Path:
        """Where the commands run, given the block's run folder."""
        return folder / "work" if self.data == "shared" else folder


def parse_page(page: Path) -> list[Block]:
    """The marked blocks of one Markdown page.

    Raises:
        ValueError: On an unclosed block, an unknown attribute, or a block without commands.
    """
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        try:
            end = lines.index(_CLOSE, i + 1)
        except ValueError:
            raise ValueError(f"{page.name}:{i + 1}: output block is never closed") from None
        block = Block(page=page, start=i, end=end, setup=match["setup"] or "")
        for attr in (match["attrs"] or "").split():
            key, _, value = attr.partition("=")
            if key == "data" and value in DATA_KINDS:
                block.data = value
            elif key == "slow" and not value:
                block.slow = True
            elif key == "keep" and ":" in value:
                src, _, dest = value.partition(":")
                block.keep.append((src, dest))
            else:
                raise ValueError(f"{block.where}: unknown attribute {attr!r}")
        block.quoted = [line.removeprefix(INDENT) for line in lines[i + 1 : end]]
        blank = False
        for line in block.quoted:
            if line.startswith("$ "):
                block.commands.append(line[2:])
                block.gaps.append(blank)
            blank = not line.strip()
        if not block.commands:
            raise ValueError(f"{block.where}: output block without a '$ ' command")
        blocks.append(block)
        i = end + 1
    return blocks


def pages() -> list[Path]:
    """Every Markdown page under docs/."""
    return sorted(DOCS.glob("*.md"))


_COMMANDS = {
    "augtool": 'exec "$AUGTOOL_PYTHON" -c "import cli; cli.main(prog_name=\'augtool\')" "$@"\n',
    "python": 'exec "$AUGTOOL_PYTHON" "$@"\n',
}


def _environment(bin_dir: Path, commands: dict[str, str] | None = None) -> dict[str, str]:
    """The commands' environment: ``augtool`` and ``python`` in ``bin_dir``, first on PATH.

    They are small scripts that ``exec`` this interpreter, not shell functions,
    so ``$!`` of ``augtool ... &`` is the process that does the work and a
    signal sent to it reaches augtool, as it does with the installed command.
    ``commands`` replaces the bodies of some of them (tests/test_docs.py: a
    warm ``augtool``).
    """
    for name, body in {**_COMMANDS, **(commands or {})}.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = str(bin_dir) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["AUGTOOL_PYTHON"] = sys.executable
    env.pop("COLUMNS", None)
    return env


def run_block(
    block: Block, folder: Path, timeout: float = 600, commands: dict[str, str] | None = None
) -> list[str]:
    """Run a block's commands in ``folder``; the quote as the commands print it now.

    Args:
        block: The block.
        folder: An empty folder to run in (``raw/`` and the links are made here,
            or in ``folder/work`` for ``data=shared``: :meth:`Block.workdir`).
        timeout: Seconds allowed for each command.
        commands: Shell bodies that replace those of the ``augtool`` or
            ``python`` scripts (default: each ``exec``s this interpreter).

    Returns:
        The new quoted lines (no indentation): each command, then its output.

    Raises:
        RuntimeError: If the setup snippet fails.
    """
    if block.data == "shared":
        (folder / "shared").symlink_to(SHARED)
    folder = block.workdir(folder)
    folder.mkdir(exist_ok=True)
    if block.data == "cells":
        shutil.copytree(REAL_CELLS, folder / "raw")
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    with tempfile.TemporaryDirectory(prefix="augtool-docs-bin-") as bin_dir:
        env = _environment(Path(bin_dir), commands)
        if block.setup:
            done = subprocess.run(
                ["bash", "-c", block.setup],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{block.where}: setup failed: {done.stdout}{done.stderr}")
        out: list[str] = []
        for command, gap in zip(block.commands, block.gaps, strict=True):
            if gap and out:
                out.append("")
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
            )
            out.append(f"$ {command}")
            out += [
                line for line in done.stdout.rstrip("\n").splitlines() if not _PROGRESS.match(line)
            ]
    return out


def normalise(lines: list[str]) -> list[str]:
    """The lines with timings replaced by placeholders, trailing blanks dropped."""
    result = []
    for line in lines:
        for pattern, placeholder in _TIMINGS:
            line = pattern.sub(placeholder, line)
        result.append(line.rstrip())
    while result and not result[-1]:
        result.pop()
    return result


def running_picture_versions() -> dict[str, str | None]:
    """This machine's versions of :data:`PICTURE_LIBRARIES` (None: not installed)."""
    from augtool.versions import distribution_version

    return {name: distribution_version(name) for name in PICTURE_LIBRARIES}


def recorded_picture_versions() -> dict[str, dict[str, str | None]]:
    """``docs/img/versions.json``: picture -> the library versions that drew it."""
    if not PICTURE_VERSIONS.is_file():
        return {}
    return json.loads(PICTURE_VERSIONS.read_text(encoding="utf-8"))


def locked_picture_versions() -> dict[str, str | None]:
    """The versions of :data:`PICTURE_LIBRARIES` that ``constraints.txt`` pins."""
    wheels = {"opencv": "opencv-python-headless"}
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower()] = version.strip()
    return {name: pins.get(wheels.get(name, name)) for name in PICTURE_LIBRARIES}


def _differences(made: dict[str, str | None], here: dict[str, str | None]) -> str:
    """``"opencv 5.1.0.95, here 5.0.0.93; numpy ..."``: the libraries whose versions differ."""
    return "; ".join(
        f"{name} {made.get(name)}, here {here.get(name)}"
        for name in PICTURE_LIBRARIES
        if made.get(name) != here.get(name)
    )


def picture_version_mismatch(block: Block) -> str | None:
    """Why the block's pictures cannot be compared pixel for pixel here, or None.

    A picture is compared only under the library versions that made it: another
    OpenCV may resample, anti-alias or draw text differently without anything
    being wrong.
    """
    recorded, here = recorded_picture_versions(), running_picture_versions()
    for _, dest in block.keep:
        made = recorded.get(dest)
        if made is None:
            return f"{dest}: no library versions recorded in {PICTURE_VERSIONS.name}"
        if made != here:
            return (
                f"{dest} was drawn under other library versions ({_differences(made, here)}): "
                f"pixels are compared only under the versions that drew it "
                f"(pip install -c constraints.txt)"
            )
    return None


def stale_pictures(block: Block, folder: Path) -> list[str]:
    """The kept pictures whose pixels differ from the committed ones (after :func:`run_block`)."""
    import cv2
    import numpy as np

    folder = block.workdir(folder)
    stale = []
    for src, dest in block.keep:
        made = cv2.imread(str(folder / src), cv2.IMREAD_UNCHANGED)
        committed = cv2.imread(str(DOCS / dest), cv2.IMREAD_UNCHANGED)
        same = made is not None and committed is not None and made.shape == committed.shape
        if not (same and np.array_equal(made, committed)):
            stale.append(dest)
    return stale


def regenerate(block: Block, folder: Path) -> tuple[list[str], list[str]]:
    """Run a block, copy the pictures it keeps into docs/ and record their library versions.

    Returns:
        The new quoted lines and the kept pictures whose pixels changed.
    """
    lines = run_block(block, folder)
    changed = stale_pictures(block, folder)
    recorded = recorded_picture_versions()
    for src, dest in block.keep:
        produced = block.workdir(folder) / src
        if not produced.is_file():
            raise RuntimeError(f"{block.where}: the commands did not write {src}")
        shutil.copyfile(produced, DOCS / dest)
        recorded[dest] = running_picture_versions()
    if block.keep:
        text = json.dumps(dict(sorted(recorded.items())), indent=2, sort_keys=True)
        PICTURE_VERSIONS.write_text(text + "\n", encoding="utf-8")
    return lines, changed


def rewrite(page: Path, replacements: dict[int, tuple[int, list[str]]]) -> None:
    """Replace the blocks of ``page`` (by opening line) with new quoted lines."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for start in sorted(replacements, reverse=True):
        end, new = replacements[start]
        lines[start + 1 : end] = [INDENT + line if line else "" for line in new]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or with ``--check`` compare) the marked blocks of the named pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="Page names under docs/ [default: all].")
    parser.add_argument("--check", action="store_true", help="Compare only; write nothing.")
    parser.add_argument("--fast", action="store_true", help="Leave out the blocks marked slow.")
    parser.add_argument(
        "--list", action="store_true", help="List the blocks and what checks them; run nothing."
    )
    parser.add_argument(
        "--unlocked",
        action="store_true",
        help="Write pictures under library versions that constraints.txt does not pin.",
    )
    args = parser.parse_args(argv)
    chosen = [DOCS / name for name in args.pages] if args.pages else pages()
    if args.list:
        for page in chosen:
            for block in parse_page(page):
                checker = "regenerate.py only" if block.slow else "tests/test_docs.py"
                print(f"{block.where}\tdata={block.data}\t{checker}\t$ {block.commands[0]}")
        return 0
    unlocked = _differences(locked_picture_versions(), running_picture_versions())
    if unlocked and not (args.check or args.unlocked):
        print(
            f"the pictures in docs/ are drawn under the versions constraints.txt pins, and this "
            f"environment differs ({unlocked}): pip install -c constraints.txt "
            f"-e '.[train,test]' first, or pass --unlocked",
            file=sys.stderr,
        )
        return 2
    differ = 0
    for page in chosen:
        replacements: dict[int, tuple[int, list[str]]] = {}
        for block in parse_page(page):
            if not block.runnable or (args.fast and block.slow):
                print(f"{block.where}: skipped", file=sys.stderr)
                continue
            with tempfile.TemporaryDirectory(prefix="augtool-docs-") as tmp:
                if args.check:
                    new = run_block(block, Path(tmp))
                    pictures = stale_pictures(block, Path(tmp))
                else:
                    new, pictures = regenerate(block, Path(tmp))
            same = normalise(new) == normalise(block.quoted) and not pictures
            differ += not same
            print(f"{block.where}: {'same' if same else 'CHANGED'}", file=sys.stderr)
            if not args.check and not same:
                replacements[block.start] = (block.end, new)
        if replacements:
            rewrite(page, replacements)
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
