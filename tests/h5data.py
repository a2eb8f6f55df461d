"""Write small schema-conformant HDF5 datasets (docs/dataset-format.md) for tests and benchmarks.

A stand-in for ``augtool expand`` so the model package can be tested on its own;
it writes every dataset and attribute the format names, with one source per image.
It also draws simple generated images: one coloured blob shape per class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

#: Blob colour (RGB) and radius fraction per class index; background is pale.
_STYLES = (((150, 60, 170), 0.30), ((230, 140, 150), 0.18), ((70, 90, 200), 0.40))


def blob_images(
    labels: np.ndarray, size: int, rng: np.random.Generator, noise: float = 12.0
) -> np.ndarray:
    """One image per label: a noisy pale background with a class-coloured disc near the centre.

    Args:
        labels: Class index of each image (classes beyond 3 reuse the styles, shifted).
        size: Side length.
        rng: Random source for positions, radii and noise.
        noise: Standard deviation of the pixel noise.

    Returns:
        ``(N, size, size, 3)`` uint8 RGB.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((len(labels), size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        colour, radius = _STYLES[int(label) % len(_STYLES)]
        shift = 25 * (int(label) // len(_STYLES))
        cy, cx = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
        r = radius * size * rng.uniform(0.85, 1.15)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r
        img = np.full((size, size, 3), 225.0, dtype=np.float32)
        img[disc] = np.asarray(colour, dtype=np.float32) - shift
        img += rng.normal(0.0, noise, img.shape).astype(np.float32)
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def write_h5(
    path: str | Path,
    images: np.ndarray,
    labels: Sequence[int],
    splits: Sequence[str],
    class_names: Sequence[str],
    transforms: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``images`` as an augtool HDF5 file (schema version 1).

    Args:
        path: The file to write.
        images: ``(N, S, S, 3)`` uint8.
        labels: Class index per image.
        splits: Split name per image (``train``, ``val``, ``test`` or ``all``).
        class_names: Sorted class names.
        transforms: Transform name per image (default: all ``original``).
        seed: Recorded as the run seed.

    Returns:
        ``path``.
    """
    path = Path(path)
    n, size = len(images), int(images.shape[1])
    transforms = list(transforms) if transforms is not None else ["original"] * n
    split_names = [s for s in ("train", "val", "test", "all") if s in set(splits)]
    str_t = h5py.string_dtype("utf-8")
    names = [
        f"{splits[i]}/{class_names[labels[i]]}/img{i:05d}__00_{transforms[i]}.png" for i in range(n)
    ]
    sources = [f"{class_names[labels[i]]}/img{i:05d}.png" for i in range(n)]
    sha = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]
    with h5py.File(path, "w") as fh:
        fh.create_dataset("images", data=images, chunks=(1, size, size, 3))
        fh.create_dataset("labels", data=np.asarray(labels, dtype=np.int16))
        codes = np.array([split_names.index(s) for s in splits], dtype=np.uint8)
        fh.create_dataset("split", data=codes).attrs["names"] = split_names
        fh.create_dataset("source_index", data=np.arange(n, dtype=np.int32))
        fh.create_dataset("copy", data=np.zeros(n, dtype=np.int16))
        fh.create_dataset("transform", data=transforms, dtype=str_t)
        fh.create_dataset("params", data=["{}"] * n, dtype=str_t)
        fh.create_dataset("name", data=names, dtype=str_t)
        fh.create_dataset("sha256", data=np.array(sha, dtype="S64"))
        fh.create_dataset("sources/path", data=sources, dtype=str_t)
        fh.create_dataset("sources/sha256", data=np.array(sha, dtype="S64"))
        fh.create_dataset("sources/label", data=np.asarray(labels, dtype=np.int16))
        fh.create_dataset("sources/group", data=sources, dtype=str_t)
        fh.create_dataset("sources/split", data=codes)
        fh.attrs["schema_version"] = 1
        fh.attrs["class_names"] = list(class_names)
        fh.attrs["seed"] = seed
        fh.attrs["size"] = size
        fh.attrs["tool_version"] = "test"
        fh.attrs["command_line"] = "tests/h5data.py"
        fh.attrs["created_utc"] = "2026-11-26T00:00:00Z"
        fh.attrs["recipe"] = json.dumps({"size": size, "seed": seed})
    return path


def make_blob_h5(
    path: str | Path,
    per_class: Sequence[int],
    size: int,
    seed: int = 0,
    class_names: Sequence[str] = ("ALL", "AML", "normal"),
    test_fraction: float = 0.3,
    val_fraction: float = 0.0,
) -> Path:
    """Generate blob images and write them with a train/(val/)test split per class.

    Args:
        path: The file to write.
        per_class: Images per class.
        size: Side length.
        seed: Seeds the images and the split.
        class_names: Class names (sorted order is the label order).
        test_fraction: Fraction of each class in ``test``.
        val_fraction: Fraction of each class in ``val`` (0 for none).

    Returns:
        ``path``.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(per_class)), per_class)
    splits: list[str] = []
    for count in per_class:
        n_test = round(count * test_fraction)
        n_val = round(count * val_fraction)
        splits += ["test"] * n_test + ["val"] * n_val + ["train"] * (count - n_test - n_val)
    transforms = ["original" if i % 2 == 0 else "flip_x" for i in range(len(labels))]
    images = blob_images(labels, size, rng)
    return write_h5(path, images, labels, splits, sorted(class_names), transforms, seed)
