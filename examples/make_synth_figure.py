"""Save a contact sheet of generated smears to docs/img/synth_examples.png.

One row per class: three whole images (shrunk 2.5x) and, last, the centre of the
sharpest of them at full resolution, where the class cues (nucleus share,
chromatin, granules, Auer rods) are visible. The sheet is stored as a 256-colour PNG to
stay small. Run from the repository root::

    python examples/make_synth_figure.py [--seed 0] [--out docs/img/synth_examples.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from augtool.tools.synth import CLASSES, draw_scene, image_rng, sample_scene

SIZE = (640, 480)
TILE = (256, 192)
LABEL_HEIGHT = 20
GAP = 4
WHITE = 255


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with a white caption strip on top."""
    strip = np.full((LABEL_HEIGHT, tile.shape[1], 3), WHITE, np.uint8)
    cv2.putText(strip, text, (5, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, tile])


def centre_crop(image: np.ndarray, cx: float, cy: float, size: tuple[int, int]) -> np.ndarray:
    """A ``size`` (width, height) window of ``image`` centred on (cx, cy), edges repeated."""
    w, h = size
    padded = np.pad(image, ((h, h), (w, w), (0, 0)), mode="edge")
    x0, y0 = int(cx) + w - w // 2, int(cy) + h - h // 2
    return padded[y0 : y0 + h, x0 : x0 + w]


def contact_sheet(per_class: int = 3, seed: int = 0) -> np.ndarray:
    """The sheet as an RGB array: per class ``per_class`` images and one zoom."""
    rows = []
    for class_index, cls in enumerate(CLASSES):
        rngs = [image_rng(seed, class_index, i) for i in range(per_class)]
        scenes = [sample_scene(cls, rng, SIZE) for rng in rngs]
        images = [draw_scene(scene) for scene in scenes]
        tiles = [
            label(cv2.resize(image, TILE, interpolation=cv2.INTER_AREA), f"{cls} #{i}")
            for i, image in enumerate(images)
        ]
        sharpest = min(range(per_class), key=lambda i: scenes[i].optics.blur_sigma)
        cell = scenes[sharpest].central_cell
        zoom = centre_crop(images[sharpest], cell.body.cx, cell.body.cy, TILE)
        tiles.append(label(zoom, f"{cls} #{sharpest} centre, full size: {cell.kind}"))
        gap = np.full((tiles[0].shape[0], GAP, 3), WHITE, np.uint8)
        row = np.hstack([part for tile in tiles for part in (tile, gap)][:-1])
        rows.extend([row, np.full((GAP, row.shape[1], 3), WHITE, np.uint8)])
    return np.vstack(rows[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/img/synth_examples.png"))
    args = parser.parse_args()
    sheet = Image.fromarray(contact_sheet(seed=args.seed)).quantize(colors=256)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height} px)")


if __name__ == "__main__":
    main()
