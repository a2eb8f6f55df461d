"""Turn a :class:`~augtool.tools.smear.scene.Scene` into an RGB picture (pure in the scene).

Every cell adds density to one of four stain planes (eosin, nuclear,
basophilic, granule). The light through the slide is
``background * light(x, y) * exp(-density @ OD)`` per channel (Beer-Lambert),
so overlapping cells darken as on a real slide; then come defocus blur, the
stain's hue and saturation shift and sensor noise. Texture and noise come from
the scene's ``texture_seed``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from augtool.tools.smear.cell_models import WhiteCell, cell_masks
from augtool.tools.smear.scene import Scene
from augtool.tools.smear.shapes import grid_box, smoothstep

# Stain planes of the density stack, in the order of the OD rows in draw_scene.
EOSIN, NUCLEAR, BASOPHIL, GRANULE = 0, 1, 2, 3


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-blurred white noise scaled to unit standard deviation."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    if sigma > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    std = float(noise.std())
    return noise / std if std > 1e-6 else noise


def _draw_red_cells(density: np.ndarray, scene: Scene, edge: float) -> None:
    """Add each red cell's eosin: a disc, paler in the middle, a little darker at the rim."""
    height, width = density.shape[1:]
    for cell in scene.red_cells:
        box = grid_box(cell.shape.cx, cell.shape.cy, cell.shape.reach(), width, height)
        if box is None:
            continue
        region, xs, ys = box
        alpha, rho = cell.shape.field(xs, ys, edge)
        pale = 1.0 - smoothstep(cell.pallor_radius - 0.22, cell.pallor_radius + 0.18, rho)
        rim = smoothstep(0.72, 0.98, rho)
        profile = (1.0 - cell.pallor * pale) * (1.0 + 0.15 * rim)
        density[EOSIN][region] += cell.density * alpha * profile


def _draw_white_cell(
    density: np.ndarray, cell: WhiteCell, edge: float, rng: np.random.Generator
) -> None:
    """Add a white cell: textured nucleus, tinted cytoplasm, granules and Auer rods."""
    height, width = density.shape[1:]
    box = grid_box(cell.body.cx, cell.body.cy, cell.body.reach(), width, height)
    if box is None:
        return
    region, xs, ys = box
    body, nucleus = cell_masks(cell, xs, ys, edge)
    cytoplasm = np.clip(body - nucleus, 0.0, 1.0)
    shape = body.shape
    chromatin = 1.0 + cell.chromatin_amount * _smooth_noise(rng, shape, cell.chromatin_scale)
    for spot in cell.nucleoli:
        chromatin *= 1.0 - 0.45 * spot.field(xs, ys, 1.5 * edge)[0]
    density[NUCLEAR][region] += cell.nucleus_density * nucleus * np.clip(chromatin, 0.2, 2.0)
    density[BASOPHIL][region] += cell.cytoplasm_blue * cytoplasm
    density[EOSIN][region] += cell.cytoplasm_pink * cytoplasm
    if cell.granule_amount > 0:
        grains = np.clip(
            _smooth_noise(rng, shape, cell.granule_scale) - cell.granule_threshold, 0, None
        )
        density[GRANULE][region] += cell.granule_amount * grains * cytoplasm
    for rod in cell.rods:
        a = rod.alpha(xs, ys, edge) * body
        density[GRANULE][region] += cell.rod_density * a
        density[NUCLEAR][region] += 0.5 * cell.rod_density * a


def _draw_platelets(density: np.ndarray, scene: Scene, edge: float) -> None:
    """Add the platelets: small purple fragments."""
    height, width = density.shape[1:]
    for blob in scene.platelets:
        box = grid_box(blob.cx, blob.cy, blob.reach(), width, height)
        if box is None:
            continue
        region, xs, ys = box
        alpha = blob.field(xs, ys, edge)[0]
        density[GRANULE][region] += 0.8 * alpha
        density[NUCLEAR][region] += 0.3 * alpha


def _log_light(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Log of the relative light through empty glass, (H, W) float32.

    The light field is smooth, so it is computed on a grid 8 times coarser
    and interpolated.
    """
    width, height = scene.size
    o = scene.optics
    cw, ch = max(width // 8, 2), max(height // 8, 2)
    x = np.linspace(-1.0, 1.0, cw, dtype=np.float32)[None, :]
    y = np.linspace(-1.0, 1.0, ch, dtype=np.float32)[:, None]
    vx, vy = 2 * o.vignette_center[0] - 1, 2 * o.vignette_center[1] - 1
    wx, wy = width**2 / (width**2 + height**2), height**2 / (width**2 + height**2)
    r2 = wx * (x - vx) ** 2 + wy * (y - vy) ** 2
    light = (1.0 - o.vignette * r2) * (1.0 + o.gradient[0] * x + o.gradient[1] * y)
    # Slow mottling of the background, like an uneven smear.
    mottle = cv2.resize(
        rng.standard_normal((6, 8), dtype=np.float32), (cw, ch), interpolation=cv2.INTER_CUBIC
    )
    coarse = np.log(light) + np.float32(0.015) * mottle
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _sensor_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean noise of standard deviation ``sigma``: the sum of two uniform bytes.

    The triangular distribution looks like Gaussian sensor noise and costs a
    fraction of ``standard_normal`` (it dominated the drawing time).
    """
    count = math.prod(shape)
    pair = np.frombuffer(rng.bytes(2 * count), dtype=np.uint8).reshape(2, *shape)
    spread = pair[0].astype(np.float32) + pair[1] - np.float32(255.0)
    return spread * np.float32(sigma / math.sqrt(2 * (256**2 - 1) / 12))


def _colour_matrix(hue_shift: float, saturation: float) -> np.ndarray:
    """RGB matrix that rotates hue by ``hue_shift`` degrees and scales saturation (YIQ)."""
    yiq = np.array(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float64
    )
    c, s = math.cos(math.radians(hue_shift)), math.sin(math.radians(hue_shift))
    turn = (
        np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        * np.array([1, saturation, saturation])[:, None]
    )
    return (np.linalg.inv(yiq) @ turn @ yiq).astype(np.float32)


def edge_width(scene: Scene) -> float:
    """Width in pixels of the cells' soft edges (pixel-sized: it scales with the image width)."""
    return max(0.8 * (scene.size[0] / 640.0), 0.6)


def draw_scene(scene: Scene) -> np.ndarray:
    """Render a scene to an RGB image (a pure function of the scene).

    Light through the slide is ``background * light(x, y) * exp(-density @ OD)``
    per channel; then come defocus blur, the stain's hue and saturation shift
    and sensor noise.

    Args:
        scene: A scene from :func:`sample_scene`.

    Returns:
        The smear as an (H, W, 3) uint8 RGB array, before JPEG compression.
    """
    width, height = scene.size
    edge = edge_width(scene)
    rng = np.random.default_rng(scene.texture_seed)
    density = np.zeros((4, height, width), dtype=np.float32)
    _draw_red_cells(density, scene, edge)
    _draw_platelets(density, scene, edge)
    for cell in scene.white_cells:
        _draw_white_cell(density, cell, edge, rng)
    stain, optics = scene.stain, scene.optics
    od = np.array([stain.eosin, stain.nuclear, stain.basophil, stain.granule], dtype=np.float32)
    offset = np.log(np.asarray(stain.background, dtype=np.float32) * optics.brightness)
    # log(intensity) = log(background) - density @ OD + log(light)
    affine = np.hstack([-od.T, offset[:, None]])
    log_image = cv2.transform(cv2.merge(list(density)), affine)
    log_image += _log_light(scene, rng)[..., None]
    image = np.exp(log_image)
    if optics.blur_sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), optics.blur_sigma)
    image = cv2.transform(image, _colour_matrix(stain.hue_shift, stain.saturation))
    image += _sensor_noise(rng, image.shape, optics.noise_sigma)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
