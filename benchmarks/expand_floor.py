"""The floor of ``augtool expand``: the work no expand of a workload can avoid, timed alone.

For each source: read it once, decode it once at the reduction ``expand``
would choose (:func:`augtool.store.decode.choose_reduction`), resize it to the
output size as ``expand`` makes its original (:func:`augtool.ops.resize.resize_to`),
then encode and write each of its outputs with ``expand``'s own encoder
(:func:`augtool.store.encode.encode_image`, PNG at OpenCV's defaults) or, for
``--hdf5``, write its rows into one HDF5 file laid out as ``expand`` lays it
(one uncompressed ``(1, S, S, 3)`` chunk per image, written by the one parent
process). No hash, no check, no transform, no manifest. Outputs are spread
over the sources in turn (output ``i`` from source ``i mod n``), as in the
naive loop of ``bench_expand.py``.

It runs in a new process with ``--workers`` processes forked from it (OpenCV
one thread each, as ``expand``'s workers), so its time is comparable with
``augtool expand`` run the same way: interpreter start-up and imports count
on both sides.

Usage: python benchmarks/expand_floor.py RAW OUT [--workers N] [--count N]
       [--size S] [--hdf5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.ops.resize import resize_to
from augtool.store.decode import IMAGE_SUFFIXES, choose_reduction, decode_rgb, image_size
from augtool.store.encode import encode_image

#: What each worker needs, set before the fork: (sources, outputs per source, out, size, hdf5).
_JOB: tuple[list[Path], list[list[int]], Path, int, bool] | None = None


def _one(i: int) -> tuple[int, np.ndarray | None]:
    """Decode source ``i`` once, resize it, encode and write its outputs (or return the rows)."""
    assert _JOB is not None
    sources, outputs, out, size, hdf5 = _JOB
    src = sources[i]
    data = src.read_bytes()
    width, height = image_size(data)
    small = resize_to(decode_rgb(data, choose_reduction(width, height, size)), size)
    if hdf5:
        return i, small
    folder = out / src.parent.name
    for k in outputs[i]:
        with open(folder / f"{src.stem}_{k:05d}.png", "wb") as fh:
            fh.write(encode_image(small, "png"))
    return i, None


def floor(raw: Path, out: Path, workers: int, count: int, size: int, hdf5: bool) -> None:
    """Make ``count`` outputs of ``size`` from every image under ``raw/<class>/``.

    Args:
        raw: The sources, one folder per class.
        out: A folder (made) or, with ``hdf5``, a file.
        workers: Processes to fork.
        count: Outputs in all.
        size: Output side.
        hdf5: Write one HDF5 file instead of PNG files.
    """
    global _JOB
    sources = sorted(
        p for p in raw.glob("*/*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    outputs: list[list[int]] = [[] for _ in sources]
    for k in range(count):
        outputs[k % len(sources)].append(k)
    if not hdf5:
        for cls in {p.parent.name for p in sources}:
            (out / cls).mkdir(parents=True, exist_ok=True)
    _JOB = (sources, outputs, out, size, hdf5)
    cv2.setNumThreads(1)
    fh = images = None
    if hdf5:
        import h5py

        fh = h5py.File(out, "w")
        images = fh.create_dataset(
            "images", shape=(count, size, size, 3), dtype=np.uint8, chunks=(1, size, size, 3)
        )
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for i, small in pool.imap_unordered(_one, range(len(sources))):
            if images is not None:
                for k in outputs[i]:
                    images[k] = small
    if fh is not None:
        fh.close()


def main() -> None:
    """Parse the arguments and make the outputs."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--count", type=int, default=1492)
    parser.add_argument("--size", type=int, default=227)
    parser.add_argument("--hdf5", action="store_true", help="one HDF5 file, as expand OUT.h5")
    args = parser.parse_args()
    floor(args.raw, args.out, args.workers, args.count, args.size, args.hdf5)


if __name__ == "__main__":
    main()
