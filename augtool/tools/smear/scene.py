"""One smear as a frozen description (:class:`Scene`) and its random sampling.

:func:`sample_scene` draws every random choice of an image from the generator it
is given; :func:`augtool.tools.smear.draw.draw_scene` turns the scene into pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from augtool.errors import OptionError
from augtool.tools.smear.cell_models import SAMPLERS, RedCell, WhiteCell
from augtool.tools.smear.shapes import Blob, wavy

#: Class names, in the order that fixes each class's index in the seed.
CLASSES: tuple[str, ...] = ("ALL", "AML", "normal")
#: Default image size as (width, height), the size of a BCCD smear.
DEFAULT_SIZE: tuple[int, int] = (640, 480)
#: Smallest and largest accepted side length in pixels.
MIN_SIDE, MAX_SIDE = 64, 8192

_OD_EOSIN = (0.10, 0.46, 0.36)  # pink: red cells, pink cytoplasm
_OD_NUCLEAR = (0.86, 1.30, 0.30)  # purple: nuclei (azure / haematoxylin)
_OD_BASOPHIL = (0.34, 0.20, 0.03)  # pale blue: basophilic cytoplasm
_OD_GRANULE = (0.45, 1.00, 0.34)  # reddish purple: azurophilic granules, Auer rods


@dataclass(frozen=True)
class Stain:
    """The slide's staining and the lamp's colour for one image.

    Attributes:
        background: RGB of the light through empty glass (0-255).
        eosin: Optical density (R, G, B) per unit eosin density.
        nuclear: Optical density per unit nuclear stain density.
        basophil: Optical density per unit basophilic density.
        granule: Optical density per unit granule density.
        hue_shift: Hue rotation of the final picture in degrees.
        saturation: Saturation factor of the final picture.
    """

    background: tuple[float, float, float]
    eosin: tuple[float, float, float]
    nuclear: tuple[float, float, float]
    basophil: tuple[float, float, float]
    granule: tuple[float, float, float]
    hue_shift: float
    saturation: float


@dataclass(frozen=True)
class Optics:
    """Illumination, focus and sensor of one image.

    Attributes:
        brightness: Overall light level factor.
        vignette: Relative light loss in the corners, in [0, 1).
        vignette_center: Centre of the vignetting relative to the image (x, y).
        gradient: Linear light change across the image (per half width, height).
        blur_sigma: Defocus blur in pixels (0: sharp).
        noise_sigma: Sensor noise standard deviation in 8-bit levels.
    """

    brightness: float
    vignette: float
    vignette_center: tuple[float, float]
    gradient: tuple[float, float]
    blur_sigma: float
    noise_sigma: float


@dataclass(frozen=True)
class Scene:
    """Everything needed to draw one smear; :func:`draw_scene` is pure in it.

    Attributes:
        cls: The image's class (one of :data:`CLASSES`).
        size: Image size as (width, height).
        rbc_diameter: Typical red-cell diameter in pixels for this image.
        red_cells: The erythrocytes.
        white_cells: The leukocytes; the first is the central cell of ``cls``.
        platelets: Small purple fragments.
        stain: Stain colours.
        optics: Illumination, focus and noise.
        texture_seed: Seed of the chromatin, granule and sensor noise.
    """

    cls: str
    size: tuple[int, int]
    rbc_diameter: float
    red_cells: tuple[RedCell, ...]
    white_cells: tuple[WhiteCell, ...]
    platelets: tuple[Blob, ...]
    stain: Stain
    optics: Optics
    texture_seed: int

    @property
    def central_cell(self) -> WhiteCell:
        """The white cell that defines the image's class."""
        return self.white_cells[0]


def check_class(cls: str, option: str) -> None:
    """Raise :class:`OptionError` for ``option`` unless ``cls`` is one of :data:`CLASSES`."""
    if cls not in CLASSES:
        raise OptionError(option, f"unknown class {cls!r}; choose from {', '.join(CLASSES)}")


def check_size(size: tuple[int, int], option: str) -> tuple[int, int]:
    """Validate an image size (width, height) and return it as two ints.

    Args:
        size: The requested (width, height).
        option: Option name for the error message.

    Returns:
        ``(width, height)``.

    Raises:
        OptionError: Not two whole numbers within ``MIN_SIDE..MAX_SIDE``.
    """
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise OptionError(option, f"expected (width, height), got {size!r}") from None
    if tuple(size) != (width, height):
        raise OptionError(option, f"expected whole numbers, got {size!r}")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise OptionError(
            option, f"each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {width}x{height}"
        )
    return width, height


def _jitter(
    rng: np.random.Generator, base: tuple[float, float, float], spread: float
) -> tuple[float, float, float]:
    """Each component of ``base`` times an independent factor in 1 +- ``spread``."""
    return tuple(float(v * rng.uniform(1 - spread, 1 + spread)) for v in base)


def _sample_stain(rng: np.random.Generator) -> Stain:
    """Stain colours and strength of one slide, independent of the class."""
    # Glass background between BCCD's pale grey-cyan and ALL-IDB's warm white.
    t = rng.random()
    cool, warm = np.array([204.0, 220.0, 214.0]), np.array([234.0, 228.0, 222.0])
    background = (cool + t * (warm - cool)) * rng.uniform(0.96, 1.04, 3)
    strength = rng.uniform(0.75, 1.3)
    nuclear = rng.uniform(0.8, 1.2)
    return Stain(
        background=tuple(float(v) for v in np.clip(background, 150, 250)),
        eosin=tuple(float(v * strength) for v in _jitter(rng, _OD_EOSIN, 0.15)),
        nuclear=tuple(float(v * nuclear) for v in _jitter(rng, _OD_NUCLEAR, 0.12)),
        basophil=_jitter(rng, _OD_BASOPHIL, 0.2),
        granule=_jitter(rng, _OD_GRANULE, 0.12),
        hue_shift=float(rng.uniform(-12, 12)),
        saturation=float(rng.uniform(0.75, 1.2)),
    )


def _sample_optics(rng: np.random.Generator, px: float) -> Optics:
    """Illumination, focus (sharp two times in three) and sensor noise of one image."""
    blur = rng.uniform(0.0, 1.0) if rng.random() < 0.65 else rng.uniform(1.0, 2.6)
    return Optics(
        brightness=float(rng.uniform(0.88, 1.06)),
        vignette=float(rng.uniform(0.0, 0.3)),
        vignette_center=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65))),
        gradient=(float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1))),
        blur_sigma=float(blur * px),
        noise_sigma=float(rng.uniform(1.0, 5.0)),
    )


def _border_point(
    rng: np.random.Generator, width: int, height: int, inset: float
) -> tuple[float, float]:
    """A point ``inset`` px inside a random image edge (negative: outside)."""
    edge = int(rng.integers(0, 4))
    if edge == 0:
        return float(rng.uniform(0, width)), inset
    if edge == 1:
        return float(rng.uniform(0, width)), height - inset
    if edge == 2:
        return inset, float(rng.uniform(0, height))
    return width - inset, float(rng.uniform(0, height))


def _place_red_cells(
    rng: np.random.Generator,
    width: int,
    height: int,
    rbc: float,
    whites: tuple[WhiteCell, ...],
) -> tuple[RedCell, ...]:
    """Red cells by random sequential placement with a per-image crowding level."""
    coverage = rng.uniform(0.12, 0.6)
    margin = rbc * 0.5
    area = (width + 2 * margin) * (height + 2 * margin)
    target = int(coverage * area / (math.pi * (rbc / 2) ** 2))
    separation = rbc * rng.uniform(0.6, 0.92)
    n = 4 * target + 8
    xy = np.column_stack(
        (rng.uniform(-margin, width + margin, n), rng.uniform(-margin, height + margin, n))
    )
    keep = np.ones(n, dtype=bool)
    for cell in whites:
        gap = cell.body.reach() + rbc * rng.uniform(0.25, 0.45)
        keep &= np.hypot(xy[:, 0] - cell.body.cx, xy[:, 1] - cell.body.cy) > gap
    xy = xy[keep]
    x, y = xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32)
    close = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2 < separation**2
    taken = np.zeros(len(xy), dtype=bool)
    count = 0
    for i in range(len(xy)):
        if count >= target:
            break
        if not np.any(close[i] & taken):
            taken[i] = True
            count += 1
    cells = []
    pallor_level = rng.uniform(0.35, 0.75)
    for x, y in xy[taken]:
        cells.append(
            RedCell(
                shape=Blob(
                    float(x),
                    float(y),
                    rbc / 2 * rng.uniform(0.9, 1.1),
                    float(rng.uniform(0.82, 1.0)),
                    float(rng.uniform(0, math.pi)),
                    wavy(rng, 3, 0.03),
                ),
                density=float(rng.uniform(0.8, 1.15)),
                pallor=float(np.clip(pallor_level + rng.normal(0, 0.08), 0.1, 0.9)),
                pallor_radius=float(rng.uniform(0.35, 0.55)),
            )
        )
    return tuple(cells)


#: Red-cell diameter as a fraction of the image width.
RBC_WIDTH_FRACTION = (0.13, 0.16)


def sample_scene(cls: str, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_SIZE) -> Scene:
    """Draw every random choice of one smear of class ``cls``.

    Args:
        cls: One of :data:`CLASSES`.
        rng: The generator all choices come from (it is advanced).
        size: Image size as (width, height).

    Returns:
        The scene; :func:`draw_scene` turns it into pixels.

    Raises:
        OptionError: ``cls`` or ``size`` is invalid.
    """
    check_class(cls, "cls")
    width, height = check_size(size, "size")
    # Magnification like the BCCD smears (a red cell is 13-16 % of the image
    # width); pixel-sized details (edges, chromatin grain, rods) scale with it.
    rbc = width * rng.uniform(*RBC_WIDTH_FRACTION)
    px = rbc / 48.0
    cx = width / 2 + rng.uniform(-0.12, 0.12) * width
    cy = height / 2 + rng.uniform(-0.12, 0.12) * height
    whites = [SAMPLERS[cls](rng, cx, cy, rbc, px)]
    # Further white cells cut by the border: more blasts in leukaemic blood,
    # and a normal leukocyte now and then in every class.
    extras: list[str] = []
    if cls != "normal" and rng.random() < 0.35:
        extras.append(cls)
    if rng.random() < 0.2:
        extras.append("normal")
    for extra in extras:
        for _ in range(20):
            x, y = _border_point(rng, width, height, rng.uniform(-0.2, 0.5) * rbc)
            cell = SAMPLERS[extra](rng, x, y, rbc, px)
            if all(
                math.hypot(x - w.body.cx, y - w.body.cy) > cell.body.reach() + w.body.reach() + 4
                for w in whites
            ):
                whites.append(cell)
                break
    white_cells = tuple(whites)
    red_cells = _place_red_cells(rng, width, height, rbc, white_cells)
    platelets = tuple(
        Blob(
            float(rng.uniform(0, width)),
            float(rng.uniform(0, height)),
            rbc * rng.uniform(0.07, 0.13),
            float(rng.uniform(0.6, 1.0)),
            float(rng.uniform(0, math.pi)),
            wavy(rng, 3, 0.12),
        )
        for _ in range(int(rng.integers(0, 7)))
    )
    return Scene(
        cls=cls,
        size=(width, height),
        rbc_diameter=float(rbc),
        red_cells=red_cells,
        white_cells=white_cells,
        platelets=platelets,
        stain=_sample_stain(rng),
        optics=_sample_optics(rng, px),
        texture_seed=int(rng.integers(0, 2**63 - 1)),
    )
