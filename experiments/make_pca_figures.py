"""Draw the contact sheets of docs/pca.md: one real cell, original + 5 PCA copies per mode.

Writes ``docs/img/pca_pixel.png`` and ``docs/img/pca_shift.png``: the same cell
(``../shared/data/bccd-cells/WBC/BloodImage_00024_wbc.jpg`` resized to 227 x 227,
or a generated smear when the shared data is absent), changed five times at the
default strength (``std=DEFAULT_STD``, k=3) with the same alphas (seed 0) in
each mode. Under every tile: the weights w of the pixel mode, or the shift
(R, G, B) in grey levels of the shift mode. Prints each copy's weights, shift
and mean and largest absolute change from the original (grey levels).

Run: ``python experiments/make_pca_figures.py [--out-dir DIR]`` (docs/pca.md's
marked block runs it; ``python docs/regenerate.py pca.md`` remakes the pictures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from augtool.ops.pca import DEFAULT_STD, pca_jitter
from augtool.store.decode import load_resized

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / ".." / "shared" / "data" / "bccd-cells" / "WBC" / "BloodImage_00024_wbc.jpg"
SIZE = 227
COPIES = 5
GAP = 4
LABEL = 22


def generated_cell(size: int) -> np.ndarray:
    """A pale smear with pink discs and a purple nucleus (when no real cell exists)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((size, size, 3))
    image[:] = (232, 214, 222)
    for _ in range(10):
        cy, cx = rng.uniform(0, size, 2)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 20**2] = (214, 140, 160)
    image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < 40**2] = (110, 60, 150)
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def tile(image: np.ndarray, text: str) -> np.ndarray:
    """The image above a white band carrying ``text``."""
    band = np.full((LABEL, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(band, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([image, band])


def sheet(original: np.ndarray, mode: str) -> np.ndarray:
    """Original + ``COPIES`` copies in ``mode``, side by side with white gaps."""
    batch = np.repeat(original[None], COPIES, axis=0)
    result = pca_jitter(batch, np.random.default_rng(0), std=DEFAULT_STD, k=3, mode=mode)
    tiles = [tile(original, "original")]
    print(f"{mode}: eigenvalues {' '.join(f'{v:.0f}' for v in result.eigenvalues[0])}")
    for image, weights, shift in zip(result.images, result.weights, result.shifts, strict=True):
        change = np.abs(image.astype(np.int16) - original.astype(np.int16))
        print(
            f"  w {' '.join(f'{v:+.2f}' for v in weights)}  shift "
            f"{' '.join(f'{v:+.1f}' for v in shift)}  mean change {change.mean():.1f}, "
            f"largest {change.max()} grey levels"
        )
        if mode == "pixel":
            text = "w " + " ".join(f"{v:+.2f}" for v in weights)
        else:
            text = "shift " + " ".join(f"{round(v):+d}" for v in shift)
        tiles.append(tile(image, text))
    gap = np.full((SIZE + LABEL, GAP, 3), 255, dtype=np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [gap, t]
    return np.concatenate(row, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    out = parser.parse_args().out_dir
    original = load_resized(CELL, SIZE) if CELL.exists() else generated_cell(SIZE)
    out.mkdir(parents=True, exist_ok=True)
    for mode in ("pixel", "shift"):
        path = out / f"pca_{mode}.png"
        rgb = sheet(original, mode)
        cv2.imwrite(
            str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
        )
        print(f"wrote {path.name} ({rgb.shape[1]}x{rgb.shape[0]} px)")


if __name__ == "__main__":
    main()
