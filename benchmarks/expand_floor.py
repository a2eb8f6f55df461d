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

``--render`` makes each output as ``expand`` makes it instead: the same
plan (:func:`augtool.engine.plan.make_plan`, the paper's ten transforms in
turn), each source read, hashed and decoded once, then every output rendered
by ``expand``'s own :func:`augtool.engine.render.render_source` (the step at
the working resolution, the resize, the encoding, the output's hash and its
parameters as JSON). The bytes are those of ``augtool expand RAW OUT --split
none``; what is left out is ``expand``'s bookkeeping: its separate scan, the
check of every source, the manifest, the journal, the results sent to one
writing process, the staging and the publishing.

``--render --at-output-size`` renders from the source already resized to the
output size (the floor's image) instead of the working image: every step at
the output resolution, the only design whose transforms cost little beside
the floor. Its bytes are not ``expand``'s, and its steps lose the working
resolution's detail (docs/transforms.md): it is here to measure that design.

It runs in a new process with ``--workers`` processes forked from it (OpenCV
one thread each, as ``expand``'s workers), so its time is comparable with
``augtool expand`` run the same way: interpreter start-up and imports count
on both sides.

Usage: python benchmarks/expand_floor.py RAW OUT [--workers N] [--count N]
       [--size S] [--hdf5] [--render [--at-output-size]]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from augtool.engine.plan import make_plan
from augtool.engine.render import RenderSettings, SourceTask, preloaded, render_source
from augtool.ops.resize import resize_to
from augtool.pipeline.recipe_spec import paper_recipe
from augtool.store.decode import IMAGE_SUFFIXES, choose_reduction, decode_rgb, image_size
from augtool.store.encode import encode_image

#: What each worker needs, set before the fork: (sources, outputs per source, out, size, hdf5).
_JOB: tuple[list[Path], list[list[int]], Path, int, bool] | None = None
#: With ``--render``: ``(plan index, copy, step)`` of each source's outputs.
_PLAN: list[list[tuple[int, int, str]]] | None = None
#: With ``--at-output-size``: render from the source resized to the output size.
_AT_OUTPUT_SIZE = False


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


def _render(i: int) -> tuple[int, list[tuple[int, np.ndarray]] | None]:
    """Read, hash and decode source ``i`` once, then render its outputs as ``expand`` does."""
    assert _JOB is not None and _PLAN is not None
    sources, _, out, size, hdf5 = _JOB
    src = sources[i]
    data = src.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    width, height = image_size(data)
    reduction = choose_reduction(width, height, size)
    settings = RenderSettings(size=size, encoding="array" if hdf5 else "png")
    task = SourceTask(str(src), sha256, width, height, tuple(_PLAN[i]))
    pixels = decode_rgb(data, reduction)
    if _AT_OUTPUT_SIZE:
        pixels = resize_to(pixels, size)
    with preloaded({(sha256, reduction): pixels}):
        rendered = render_source(task, settings)
    if hdf5:
        return i, [(r.index, r.payload) for r in rendered]
    folder = out / src.parent.name
    for (_, copy, _), r in zip(_PLAN[i], rendered, strict=True):
        with open(folder / f"{src.stem}_{copy:03d}.png", "wb") as fh:
            fh.write(r.payload)
    return i, None


def floor(
    raw: Path,
    out: Path,
    workers: int,
    count: int,
    size: int,
    hdf5: bool,
    render: bool = False,
    at_output_size: bool = False,
) -> None:
    """Make ``count`` outputs of ``size`` from every image under ``raw/<class>/``.

    Args:
        raw: The sources, one folder per class.
        out: A folder (made) or, with ``hdf5``, a file.
        workers: Processes to fork.
        count: Outputs in all.
        size: Output side.
        hdf5: Write one HDF5 file instead of PNG files.
        render: Render each output as ``expand`` does (its plan, steps and bytes).
        at_output_size: With ``render``, from the source resized to ``size``
            (not ``expand``'s bytes).
    """
    global _JOB, _PLAN, _AT_OUTPUT_SIZE
    _AT_OUTPUT_SIZE = at_output_size
    sources = sorted(
        (p for p in raw.glob("*/*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: (p.parent.name, p.name),
    )
    outputs: list[list[int]] = [[] for _ in sources]
    for k in range(count):
        outputs[k % len(sources)].append(k)
    if not hdf5:
        for cls in {p.parent.name for p in sources}:
            (out / cls).mkdir(parents=True, exist_ok=True)
    _JOB = (sources, outputs, out, size, hdf5)
    if render:
        plan = make_plan([p.parent.name for p in sources], count, paper_recipe().names)
        _PLAN = [[] for _ in sources]
        for k, job in enumerate(plan):
            _PLAN[job.source].append((k, job.copy, job.transform))
    cv2.setNumThreads(1)
    fh = images = None
    if hdf5:
        import h5py

        fh = h5py.File(out, "w")
        images = fh.create_dataset(
            "images", shape=(count, size, size, 3), dtype=np.uint8, chunks=(1, size, size, 3)
        )
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        if render:
            for _, rows in pool.imap_unordered(_render, range(len(sources))):
                for k, row in rows or ():
                    images[k] = row
        else:
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
    parser.add_argument(
        "--render", action="store_true", help="render each output as expand does (same bytes)"
    )
    parser.add_argument(
        "--at-output-size",
        action="store_true",
        help="with --render: every step at the output size (not expand's bytes)",
    )
    args = parser.parse_args()
    if args.at_output_size and not args.render:
        parser.error("--at-output-size needs --render")
    floor(
        args.raw,
        args.out,
        args.workers,
        args.count,
        args.size,
        args.hdf5,
        args.render,
        args.at_output_size,
    )


if __name__ == "__main__":
    main()
