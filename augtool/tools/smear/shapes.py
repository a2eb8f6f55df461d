"""Soft-edged shapes that smear cells are drawn from, rasterised on pixel grids."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Blob:
    """A closed, soft-edged shape: an ellipse with a wavy outline.

    The outline in polar coordinates (in the ellipse's own frame) is
    ``radius * (1 + sum(a * cos(k * theta + phase)))``.

    Attributes:
        cx: Centre x in pixels.
        cy: Centre y in pixels.
        radius: Semi-major axis in pixels.
        aspect: Minor over major axis, in (0, 1].
        angle: Rotation of the major axis in radians.
        harmonics: ``(k, a, phase)`` terms that make the outline wavy.
    """

    cx: float
    cy: float
    radius: float
    aspect: float = 1.0
    angle: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = ()

    def reach(self) -> float:
        """Largest distance of the outline from the centre, in pixels."""
        return self.radius * (1.0 + sum(abs(a) for _, a, _ in self.harmonics))

    def field(self, xs: np.ndarray, ys: np.ndarray, edge: float) -> tuple[np.ndarray, np.ndarray]:
        """Coverage and normalised radius on a pixel grid.

        Args:
            xs: Pixel-centre x coordinates, shape (1, w).
            ys: Pixel-centre y coordinates, shape (h, 1).
            edge: Width of the soft edge in pixels.

        Returns:
            ``(alpha, rho)``: coverage in [0, 1] and the distance from the
            centre relative to the outline (1 on the outline), both (h, w).
        """
        dx = xs - self.cx
        dy = ys - self.cy
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = dx * c + dy * s
        v = (dy * c - dx * s) / self.aspect
        r = np.sqrt(u * u + v * v)
        boundary = np.full_like(r, self.radius)
        if self.harmonics:
            theta = np.arctan2(v, u)
            wave = np.zeros_like(r)
            for k, a, phase in self.harmonics:
                wave += a * np.cos(k * theta + phase)
            boundary = self.radius * (1.0 + wave)
        # Distance to the outline measured roughly in pixels (the ellipse's
        # minor direction is compressed by ``aspect``).
        alpha = np.clip((boundary - r) * (self.aspect / edge) + 0.5, 0.0, 1.0)
        return alpha.astype(np.float32), (r / boundary).astype(np.float32)


@dataclass(frozen=True)
class Segment:
    """A capsule (a thick line with round ends): a nuclear strand or an Auer rod.

    Attributes:
        x0: First end x in pixels.
        y0: First end y in pixels.
        x1: Second end x in pixels.
        y1: Second end y in pixels.
        width: Thickness in pixels.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    width: float

    def alpha(self, xs: np.ndarray, ys: np.ndarray, edge: float) -> np.ndarray:
        """Coverage in [0, 1] on a pixel grid (see :meth:`Blob.field`)."""
        ex, ey = self.x1 - self.x0, self.y1 - self.y0
        length2 = max(ex * ex + ey * ey, 1e-9)
        t = np.clip(((xs - self.x0) * ex + (ys - self.y0) * ey) / length2, 0.0, 1.0)
        d = np.hypot(xs - (self.x0 + t * ex), ys - (self.y0 + t * ey))
        return np.clip((self.width / 2.0 - d) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def grid_box(
    cx: float, cy: float, reach: float, width: int, height: int
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Slices and pixel-centre coordinates of the box around a shape, or None."""
    x0 = max(math.floor(cx - reach - 2), 0)
    x1 = min(math.ceil(cx + reach + 2), width)
    y0 = max(math.floor(cy - reach - 2), 0)
    y1 = min(math.ceil(cy + reach + 2), height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
    return (slice(y0, y1), slice(x0, x1)), xs, ys


def wavy(
    rng: np.random.Generator, terms: int, amount: float
) -> tuple[tuple[int, float, float], ...]:
    """Random outline harmonics k = 2 .. terms + 1 with amplitudes up to ``amount``."""
    return tuple(
        (k, float(rng.uniform(0.0, amount)), float(rng.uniform(0.0, 2 * math.pi)))
        for k in range(2, terms + 2)
    )


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``lo`` to 1 at ``hi`` (smooth edges for profiles)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
