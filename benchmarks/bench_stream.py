"""Train one epoch over an HDF5 set larger than the memory budget, streamed from disk.

Generates (once, reused afterwards) an augtool-format HDF5 file of ``--count``
227x227 images (default 100,000: about 15 GB) under ``--folder`` (default
``/tmp/augtool-bench-stream``), one image per HDF5 chunk as ``augtool expand``
writes them: blob images of 3 classes (:func:`tests.h5data.blob_images`, 600 of
them, each row a rolled copy of one). Then, in this process:

* streamed: ``model.run.train_run`` on the big file with ``--max-memory``
  (default 512 MiB), so the set is streamed (contiguous blocks read by a
  background thread, double-buffered to the device); one epoch;
* resident: the same network and settings on a ``--resident-count`` image set
  (default 1,676) that fits, loaded whole.

With ``--data-only`` no network is trained: each way serves one epoch of
training batches (read, shuffle, ``--augment`` (default none, LeukemiaNet's),
normalisation: everything the loop gets) and the time is the data path's
alone. The normalisation pass over the train split (a full read of the file)
is timed separately.

Peak RSS is the process's own, sampled every 20 ms (``tests.workloads.PeakMemory``).
Prints images/s of both and the peak RSS of each phase, table last.

Usage:
    nice -n 10 python benchmarks/bench_stream.py                 # 100,000 images
    nice -n 10 python benchmarks/bench_stream.py --data-only     # the data path alone
    python benchmarks/bench_stream.py --count 3000 --folder /tmp/s   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.h5data import blob_images  # noqa: E402

CLASSES = ("ALL", "AML", "normal")
SIZE = 227
BASE = 600  # distinct generated images; each row is a rolled copy of one
BLOCK = 1000  # rows generated and written at a time


def generate(path: Path, count: int, size: int = SIZE, seed: int = 0) -> Path:
    """Write an augtool-format HDF5 of ``count`` images (all in split ``train``), once.

    A finished file is marked by ``<path>.complete``; a file without it is rebuilt.

    Args:
        path: The HDF5 file.
        count: Number of images.
        size: Side length.
        seed: Seeds the base images, labels and rolls.

    Returns:
        ``path``.
    """
    done = path.with_name(path.name + ".complete")
    if done.exists() and done.read_text().strip() == f"{count} {size} {seed}":
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base_labels = np.arange(BASE) % len(CLASSES)
    base = blob_images(base_labels, size, rng)
    pick = rng.integers(0, BASE, count)
    shifts = rng.integers(-size // 8, size // 8 + 1, (count, 2))
    labels = base_labels[pick]
    sha = np.empty(count, dtype="S64")
    text = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as fh:
        images = fh.create_dataset(
            "images", shape=(count, size, size, 3), dtype=np.uint8, chunks=(1, size, size, 3)
        )
        for start in range(0, count, BLOCK):
            stop = min(start + BLOCK, count)
            block = np.empty((stop - start, size, size, 3), dtype=np.uint8)
            for j, i in enumerate(range(start, stop)):
                block[j] = np.roll(base[pick[i]], tuple(shifts[i]), axis=(0, 1))
                sha[i] = hashlib.sha256(block[j]).hexdigest().encode("ascii")
            images[start:stop] = block
        names = [f"train/{CLASSES[labels[i]]}/img{i:06d}__00_original.png" for i in range(count)]
        sources = [f"{CLASSES[labels[i]]}/img{i:06d}.png" for i in range(count)]
        fh.create_dataset("labels", data=labels.astype(np.int16))
        fh.create_dataset("split", data=np.zeros(count, dtype=np.uint8)).attrs["names"] = ["train"]
        fh.create_dataset("source_index", data=np.arange(count, dtype=np.int32))
        fh.create_dataset("copy", data=np.zeros(count, dtype=np.int16))
        fh.create_dataset("transform", data=["original"] * count, dtype=text)
        fh.create_dataset("params", data=["{}"] * count, dtype=text)
        fh.create_dataset("name", data=names, dtype=text)
        fh.create_dataset("sha256", data=sha)
        fh.create_dataset("sources/path", data=sources, dtype=text)
        fh.create_dataset("sources/sha256", data=sha)
        fh.create_dataset("sources/label", data=labels.astype(np.int16))
        fh.create_dataset("sources/group", data=sources, dtype=text)
        fh.create_dataset("sources/split", data=np.zeros(count, dtype=np.uint8))
        fh.attrs["schema_version"] = 1
        fh.attrs["class_names"] = list(CLASSES)
        fh.attrs["seed"] = seed
        fh.attrs["size"] = size
        fh.attrs["tool_version"] = "bench_stream"
        fh.attrs["command_line"] = "benchmarks/bench_stream.py"
        fh.attrs["created_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fh.attrs["recipe"] = json.dumps({"size": size, "seed": seed})
    done.write_text(f"{count} {size} {seed}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="images in the big file")
    parser.add_argument("--folder", default="/tmp/augtool-bench-stream", help="where it goes")
    parser.add_argument("--generate-only", action="store_true", help="write the file and stop")
    parser.add_argument("--max-memory", default="512M", help="budget that forces streaming")
    parser.add_argument("--resident-count", type=int, default=1676, help="images, resident run")
    parser.add_argument("--arch", default="leukemianet")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="auto, cuda or cpu")
    parser.add_argument("--data-only", action="store_true", help="time batches, train nothing")
    parser.add_argument("--augment", default="none", help="on-the-fly augmentation (data only)")
    args = parser.parse_args()

    folder = Path(args.folder)
    t0 = time.perf_counter()
    big = generate(folder / f"stream-{args.count}.h5", args.count)
    print(
        f"data: {big} ({big.stat().st_size / 2**30:.1f} GiB, {args.count} images), "
        f"ready in {time.perf_counter() - t0:.0f} s"
    )
    if args.generate_only:
        return
    if args.data_only:
        run_data_only(args, big, folder)
    else:
        run_benchmark(args, big, folder)


def run_data_only(args: argparse.Namespace, big: Path, folder: Path) -> None:
    """Serve one epoch of training batches each way, no network; print the table."""
    import torch

    from augtool.store.dataset import open_dataset
    from model.data import DeviceImages, compute_normalization, parse_augment
    from model.stream import StreamImages, open_lazy, parse_memory
    from tests.workloads import PeakMemory, machine

    print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    small = generate(folder / f"stream-{args.resident_count}.h5", args.resident_count)
    device = torch.device(args.device)
    augment = parse_augment(args.augment)
    rows = []
    for way, path in (("streamed", big), ("resident", small)):
        with PeakMemory() as peak:
            t0 = time.perf_counter()
            if way == "streamed":
                data = open_lazy(path).subset("train")
                norm = compute_normalization(data.images, "zerocenter", chunk=64)
                t_norm = time.perf_counter() - t0
                source = StreamImages(
                    data.images, data.labels, norm, device, parse_memory(args.max_memory)
                )
            else:
                data = open_dataset(path, "train")
                norm = compute_normalization(data.images, "zerocenter")
                t_norm = time.perf_counter() - t0
                source = DeviceImages(data.images, data.labels, norm, device)
            gen = torch.Generator(device=device).manual_seed(0)
            t0 = time.perf_counter()
            n = 0
            for _x, y in source.train_batches(args.batch_size, augment, gen):
                n += len(y)
                if n % (100 * args.batch_size) == 0:
                    print(
                        f"  {way}: {n} images, {n / (time.perf_counter() - t0):.0f} images/s, "
                        f"peak RSS so far {peak.peak / 2**20:.0f} MiB",
                        flush=True,
                    )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
        rows.append((way, n, seconds, peak.peak, t_norm))
        print(
            f"{way}: {n} images in {seconds:.1f} s after {t_norm:.1f} s of loading and "
            f"statistics, peak RSS {peak.peak / 2**20:.0f} MiB"
        )
        del source, data
    print(
        f"\n{platform.node()}, {time.strftime('%Y-%m-%d')}, data path only, {device}, "
        f"augment {args.augment}, batch {args.batch_size}, --max-memory {args.max_memory}"
    )
    print("| way | images | load + statistics s | epoch s | images/s | peak RSS |")
    print("|---|---|---|---|---|---|")
    for way, n, seconds, rss, t_norm in rows:
        rate = n / seconds
        print(
            f"| {way} | {n:,} | {t_norm:.1f} | {seconds:.1f} | {rate:.0f} | {rss / 2**20:.0f} MiB |"
        )


def run_benchmark(args: argparse.Namespace, big: Path, folder: Path) -> None:
    """Time the streamed epoch and the resident epoch, print the table."""
    import torch

    from model.run import train_run
    from model.train import TrainConfig
    from tests.workloads import PeakMemory, machine

    print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    small = generate(folder / f"stream-{args.resident_count}.h5", args.resident_count)
    rows = []
    for way, data, budget in (
        ("streamed", big, args.max_memory),
        ("resident", small, None),
    ):
        config = TrainConfig.for_arch(args.arch, epochs=1, batch_size=args.batch_size)
        out = Path(tempfile.mkdtemp(prefix="bench_stream_run_"))
        try:
            with PeakMemory() as peak:
                result = train_run(
                    data, out / "run", config, args.device, max_memory=budget, overwrite=True
                )
            row = result.fit.history[0]
            rows.append(
                (
                    way,
                    int(row["train_images"]),
                    row["train_seconds"],
                    peak.peak,
                    result.metrics["data_path"],
                )
            )
            print(
                f"{way}: {int(row['train_images'])} images in {row['train_seconds']:.1f} s, "
                f"peak RSS {peak.peak / 2**20:.0f} MiB ({result.metrics['data_path']})"
            )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    print(f"\n{platform.node()}, {time.strftime('%Y-%m-%d')}")
    print("| way | images | seconds | images/s | peak RSS |")
    print("|---|---|---|---|---|")
    for way, n, seconds, rss, how in rows:
        rate = n / seconds
        print(f"| {way} ({how}) | {n:,} | {seconds:.1f} | {rate:.0f} | {rss / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
