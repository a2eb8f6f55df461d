"""Blood cells of a generated smear: their description and their random sampling.

The white cells follow the paper's §1: a normal leukocyte is about the size of
a red cell with a dense purple nucleus; ALL and AML blasts are about twice a red
cell, the ALL nucleus fills 80-90 % of the cell and is smooth, the AML nucleus
50-60 %, with granular cytoplasm and Auer rods. Sizes are drawn relative to the
image's red-cell diameter ``rbc``; ``px`` scales pixel-sized details (edges,
rods, texture) with the image width (1 at 640 pixels).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from augtool.tools.smear.shapes import Blob, Segment, wavy


@dataclass(frozen=True)
class RedCell:
    """An erythrocyte: a pink disc, paler in the middle.

    Attributes:
        shape: The outline.
        density: Eosin density at the rim.
        pallor: How much paler the centre is, in [0, 1).
        pallor_radius: Radius of the pale centre relative to the outline.
    """

    shape: Blob
    density: float
    pallor: float
    pallor_radius: float


@dataclass(frozen=True)
class WhiteCell:
    """A leukocyte or blast: body, nucleus, cytoplasm texture and inclusions.

    Attributes:
        kind: ``"ALL blast"``, ``"AML blast"``, ``"neutrophil"``,
            ``"lymphocyte"`` or ``"monocyte"``.
        body: The cell outline.
        nucleus: Nucleus parts (their union is the nucleus).
        strands: Thin chromatin bridges between nuclear lobes.
        notch: A shape cut out of the nucleus (cleft or kidney), or None.
        nucleoli: Paler spots inside the nucleus.
        rods: Auer rods in the cytoplasm.
        nucleus_density: Nuclear stain density.
        chromatin_scale: Size of chromatin texture in pixels (blur sigma).
        chromatin_amount: Relative strength of the chromatin texture.
        cytoplasm_blue: Basophilic (blue) density of the cytoplasm.
        cytoplasm_pink: Eosin density of the cytoplasm.
        granule_amount: Density of the cytoplasmic granules.
        granule_scale: Size of the granules in pixels (blur sigma).
        granule_threshold: Noise level above which a granule shows (higher
            means fewer, more separate granules).
        rod_density: Stain density of the Auer rods.
    """

    kind: str
    body: Blob
    nucleus: tuple[Blob, ...]
    strands: tuple[Segment, ...]
    notch: Blob | None
    nucleoli: tuple[Blob, ...]
    rods: tuple[Segment, ...]
    nucleus_density: float
    chromatin_scale: float
    chromatin_amount: float
    cytoplasm_blue: float
    cytoplasm_pink: float
    granule_amount: float
    granule_scale: float
    granule_threshold: float
    rod_density: float


def cell_masks(
    cell: WhiteCell, xs: np.ndarray, ys: np.ndarray, edge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Body and nucleus coverage of a white cell on a grid (nucleus inside body)."""
    body, _ = cell.body.field(xs, ys, edge)
    nucleus = np.zeros_like(body)
    for part in cell.nucleus:
        np.maximum(nucleus, part.field(xs, ys, edge)[0], out=nucleus)
    for strand in cell.strands:
        np.maximum(nucleus, strand.alpha(xs, ys, edge), out=nucleus)
    if cell.notch is not None:
        nucleus *= 1.0 - cell.notch.field(xs, ys, edge)[0]
    return body, nucleus * body


def nucleus_fraction(cell: WhiteCell) -> float:
    """Nucleus area over cell area of a white cell, measured on its pixels.

    Args:
        cell: The cell (for example ``scene.central_cell``).

    Returns:
        The fraction in [0, 1] (the paper: ALL 0.8-0.9, AML 0.5-0.6).
    """
    reach = cell.body.reach()
    xs = (np.arange(-reach - 2, reach + 2, 0.5, dtype=np.float32) + cell.body.cx)[None, :]
    ys = (np.arange(-reach - 2, reach + 2, 0.5, dtype=np.float32) + cell.body.cy)[:, None]
    body, nucleus = cell_masks(cell, xs, ys, 0.5)
    return float(nucleus.sum() / max(float(body.sum()), 1e-9))


def _with_nucleus(cell: WhiteCell, scale: float) -> WhiteCell:
    """The cell with its nucleus scaled about the body's centre by ``scale``."""
    bx, by = cell.body.cx, cell.body.cy

    def move(b: Blob) -> Blob:
        return Blob(
            bx + (b.cx - bx) * scale,
            by + (b.cy - by) * scale,
            b.radius * scale,
            b.aspect,
            b.angle,
            b.harmonics,
        )

    return dataclasses.replace(
        cell,
        nucleus=tuple(move(b) for b in cell.nucleus),
        notch=None if cell.notch is None else move(cell.notch),
        nucleoli=tuple(move(b) for b in cell.nucleoli),
    )


def _calibrate(cell: WhiteCell, target: float) -> WhiteCell:
    """Rescale a one-part nucleus so its measured fraction is close to ``target``."""
    for _ in range(3):
        fraction = nucleus_fraction(cell)
        if abs(fraction - target) < 0.005 or fraction <= 0:
            break
        cell = _with_nucleus(cell, math.sqrt(target / fraction))
    return cell


def _sample_body(rng: np.random.Generator, cx: float, cy: float, diameter: float) -> Blob:
    return Blob(
        cx,
        cy,
        diameter / 2.0,
        float(rng.uniform(0.86, 1.0)),
        float(rng.uniform(0, math.pi)),
        wavy(rng, 4, 0.025),
    )


def _round_nucleus(
    rng: np.random.Generator,
    body: Blob,
    fraction: float,
    eccentricity: float,
    aspect_range: tuple[float, float],
    wave: float,
) -> Blob:
    """A round-ish nucleus of about ``fraction`` of the body, shifted off-centre."""
    rn = body.radius * math.sqrt(fraction * body.aspect)
    room = max(body.radius * body.aspect - rn, 0.0)
    direction = rng.uniform(0, 2 * math.pi)
    shift = eccentricity * room
    return Blob(
        body.cx + shift * math.cos(direction),
        body.cy + shift * math.sin(direction),
        rn,
        float(rng.uniform(*aspect_range)),
        float(rng.uniform(0, math.pi)),
        wavy(rng, 3, wave),
    )


def _notch_for(rng: np.random.Generator, nucleus: Blob, body: Blob, size: float) -> Blob:
    """A small disc cut into the nucleus edge, on the side facing the cell centre."""
    away = math.atan2(nucleus.cy - body.cy, nucleus.cx - body.cx)
    if nucleus.cx == body.cx and nucleus.cy == body.cy:
        away = rng.uniform(0, 2 * math.pi)
    side = away + math.pi + rng.normal(0, 0.4)
    r = nucleus.radius
    return Blob(
        nucleus.cx + math.cos(side) * r * (1.0 + 0.35 * size),
        nucleus.cy + math.sin(side) * r * (1.0 + 0.35 * size),
        r * size,
        float(rng.uniform(0.6, 1.0)),
        float(side),
    )


def _nucleoli(
    rng: np.random.Generator, nucleus: Blob, count: int, size: tuple[float, float]
) -> tuple[Blob, ...]:
    """``count`` pale spots inside the nucleus, radii ``size`` times its radius."""
    spots = []
    for _ in range(count):
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0, 0.55) * nucleus.radius
        spots.append(
            Blob(
                nucleus.cx + d * math.cos(a),
                nucleus.cy + d * math.sin(a),
                float(rng.uniform(*size) * nucleus.radius),
                float(rng.uniform(0.7, 1.0)),
                float(rng.uniform(0, math.pi)),
            )
        )
    return tuple(spots)


def _sample_all_blast(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    body = _sample_body(rng, cx, cy, rbc * rng.uniform(1.7, 2.3))
    target = float(rng.uniform(0.80, 0.90))
    nucleus = _round_nucleus(rng, body, target, rng.uniform(0, 0.6), (0.88, 1.0), 0.03)
    notch = _notch_for(rng, nucleus, body, rng.uniform(0.12, 0.22)) if rng.random() < 0.3 else None
    cell = WhiteCell(
        kind="ALL blast",
        body=body,
        nucleus=(nucleus,),
        strands=(),
        notch=notch,
        nucleoli=_nucleoli(rng, nucleus, int(rng.integers(0, 3)), (0.06, 0.10)),
        rods=(),
        nucleus_density=float(rng.uniform(0.72, 0.98)),
        chromatin_scale=float(rng.uniform(0.7, 1.2)) * px,
        chromatin_amount=float(rng.uniform(0.05, 0.11)),
        cytoplasm_blue=float(rng.uniform(0.55, 1.0)),
        cytoplasm_pink=float(rng.uniform(0.0, 0.08)),
        granule_amount=0.0,
        granule_scale=px,
        granule_threshold=2.0,
        rod_density=0.0,
    )
    return _calibrate(cell, target)


def _sample_rods(
    rng: np.random.Generator, cell: WhiteCell, count: int, px: float
) -> tuple[Segment, ...]:
    """``count`` Auer rods lying wholly in the cytoplasm, along its thick part.

    Rods are centred where the cytoplasm is thickest (distance transform) and
    laid along it (perpendicular to the distance gradient); a rod that does not
    fit is shortened or placed elsewhere. There is always at least one rod.
    """
    body = cell.body
    reach = body.reach() + 2
    xs = (np.arange(-reach, reach + 1, dtype=np.float32) + body.cx)[None, :]
    ys = (np.arange(-reach, reach + 1, dtype=np.float32) + body.cy)[:, None]
    body_a, nucleus_a = cell_masks(cell, xs, ys, 1.0)
    cytoplasm = ((body_a > 0.99) & (nucleus_a < 0.01)).astype(np.uint8)
    dist = cv2.distanceTransform(cytoplasm, cv2.DIST_L2, 3)
    gy, gx = np.gradient(cv2.GaussianBlur(dist, (0, 0), 1.5))
    diameter = 2 * body.radius
    rods: list[Segment] = []

    def fits(r0: int, c0: int, tilt: float, length: float, width: float) -> bool:
        t = np.linspace(-0.5, 0.5, 9) * length
        rr = np.rint(r0 + t * math.sin(tilt)).astype(int)
        cc = np.rint(c0 + t * math.cos(tilt)).astype(int)
        inside = (rr >= 0) & (rr < dist.shape[0]) & (cc >= 0) & (cc < dist.shape[1])
        return bool(inside.all() and (dist[rr[inside], cc[inside]] >= width / 2 + 0.5).all())

    def rod(r0: int, c0: int, tilt: float, length: float, width: float) -> Segment:
        mx, my = float(xs[0, c0]), float(ys[r0, 0])
        hx, hy = 0.5 * length * math.cos(tilt), 0.5 * length * math.sin(tilt)
        return Segment(mx - hx, my - hy, mx + hx, my + hy, width)

    for _ in range(count):
        width = float(rng.uniform(1.5, 2.6) * px)
        rows, cols = np.nonzero(dist >= width / 2 + 1.0)
        if rows.size == 0:
            break
        weight = dist[rows, cols] ** 2
        for _attempt in range(12):
            pick = int(rng.choice(rows.size, p=weight / weight.sum()))
            r0, c0 = int(rows[pick]), int(cols[pick])
            tilt = math.atan2(gy[r0, c0], gx[r0, c0]) + math.pi / 2 + rng.normal(0, 0.25)
            length = diameter * rng.uniform(0.14, 0.30)
            while length >= 0.07 * diameter and not fits(r0, c0, tilt, length, width):
                length *= 0.8
            if length >= 0.07 * diameter:
                rods.append(rod(r0, c0, tilt, length, width))
                break
    if count and not rods:
        # A thin cytoplasm: one short rod at its thickest point.
        r0, c0 = np.unravel_index(int(dist.argmax()), dist.shape)
        tilt = math.atan2(gy[r0, c0], gx[r0, c0]) + math.pi / 2
        rods.append(rod(int(r0), int(c0), tilt, 0.07 * diameter, 1.5 * px))
    return tuple(rods)


def _sample_aml_blast(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    body = _sample_body(rng, cx, cy, rbc * rng.uniform(1.7, 2.3))
    target = float(rng.uniform(0.50, 0.60))
    nucleus = _round_nucleus(rng, body, target, rng.uniform(0.35, 0.9), (0.75, 1.0), 0.04)
    notch = _notch_for(rng, nucleus, body, rng.uniform(0.2, 0.35)) if rng.random() < 0.35 else None
    cell = WhiteCell(
        kind="AML blast",
        body=body,
        nucleus=(nucleus,),
        strands=(),
        notch=notch,
        nucleoli=_nucleoli(rng, nucleus, int(rng.integers(1, 4)), (0.08, 0.14)),
        rods=(),
        nucleus_density=float(rng.uniform(0.65, 0.92)),
        chromatin_scale=float(rng.uniform(1.0, 1.6)) * px,
        chromatin_amount=float(rng.uniform(0.10, 0.18)),
        cytoplasm_blue=float(rng.uniform(0.55, 1.0)),
        cytoplasm_pink=float(rng.uniform(0.15, 0.35)),
        granule_amount=float(rng.uniform(1.0, 1.6)),
        granule_scale=float(rng.uniform(0.6, 0.9)) * px,
        granule_threshold=float(rng.uniform(1.1, 1.5)),
        rod_density=float(rng.uniform(1.2, 2.0)),
    )
    cell = _calibrate(cell, target)
    rods = _sample_rods(rng, cell, int(rng.integers(1, 4)), px)
    return dataclasses.replace(cell, rods=rods)


def _sample_neutrophil(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    body = _sample_body(rng, cx, cy, rbc * rng.uniform(1.05, 1.3))
    r = body.radius
    lobes = int(rng.integers(2, 6))
    bend = rng.uniform(0.28, 0.42) * r
    start = rng.uniform(0, 2 * math.pi)
    span = rng.uniform(1.6, 3.4)
    pivot_dir = rng.uniform(0, 2 * math.pi)
    px0 = body.cx + 0.15 * r * math.cos(pivot_dir)
    py0 = body.cy + 0.15 * r * math.sin(pivot_dir)
    parts: list[Blob] = []
    for i in range(lobes):
        a = start + span * (i / max(lobes - 1, 1) - 0.5)
        parts.append(
            Blob(
                px0 + bend * math.cos(a) + rng.normal(0, 0.04 * r),
                py0 + bend * math.sin(a) + rng.normal(0, 0.04 * r),
                r * rng.uniform(0.28, 0.38),
                float(rng.uniform(0.65, 1.0)),
                float(a + rng.normal(0, 0.3)),
                wavy(rng, 2, 0.06),
            )
        )
    strands = tuple(
        Segment(p.cx, p.cy, q.cx, q.cy, rng.uniform(1.0, 2.2) * px)
        for p, q in itertools.pairwise(parts)
    )
    return WhiteCell(
        kind="neutrophil",
        body=body,
        nucleus=tuple(parts),
        strands=strands,
        notch=None,
        nucleoli=(),
        rods=(),
        nucleus_density=float(rng.uniform(1.05, 1.45)),
        chromatin_scale=float(rng.uniform(1.4, 2.4)) * px,
        chromatin_amount=float(rng.uniform(0.18, 0.32)),
        cytoplasm_blue=float(rng.uniform(0.05, 0.2)),
        cytoplasm_pink=float(rng.uniform(0.3, 0.5)),
        granule_amount=float(rng.uniform(0.4, 0.7)),
        granule_scale=0.6 * px,
        granule_threshold=float(rng.uniform(0.8, 1.1)),
        rod_density=0.0,
    )


def _sample_lymphocyte(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    body = _sample_body(rng, cx, cy, rbc * rng.uniform(0.9, 1.15))
    target = float(rng.uniform(0.70, 0.88))
    nucleus = _round_nucleus(rng, body, target, rng.uniform(0.2, 0.9), (0.85, 1.0), 0.03)
    cell = WhiteCell(
        kind="lymphocyte",
        body=body,
        nucleus=(nucleus,),
        strands=(),
        notch=None,
        nucleoli=(),
        rods=(),
        nucleus_density=float(rng.uniform(1.05, 1.45)),
        chromatin_scale=float(rng.uniform(1.4, 2.4)) * px,
        chromatin_amount=float(rng.uniform(0.18, 0.32)),
        cytoplasm_blue=float(rng.uniform(0.6, 1.1)),
        cytoplasm_pink=0.0,
        granule_amount=0.0,
        granule_scale=px,
        granule_threshold=2.0,
        rod_density=0.0,
    )
    return _calibrate(cell, target)


def _sample_monocyte(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    body = _sample_body(rng, cx, cy, rbc * rng.uniform(1.2, 1.5))
    target = float(rng.uniform(0.45, 0.60))
    nucleus = _round_nucleus(rng, body, target, rng.uniform(0.3, 0.8), (0.7, 0.95), 0.05)
    cell = WhiteCell(
        kind="monocyte",
        body=body,
        nucleus=(nucleus,),
        strands=(),
        notch=_notch_for(rng, nucleus, body, rng.uniform(0.3, 0.45)),
        nucleoli=(),
        rods=(),
        nucleus_density=float(rng.uniform(0.85, 1.15)),
        chromatin_scale=float(rng.uniform(1.2, 2.0)) * px,
        chromatin_amount=float(rng.uniform(0.15, 0.25)),
        cytoplasm_blue=float(rng.uniform(0.35, 0.55)),
        cytoplasm_pink=float(rng.uniform(0.10, 0.25)),
        granule_amount=float(rng.uniform(0.15, 0.3)),
        granule_scale=0.6 * px,
        granule_threshold=float(rng.uniform(1.0, 1.4)),
        rod_density=0.0,
    )
    return _calibrate(cell, target)


def _sample_normal(
    rng: np.random.Generator, cx: float, cy: float, rbc: float, px: float
) -> WhiteCell:
    u = rng.random()
    if u < 0.55:
        return _sample_neutrophil(rng, cx, cy, rbc, px)
    if u < 0.88:
        return _sample_lymphocyte(rng, cx, cy, rbc, px)
    return _sample_monocyte(rng, cx, cy, rbc, px)


SAMPLERS = {"ALL": _sample_all_blast, "AML": _sample_aml_blast, "normal": _sample_normal}
