"""What a report page is made of: tables, plots, thumbnails, text, and the sections of them.

The items are plain data, filled into ``report_page.html`` by jinja2 (every
value autoescaped); plots are drawn with matplotlib's ``Figure`` (no pyplot,
no global state) and embedded, as thumbnails are, as ``data:`` URIs.
matplotlib and jinja2 are the optional extra ``report``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augtool.annotations import Box
from augtool.drawing import CLASS_COLOURS, class_hex
from augtool.errors import AugtoolError, OutputError

#: How to install what the report needs, quoted in the error when it is missing.
EXTRA = "pip install -e '.[report]'  (or pip install matplotlib jinja2)"


#: Longest side of a thumbnail, pixels.
THUMB_SIDE = 150
#: Longest side of a thumbnail whose boxes or outlines are the point (detection data).
LARGE_THUMB_SIDE = 320

#: Widest plot, inches at 100 dpi: the page's column, so that no plot is shrunk to fit it.
MAX_PLOT_WIDTH = 12.0
#: Width of one character of a 10 pt label, inches (DejaVu Sans, generously), to size
#: a figure around its class names.
CHAR_INCHES = 0.085
#: Height of one entry of a 10 pt legend, inches.
LEGEND_LINE_INCHES = 0.24


@dataclass
class Table:
    """A table: a header row and rows of cells.

    A cell is text, a number (a column of numbers is right-aligned) or a list
    of lines.
    """

    header: list[str]
    rows: list[list[Any]]
    caption: str = ""
    kind: str = "table"

    def column_class(self, index: int) -> str:
        """``num`` for a column of numbers, ``long`` for one of lists, else ''."""
        cells = [row[index] for row in self.rows if index < len(row) and row[index] != ""]
        if cells and all(isinstance(c, int | float) and not isinstance(c, bool) for c in cells):
            return "num"
        return "long" if any(isinstance(c, list) for c in cells) else ""


@dataclass
class Plot:
    """A picture drawn by matplotlib, embedded as a PNG ``data:`` URI.

    Attributes:
        uri: The PNG.
        alt: Its text alternative.
        caption: Text under it.
        kind: ``plot`` (the template's switch).
        labels: The words drawn on it (titles, axis and tick labels, legend
            entries), each wholly inside the picture.
        cut: The words that reach past its edge (none, when it is drawn well).
    """

    uri: str
    alt: str
    caption: str = ""
    kind: str = "plot"
    labels: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)


@dataclass
class Thumb:
    """One thumbnail: a ``data:`` URI and its label lines."""

    uri: str
    label: str
    detail: str = ""


@dataclass
class Thumbs:
    """A grid of thumbnails: one row per ``(row label, thumbnails)``, columns titled."""

    columns: list[str]
    rows: list[tuple[str, list[Thumb | None]]]
    caption: str = ""
    large: bool = False
    kind: str = "thumbs"


@dataclass
class Text:
    """A paragraph (``tone`` ``ok``, ``bad`` or '' colours it)."""

    text: str
    tone: str = ""
    kind: str = "text"


@dataclass
class Pre:
    """Preformatted text (a command line, a recipe)."""

    text: str
    caption: str = ""
    kind: str = "pre"


@dataclass
class Legend:
    """Class colours: ``(class, #rrggbb)`` pairs."""

    entries: list[tuple[str, str]]
    kind: str = "legend"


@dataclass
class Section:
    """One part of the page: a title, an anchor, and its blocks in order."""

    key: str
    title: str
    blocks: list[Any]
    summary: str = ""


@dataclass
class Item:
    """One image of the dataset as the report counts it.

    Attributes:
        name: Its path (manifest name, or relative to the folder).
        class_name: Its class (``images`` for detection data).
        split: Its split (``all`` when none).
        fold: Its cross-validation fold, or None.
        group: Its split group (smear, patient, or the image itself).
        transform: ``original``, a transform name, ``pca``; '' for raw images.
    """

    name: str
    class_name: str
    split: str
    fold: int | None
    group: str
    transform: str = ""


def require_extra() -> None:
    """Refuse early, naming the extra, when matplotlib or jinja2 is missing.

    Raises:
        AugtoolError: If either cannot be imported.
    """
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise AugtoolError(
            f"the report needs matplotlib and jinja2 ({err.name} is missing): {EXTRA}"
        ) from err


def new_figure(width: float, height: float) -> Any:
    """A matplotlib figure of ``width`` x ``height`` inches (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_item(fig: Any, alt: str, caption: str = "") -> Plot:
    """A figure as a page item: PNG bytes embedded as a data URI, with its text alternative."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    labels, cut = drawn_labels(fig)
    return Plot(data_uri(buf.getvalue(), "image/png"), alt, caption, labels=labels, cut=cut)


def drawn_labels(fig: Any) -> tuple[list[str], list[str]]:
    """The words a drawn figure shows, and those of them that reach past its edge.

    Read after ``savefig``, which lays the figure out: titles, axis labels, the
    tick labels inside each axis's view, and legend entries.
    """
    renderer = fig.canvas.get_renderer()
    texts = []
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            texts += legend.get_texts()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            texts += [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
    box = fig.bbox
    labels, cut = [], []
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        inside = (
            extent.x0 >= box.x0 - 0.5
            and extent.y0 >= box.y0 - 0.5
            and extent.x1 <= box.x1 + 0.5
            and extent.y1 <= box.y1 + 0.5
        )
        (labels if inside else cut).append(text.get_text())
    return labels, cut


def class_hatch(index: int) -> str:
    """The hatch of the class at ``index``: none, then one per further round of the colours.

    The colours start again past the tenth class; the hatch tells apart the two
    classes of one colour in a chart's bars.
    """
    return ("", "///", "...", "xxx")[index // len(CLASS_COLOURS) % 4]


def class_marker(index: int) -> str:
    """The scatter marker of the class at ``index``, as :func:`class_hatch` for points."""
    return ("o", "^", "s", "D")[index // len(CLASS_COLOURS) % 4]


def label_inches(labels: Sequence[str], fontsize: float = 10.0) -> float:
    """Width of the longest of ``labels`` at ``fontsize`` points, inches (an estimate)."""
    return CHAR_INCHES * fontsize / 10 * max((len(s) for s in labels), default=0)


def legend_size(classes: Sequence[str]) -> tuple[float, float]:
    """Width and height, inches, of a one-column legend of ``classes`` (0 for one class)."""
    if len(classes) < 2:
        return 0.0, 0.0
    return label_inches(classes) + 0.8, LEGEND_LINE_INCHES * len(classes) + 0.3


def side_legend(fig: Any, ax: Any, markerscale: float = 1.0) -> None:
    """The legend of ``ax``'s classes in one column at the figure's right, outside the axes.

    The figure is laid out around it (constrained layout); :func:`legend_size`
    says how much room to give it.
    """
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > 1:
        fig.legend(
            handles, labels, loc="outside right upper", frameon=False, markerscale=markerscale
        )


def data_uri(data: bytes, mime: str) -> str:
    """``data`` as a ``data:`` URI of ``mime`` (base64)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail(
    rgb: np.ndarray,
    boxes: Sequence[Box] = (),
    classes: Sequence[str] = (),
    outlines: Sequence[tuple[str, Sequence[np.ndarray]]] = (),
    side: int = THUMB_SIDE,
) -> str:
    """A JPEG ``data:`` URI of an image shrunk to ``side`` px, boxes drawn in class colours.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB.
        boxes: Boxes in the image's pixels.
        classes: The class list that gives each box its colour.
        outlines: Mask outlines ``(class, polygon parts)``, drawn instead of the boxes.
        side: Longest side of the thumbnail, pixels.
    """
    import cv2

    from augtool.tools.tiles import draw_boxes, draw_outlines

    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    if outlines:
        draw_outlines(small, outlines, classes, scale=scale, thickness=1)
    elif boxes:
        draw_boxes(small, boxes, classes, scale=scale, thickness=1)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:
        raise OutputError("OpenCV could not encode a thumbnail")
    return data_uri(buf.tobytes(), "image/jpeg")


def legend_item(classes: Sequence[str]) -> Legend:
    """The legend of class colours, as ``augtool preview`` draws them."""
    return Legend([(c, class_hex(i)) for i, c in enumerate(classes)])


def bar_plot(
    categories: Sequence[str],
    classes: Sequence[str],
    counts: dict[tuple[str, str], int],
    alt: str,
    stacked: bool = False,
    ylabel: str = "images",
) -> Plot:
    """Bars per category (x) and class (colour), the classes in a legend at the right.

    One category (a folder's classes) is drawn as :func:`class_bars`, the
    classes named beside their bars. The figure grows with the classes: the
    legend has a line for each, and the bars of each category room.
    """
    if len(categories) == 1:
        values = [counts.get((categories[0], c), 0) for c in classes]
        return class_bars(classes, values, alt, ylabel)
    legend_width, legend_height = legend_size(classes)
    per_category = 0.7 if stacked else min(3.0, 0.3 * max(2, len(classes)))
    plot_width = min(MAX_PLOT_WIDTH - legend_width, max(3.5, per_category * len(categories) + 1.0))
    fig = new_figure(plot_width + legend_width, max(2.6, legend_height + 0.3))
    ax = fig.add_subplot()
    x = np.arange(len(categories))
    width = 0.8 if stacked else 0.8 / max(1, len(classes))
    bottom = np.zeros(len(categories))
    for k, cls in enumerate(classes):
        values = np.array([counts.get((cat, cls), 0) for cat in categories], dtype=float)
        where = x if stacked else x - 0.4 + width * (k + 0.5)
        ax.bar(
            where,
            values,
            width,
            bottom=bottom if stacked else None,
            label=cls,
            color=class_hex(k),
            hatch=class_hatch(k),
            edgecolor="white",
            linewidth=0,
        )
        if stacked:
            bottom += values
    ax.set_xticks(x, list(categories))
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    side_legend(fig, ax)
    return plot_item(fig, alt)


def class_bars(classes: Sequence[str], values: Sequence[int], alt: str, xlabel: str) -> Plot:
    """One horizontal bar per class, in its colour, its name beside it and its count at its end."""
    fig = new_figure(min(MAX_PLOT_WIDTH, label_inches(classes) + 5.0), 0.28 * len(classes) + 0.8)
    ax = fig.add_subplot()
    y = np.arange(len(classes))
    bars = ax.barh(y, values, color=[class_hex(k) for k in range(len(classes))])
    ax.bar_label(bars, padding=3, fontsize=9)
    ax.set_xlim(0, max(1, *values) * 1.12)
    ax.set_yticks(y, list(classes))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return plot_item(fig, alt)


def as_number(value: float) -> int | float:
    """An integral float as an int (a median of 12.0 shown as 12)."""
    return int(value) if float(value).is_integer() else round(value, 1)


def count_table(
    categories: Sequence[str],
    classes: Sequence[str],
    counts: dict[tuple[str, str], int],
    first: str,
) -> Table:
    """A table of counts per category (rows) and class (columns), with totals."""
    rows = []
    for cat in categories:
        values = [counts.get((cat, c), 0) for c in classes]
        rows.append([cat, *values, sum(values)])
    totals = [sum(counts.get((cat, c), 0) for cat in categories) for c in classes]
    rows.append(["total", *totals, sum(totals)])
    return Table([first, *classes, "total"], rows)
