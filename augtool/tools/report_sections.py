"""The report's sections of any dataset: counts, groups, steps, samples, sizes, provenance.

Each is a function of the :class:`~augtool.tools.report_gather.Gathered`
dataset that returns a :class:`~augtool.tools.report_items.Section`, or None
when it does not apply.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from augtool.drawing import class_hex
from augtool.tools.report_gather import (
    SAMPLES_PER_CLASS,
    Gathered,
)
from augtool.tools.report_items import (
    LARGE_THUMB_SIDE,
    THUMB_SIDE,
    Item,
    Pre,
    Section,
    Table,
    Text,
    Thumb,
    Thumbs,
    as_number,
    bar_plot,
    class_hatch,
    count_table,
    legend_item,
    legend_size,
    new_figure,
    plot_item,
    side_legend,
    thumbnail,
)


def counts_section(g: Gathered) -> Section:
    """Images per split, per fold, and per class; boxes per split and class."""
    blocks: list[Any] = []
    splits = g.splits()
    counts = Counter((i.split, i.class_name) for i in g.items)
    folds = g.folds()
    if len(splits) > 1:
        blocks.append(count_table(splits, g.classes, counts, "split"))
        if len(g.classes) > 1:
            blocks.append(bar_plot(splits, g.classes, counts, "images per split and class"))
    elif g.detection:
        blocks.append(Table(["split", "images"], [[s, len(g.items)] for s in splits]))
    else:
        per_class = Counter(i.class_name for i in g.items)
        rows: list[list[Any]] = [[c, per_class[c]] for c in g.classes]
        blocks.append(Table(["class", "images"], [*rows, ["total", len(g.items)]]))
        if len(g.classes) > 1 and not folds:
            blocks.append(bar_plot(["all"], g.classes, counts, "images per class"))
    if folds:
        names = [f"fold {k}" for k in folds]
        by_fold = Counter((f"fold {i.fold}", i.class_name) for i in g.items if i.fold is not None)
        table = count_table(names, g.classes, by_fold, "fold")
        table.caption = "Images per cross-validation fold."
        plot = bar_plot(names, g.classes, by_fold, "images per fold and class", stacked=True)
        blocks += [table, plot]
    if g.detection:
        boxes: Counter[tuple[str, str]] = Counter()
        for index, item in g.boxes.items():
            for b in item.boxes:
                boxes[(g.items[index].split, b.label)] += 1
        table = count_table(splits, g.box_classes, boxes, "split")
        table.caption = f"{g.objects.capitalize()} per split and class."
        blocks.append(table)
        if len(splits) > 1:
            plot = bar_plot(
                splits, g.box_classes, boxes, f"{g.objects} per split and class", ylabel=g.objects
            )
            blocks.append(plot)
    summary = f"{len(g.items)} images"
    if len(g.classes) > 1:
        summary += f", {len(g.classes)} classes"
    if folds:
        summary += f", {len(folds)} folds"
    return Section("counts", "Counts", blocks, summary)


def groups_section(g: Gathered) -> Section:
    """Groups (smears, patients) per split and fold, and whether any sits on two sides."""
    what = "smears" if g.kind == "annotated" else "groups"
    parts: list[tuple[str, list[Item]]] = [
        (s, [i for i in g.items if i.split == s]) for s in g.splits()
    ]
    parts += [(f"fold {k}", [i for i in g.items if i.fold == k]) for k in g.folds()]
    rows = []
    for name, members in parts:
        per_group = Counter(i.group for i in members)
        sizes = sorted(per_group.values())
        rows.append(
            [
                name,
                len(per_group),
                len(members),
                sizes[0] if sizes else 0,
                as_number(float(np.median(sizes))) if sizes else 0,
                sizes[-1] if sizes else 0,
            ]
        )
    blocks: list[Any] = [
        Table(["part", what, "images", "images per group: min", "median", "max"], rows)
    ]
    sides: dict[str, set[str]] = defaultdict(set)
    for i in g.items:
        sides[i.group].add(i.split)
    shared = sorted(k for k, v in sides.items() if len(v) > 1)
    split_by = g.attrs.get("split_by")
    if len(g.splits()) > 1:
        if shared:
            tone = "" if split_by == "image" else "bad"
            blocks.append(
                Text(
                    f"{len(shared)} groups have images in more than one split: "
                    + ", ".join(shared[:10]),
                    tone,
                )
            )
        else:
            blocks.append(Text("No group has images in two splits.", "ok"))
    fold_sides: dict[str, set[int]] = defaultdict(set)
    for i in g.items:
        if i.fold is not None:
            fold_sides[i.group].add(i.fold)
    if fold_sides:
        crossing = sorted(k for k, v in fold_sides.items() if len(v) > 1)
        if crossing:
            blocks.append(
                Text(
                    f"{len(crossing)} groups have images in two folds: {', '.join(crossing[:10])}",
                    "bad",
                )
            )
        else:
            blocks.append(Text("No group has images in two folds.", "ok"))
    sizes = np.array(list(Counter(i.group for i in g.items).values()))
    if sizes.min() == sizes.max():
        each = "1 image" if sizes[0] == 1 else f"{sizes[0]} images"
        blocks.append(Text(f"Every group has {each}."))
        return Section("groups", "Groups", blocks, f"{len(sides)} {what}")
    fig = new_figure(4.6, 2.4)
    ax = fig.add_subplot()
    ax.hist(sizes, bins=min(30, max(1, len(set(sizes.tolist())))), color="#5b6b7a")
    ax.set_xlabel("images per group")
    ax.set_ylabel(what)
    ax.spines[["top", "right"]].set_visible(False)
    blocks.append(plot_item(fig, "histogram of images per group"))
    blocks += [Text(n) for n in g.notes if n.startswith("groups:")]
    return Section("groups", "Groups", blocks, f"{len(sides)} {what}")


def transforms_section(g: Gathered) -> Section | None:
    """Outputs per transform and class (expand outputs)."""
    if not g.expanded:
        return None
    names = _step_order({i.transform for i in g.items})
    counts = Counter((i.transform, i.class_name) for i in g.items)
    table = count_table(names, g.classes, counts, "transform")
    legend_width, legend_height = legend_size(g.classes)
    fig = new_figure(5.5 + legend_width, max(0.24 * len(names) + 0.9, legend_height + 0.3))
    ax = fig.add_subplot()
    left = np.zeros(len(names))
    y = np.arange(len(names))
    for k, cls in enumerate(g.classes):
        values = np.array([counts.get((t, cls), 0) for t in names], dtype=float)
        ax.barh(
            y,
            values,
            left=left,
            color=class_hex(k),
            label=cls,
            hatch=class_hatch(k),
            edgecolor="white",
            linewidth=0,
        )
        left += values
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.spines[["top", "right"]].set_visible(False)
    side_legend(fig, ax)
    return Section(
        "transforms",
        "Outputs per transform",
        [table, plot_item(fig, "outputs per transform and class")],
    )


def _step_order(present: set[str]) -> list[str]:
    from augtool.pipeline.builtins import PAPER
    from augtool.pipeline.steps import ORIGINAL_NAME, PCA

    order = [ORIGINAL_NAME, *PAPER, PCA]
    return [t for t in order if t in present] + sorted(present - set(order))


def samples_section(g: Gathered, seed: int = 0) -> Section:
    """A random sample per class and transform (or several per class), boxes drawn."""
    rng = np.random.default_rng(seed)
    by_cell: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, item in enumerate(g.items):
        by_cell[(item.class_name, item.transform)].append(index)
    rows: list[tuple[str, list[Thumb | None]]] = []
    if g.expanded:
        columns = _step_order({i.transform for i in g.items})
        for cls in g.classes:
            thumbs: list[Thumb | None] = []
            for t in columns:
                members = by_cell.get((cls, t))
                thumbs.append(None if not members else sample_thumb(g, int(rng.choice(members)), t))
            rows.append((cls, thumbs))
        caption = "One random output of each class and transform (seed 0)."
    else:
        columns = []
        for cls in g.classes:
            members = by_cell.get((cls, ""), [])
            chosen = sorted(
                rng.choice(members, min(SAMPLES_PER_CLASS, len(members)), replace=False).tolist()
            )
            rows.append((cls, [sample_thumb(g, int(i)) for i in chosen]))
        caption = f"Up to {SAMPLES_PER_CLASS} random images per class (seed 0)."
    blocks: list[Any] = []
    if g.detection:
        blocks.append(legend_item(g.box_classes))
        caption += (
            " Mask outlines in their class colour." if g.masks else " Boxes in their class colour."
        )
    blocks.append(Thumbs(columns, rows, caption, large=g.detection))
    return Section("samples", "Samples", blocks)


def sample_thumb(g: Gathered, index: int, label: str = "") -> Thumb:
    """Item ``index`` as a thumbnail titled ``label`` (default: its file name)."""
    item = g.items[index]
    boxes = g.boxes.get(index)
    rgb = g.pixels(index)
    uri = thumbnail(
        rgb,
        boxes.boxes if boxes else (),
        g.box_classes,
        boxes.outlines if boxes else (),
        LARGE_THUMB_SIDE if g.detection else THUMB_SIDE,
    )
    name = Path(item.name).name
    if boxes is not None:
        count = f"{len(boxes.boxes)} {g.objects}"
        detail = f"{count} · {name}" if label else count
    else:
        detail = name if label else f"{rgb.shape[1]}×{rgb.shape[0]}"
    return Thumb(uri, label or name, detail)


def sizes_section(g: Gathered) -> Section:
    """Source image sizes and aspect ratios."""
    if not g.source_sizes:
        return Section("sizes", "Image sizes", [Text(g.sizes_note or "no source sizes known")])
    sizes = np.array(g.source_sizes, dtype=float)
    counts = Counter(g.source_sizes)
    rows = [[f"{w}×{h}", n, f"{w / h:.2f}"] for (w, h), n in counts.most_common(10)]
    if len(counts) > 10:
        rows.append(
            [f"{len(counts) - 10} other sizes", sum(n for _, n in counts.most_common()[10:]), ""]
        )
    summary = f"{len(sizes)} sources, {len(counts)} distinct sizes"
    table = Table(["size", "sources", "aspect"], rows)
    if len(counts) == 1:
        (w, h), _ = counts.most_common(1)[0]
        text = Text(f"All {len(sizes)} sources are {w}×{h} px (aspect ratio {w / h:.2f}).")
        return Section("sizes", "Source image sizes", [table, text], summary)
    fig = new_figure(8.0, 2.8)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(sizes[:, 0], sizes[:, 1], s=14, alpha=0.5, color="#34495e")
    ax1.set_xlabel("width (px)")
    ax1.set_ylabel("height (px)")
    ax1.set_title("size of each source", fontsize=10)
    ax2.hist(sizes[:, 0] / sizes[:, 1], bins=30, color="#34495e")
    ax2.set_xlabel("aspect ratio (width / height)")
    ax2.set_ylabel("sources")
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    return Section("sizes", "Source image sizes", [table, plot_item(fig, "source sizes")], summary)


def provenance_section(g: Gathered) -> Section:
    """How the dataset was made: command, seed, recipe, versions (from ``augtool.json``)."""
    attrs = g.attrs
    if not attrs:
        text = {
            "folder": "A folder of images: no augtool.json records how it was made.",
            "annotated": "Annotated images as they came: no augtool.json records their making.",
        }.get(g.kind, "No provenance recorded.")
        return Section("provenance", "Provenance", [Text(text)])
    rows = []
    for key in ("created_utc", "tool_version", "seed", "size", "format", "split_by", "folds"):
        if attrs.get(key) not in (None, 0, ""):
            rows.append([key, _short_text(attrs[key])])
    versions = attrs.get("versions")
    if isinstance(versions, dict):
        rows += [[f"version of {k}", _short_text(v)] for k, v in versions.items()]
    blocks: list[Any] = []
    if "command_line" in attrs:
        blocks.append(Pre(str(attrs["command_line"]), "Command"))
    blocks.append(Table(["recorded", "value"], rows))
    if "recipe" in attrs:
        blocks.append(Pre(json.dumps(attrs["recipe"], indent=2, ensure_ascii=False), "Recipe"))
    made = str(attrs.get("created_utc", "")).replace("T", " ").removesuffix("Z")
    return Section("provenance", "Provenance", blocks, f"{made} UTC" if made else "")


def _short_text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + " …"


def verify_section(g: Gathered) -> Section:
    """The result of ``augtool verify`` on the dataset."""
    if g.verify_ok is None:
        kind = "a folder of class folders" if g.kind == "folder" else "a folder of annotated images"
        text = Text(f"verify was not run: it checks expand outputs, and this is {kind}.")
        return Section("verify", "Verify", [text])
    if g.verify_ok:
        return Section("verify", "Verify", [Text(g.verify_lines[0], "ok")], "ok")
    return Section(
        "verify",
        "Verify",
        [Text("verify found problems:", "bad"), Pre("\n".join(g.verify_lines))],
        "problems",
    )


def test_reads_section(g: Gathered) -> Section | None:
    """Every read of the dataset's test images that its ledger records, but no figure.

    The ledger (:mod:`augtool.store.ledger`) lies beside the dataset; each
    ``augtool evaluate`` of test images wrote one line. The page lists when, what
    and with which model; the figures seen stay in the ledger, so that looking at
    a dataset is never one more look at its test set.
    """
    from augtool.store.ledger import describe_without_figures, read_ledger

    if not g.expanded:
        return None
    ledger = read_ledger(g.path)
    n = len(ledger.reads)
    blocks: list[Any] = []
    if n == 0:
        blocks.append(
            Text(f"No read of the test images is recorded (ledger {ledger.path.name}).", "ok")
        )
    else:
        times = "once" if n == 1 else f"{n} times"
        blocks.append(
            Text(
                f"The test images were read {times}. A test set read many times stops "
                "being one: every choice made after a read was made with it in view.",
                "" if n == 1 else "bad",
            )
        )
        rows = [[read.line, *describe_without_figures(read)] for read in ledger.reads]
        blocks.append(
            Table(
                ["line", "when (UTC)", "what", "models"],
                rows,
                f"From {ledger.path.name}; the figures each read saw are in that file, "
                "not on this page.",
            )
        )
    if ledger.problems:
        blocks.append(Text("Damaged lines: " + "; ".join(ledger.problems), "bad"))
    return Section("test-reads", "Test reads", blocks, f"{n} recorded")
