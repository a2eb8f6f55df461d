"""Draw augtool's layers and the imports between them, read from the source.

Every module of ``augtool/``, ``model/`` and ``cli.py`` is read with ``ast``
(nothing is imported or run) and put in its layer by the table of the
architecture test (``tests/test_architecture.py``: ``LAYERS``), so the picture
and the test cannot disagree. One box per layer, top to bottom as they may
import each other; one arc per pair of layers with at least one import between
them, from the importer down to the imported (imports inside functions count;
``if TYPE_CHECKING:`` blocks do not).

Usage::

    python docs/draw_architecture.py architecture.png   # the picture, and the graph as text
    python docs/draw_architecture.py --tree             # the layout of README.md
    python docs/draw_architecture.py --readme           # rewrite README.md's layout

``docs/architecture.md`` quotes the first (a marked block of
``docs/regenerate.py``: the picture is ``docs/img/architecture.png``), and
``tests/test_architecture.py`` fails when the quote or README's layout is stale.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.test_architecture import (  # noqa: E402  (the repository on the path first)
    LAYERS,
    imported_modules,
    layer_of,
    repository_modules,
)

#: Layers top to bottom: each may import only layers below it.
ORDER = (
    "commands",
    "api",
    "tools",
    "engine",
    "pipeline",
    "model",
    "annotations",
    "store",
    "ops",
    "base",
)
#: What each layer is, in a few words.
ROLE = {
    "commands": "the click face: flags -> one API call -> exit codes",
    "api": "the public API: expand, dry_run, verify, Pipeline ...",
    "tools": "cells, previews, the report, synthetic smears",
    "engine": "scan, split, plan, render, backends, expand, verify",
    "pipeline": "steps, recipes, albumentations, plug-ins",
    "model": "training beside augtool: reads datasets via store",
    "annotations": "VOC / COCO / YOLO boxes and masks",
    "store": "schema, codecs, writers, publish, read, ledger",
    "ops": "pure functions of image, targets and parameters",
    "base": "errors, defaults, progress, versions, drawing",
}
#: README's layout: the top-level entries that are not packages of a layer.
OTHER_ENTRIES = {
    "tests/": "pytest's suite (python -m pytest -n 2 --dist loadfile)",
    "docs/": "the pages; regenerate.py remakes every quoted output and picture",
    "examples/": "scripts that use augtool end to end",
    "benchmarks/": "the scripts that print speed and memory figures (docs/performance.md)",
    "experiments/": "the runs behind docs/results.md and their lab notebook (NOTEBOOK.md)",
    "checks/": "whole-checkout checks: GPU path, robustness, soak, quickstart, bytes, lock",
}


def layer_graph() -> dict[str, set[str]]:
    """Layer -> the other layers its modules import (from the source, as the test reads it)."""
    modules = repository_modules()
    graph: dict[str, set[str]] = {layer: set() for layer in ORDER}
    for module in modules.values():
        mine = layer_of(module.name)
        for _, target in imported_modules(module, modules):
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs != mine:
                graph[mine].add(theirs)
    return graph


def homes() -> dict[str, list[str]]:
    """Layer -> the paths of the repository that make it (packages, root modules)."""
    found: dict[str, list[str]] = defaultdict(list)
    for prefix, layer in LAYERS.items():
        if prefix == "augtool.__version__":
            continue
        path = prefix.replace(".", "/")
        if (REPO / path).is_dir():
            found[layer].append(path + ("/__init__.py" if prefix == "augtool" else "/"))
        else:
            found[layer].append(path + ".py")
    if "augtool/__init__.py" in found["api"]:
        found["api"].append("augtool/api.py")
    return {layer: sorted(paths) for layer, paths in found.items()}


def graph_text(graph: dict[str, set[str]]) -> list[str]:
    """The graph as lines: each layer, its paths, and what it imports."""
    where = homes()
    lines = []
    for layer in ORDER:
        imports = ", ".join(sorted(graph[layer], key=ORDER.index)) or "-"
        lines.append(f"{layer:<12} -> {imports}")
        lines.append(f"{'':<12}    {', '.join(where[layer])}")
    return lines


def tree_lines() -> list[str]:
    """README's layout: each layer, what it is, and the modules that make it."""
    lines = []
    for layer in ORDER:
        paths = homes()[layer]
        lines.append(f"{layer:<12} {ROLE[layer]}")
        for path in paths:
            folder = REPO / path
            if folder.is_dir():
                modules = sorted(
                    p.relative_to(folder).with_suffix("").as_posix()
                    for p in folder.rglob("*.py")
                    if p.name != "__init__.py"
                )
                lines += _wrapped(f"{path} {', '.join(modules)}", 13)
        files = [path for path in paths if not (REPO / path).is_dir()]
        if files:
            lines += _wrapped(", ".join(files), 13)
    lines.append("")
    lines += [f"{path:<12} {about}" for path, about in OTHER_ENTRIES.items()]
    return lines


def _wrapped(text: str, indent: int, width: int = 92) -> list[str]:
    """``text`` in lines of at most ``width`` characters, each indented by ``indent``."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and indent + len(line) + 1 + len(word) > width:
            lines.append(" " * indent + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(" " * indent + line)
    return lines


# --- the picture ---------------------------------------------------------------------------

BOX_W, BOX_H, GAP, LEFT, TOP = 470, 52, 18, 24, 56
ARC_ROOM = 330
INK, MUTED, PAPER = (30, 30, 30), (95, 95, 95), (250, 250, 250)
#: One colour per importing layer (BGR), so the arcs from one box can be followed.
COLOURS = [
    (40, 39, 214), (180, 119, 31), (44, 160, 44), (14, 127, 255), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (34, 189, 188), (207, 190, 23), (127, 127, 127),
]  # fmt: skip


def draw(graph: dict[str, set[str]], path: Path) -> None:
    """Draw the layers as boxes and their imports as arcs on the right, to a PNG."""
    import cv2
    import numpy as np

    height = TOP + len(ORDER) * (BOX_H + GAP) + GAP
    width = LEFT + BOX_W + ARC_ROOM
    canvas = np.full((height, width, 3), PAPER, np.uint8)
    title = "augtool: layers and the imports between them (read from the source)"
    cv2.putText(canvas, title, (LEFT, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.55, INK, 1, cv2.LINE_AA)
    centre = {}
    for i, layer in enumerate(ORDER):
        y = TOP + i * (BOX_H + GAP)
        cv2.rectangle(canvas, (LEFT, y), (LEFT + BOX_W, y + BOX_H), INK, 1, cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(canvas, layer, (LEFT + 10, y + 22), font, 0.6, INK, 2, cv2.LINE_AA)
        cv2.putText(canvas, ROLE[layer], (LEFT + 10, y + 42), font, 0.42, MUTED, 1, cv2.LINE_AA)
        centre[layer] = y + BOX_H // 2
    x0 = LEFT + BOX_W
    for i, layer in enumerate(ORDER):
        colour = COLOURS[i % len(COLOURS)]
        for target in sorted(graph[layer], key=ORDER.index):
            _arc(canvas, x0, centre[layer] - 6, centre[target] + 6, colour, ORDER.index(target) - i)
    cv2.imwrite(str(path), canvas)


def _arc(canvas: object, x: int, y0: int, y1: int, colour: tuple, span: int) -> None:
    """A half ellipse right of the boxes from ``y0`` down to ``y1``, an arrowhead at ``y1``."""
    import cv2
    import numpy as np

    reach = 18 + 30 * abs(span)
    mid, half = (y0 + y1) / 2, (y1 - y0) / 2
    angles = np.linspace(-math.pi / 2, math.pi / 2, 48)
    points = np.stack([x + reach * np.cos(angles), mid + half * np.sin(angles)], axis=1)
    cv2.polylines(canvas, [np.round(points).astype(np.int32)], False, colour, 1, cv2.LINE_AA)
    tip = (x, y1)
    cv2.line(canvas, tip, (x + 9, y1 - 5), colour, 1, cv2.LINE_AA)
    cv2.line(canvas, tip, (x + 9, y1 + 5), colour, 1, cv2.LINE_AA)


def readme_block(text: str, lines: list[str]) -> str:
    """README's text with the lines between the layout markers replaced by ``lines``."""
    start, end = "<!-- layout: python docs/draw_architecture.py --tree -->", "<!-- /layout -->"
    head, sep, rest = text.partition(start)
    if not sep or end not in rest:
        raise ValueError(f"README.md has no {start} ... {end} block")
    body = "\n".join("    " + line for line in lines)
    return f"{head}{start}\n\n{body}\n\n{end}{rest.partition(end)[2]}"


def main(argv: list[str] | None = None) -> int:
    """Draw the picture, or print or write README's layout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("picture", nargs="?", type=Path, help="Write the picture here (.png).")
    parser.add_argument("--tree", action="store_true", help="Print README's layout.")
    parser.add_argument("--readme", action="store_true", help="Rewrite README's layout.")
    args = parser.parse_args(argv)
    if args.tree or args.readme:
        lines = tree_lines()
        if args.readme:
            readme = REPO / "README.md"
            readme.write_text(readme_block(readme.read_text(encoding="utf-8"), lines))
        else:
            print("\n".join(lines))
        return 0
    graph = layer_graph()
    if args.picture is not None:
        draw(graph, args.picture)
    print("\n".join(graph_text(graph)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
