"""Time training from a device-resident uint8 HDF5 set against a naive JPEG DataLoader.

Builds, in a temporary folder, a 1,676-image 227x227 HDF5 of generated images
(coloured blobs per class, 70/30 split: 1,173 training images, as in the
reference measurement) and the same training images as JPEG files in
``<class>/`` folders. Then, on the same device, with the same network, batch
size and optimizer:

* library: ``model.train.fit`` over ``DeviceImages`` (the whole uint8 set copied
  to the device once, batches gathered and normalised there), timed after a
  warm-up epoch so CUDA start-up and cuDNN autotuning are not counted;
* naive: a ``torch.utils.data.DataLoader`` over the JPEG files, decoding and
  resizing each sample with OpenCV in ``--workers`` worker processes.

On CUDA both run ``--epochs`` (default 30); on the CPU 1 epoch each (default).
Training is float32 unless ``--amp bf16``; ``--cudnn-benchmark`` lets cuDNN
time its kernels (both ways). ``--images`` and ``--size`` shrink the workload
(for a dry run). Needs no albumentations, tqdm or Pillow. Prints both times,
images/s and the ratio, table last.

Usage:
    python benchmarks/bench_train.py                  # auto device
    python benchmarks/bench_train.py --device cpu --epochs 1
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from augtool.store.dataset import open_dataset  # noqa: E402
from model.data import DeviceImages, Normalization, compute_normalization  # noqa: E402
from model.networks import create_model  # noqa: E402
from model.train import (  # noqa: E402
    TrainConfig,
    fit,
    make_optimizer,
    prepare_model,
    resolve_device,
    use_amp,
)
from tests.h5data import blob_images, write_h5  # noqa: E402

CLASSES = ("ALL", "AML", "normal")
PER_CLASS = (598, 429, 649)  # the paper's 1,676 with --pca
TRAIN_IMAGES = 1173  # 70 %, as in the reference measurement
SIZE = 227


def build_data(
    folder: Path, seed: int, count: int = sum(PER_CLASS), size: int = SIZE
) -> tuple[Path, Path]:
    """Write the HDF5 file and the JPEG folder of its training images (70 % of ``count``)."""
    rng = np.random.default_rng(seed)
    per_class = [round(count * n / sum(PER_CLASS)) for n in PER_CLASS]
    labels = np.repeat(np.arange(3), per_class)
    splits = np.full(len(labels), "test", dtype=object)
    train = TRAIN_IMAGES if count == sum(PER_CLASS) else round(0.7 * len(labels))
    splits[rng.permutation(len(labels))[:train]] = "train"
    images = blob_images(labels, size, rng)
    h5 = write_h5(folder / "bench.h5", images, labels, list(splits), CLASSES)
    jpegs = folder / "jpeg"
    for i in np.flatnonzero(splits == "train"):
        target = jpegs / CLASSES[labels[i]] / f"img{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR))
    return h5, jpegs


class JpegFolder(torch.utils.data.Dataset):
    """The naive way: decode, convert, resize and normalise one file per sample."""

    def __init__(self, root: Path, normalization: Normalization, size: int = SIZE) -> None:
        self.size = size
        self.files = sorted(root.glob("*/*.jpg"))
        self.labels = [CLASSES.index(p.parent.name) for p in self.files]
        self.mean = np.asarray(normalization.mean, dtype=np.float32)
        self.scale = 1.0 / np.asarray(normalization.std, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        bgr = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (self.size, self.size))
        x = (rgb.astype(np.float32) - self.mean) * self.scale
        return torch.from_numpy(x.transpose(2, 0, 1).copy()), self.labels[i]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_library(
    h5: Path, config: TrainConfig, device: torch.device
) -> tuple[float, float, int, float]:
    """(load+upload seconds, training seconds, images trained, last train accuracy)."""
    t0 = time.perf_counter()
    train = open_dataset(h5, "train")
    norm = compute_normalization(train.images, config.normalize)
    data = DeviceImages(train.images, train.labels, norm, device)
    sync(device)
    load = time.perf_counter() - t0
    size = data.size
    gen = torch.Generator().manual_seed(config.seed)
    warm = prepare_model(create_model(config.arch, 3, size, generator=gen), device)
    warm_config = TrainConfig.for_arch(
        config.arch,
        epochs=1,
        batch_size=config.batch_size,
        amp=config.amp,
        cudnn_benchmark=config.cudnn_benchmark,
    )
    fit(warm, data, warm_config, gen)  # CUDA context, cuDNN autotuning, allocator warm-up
    net = prepare_model(create_model(config.arch, 3, size, generator=gen), device)
    sync(device)
    t0 = time.perf_counter()
    result = fit(net, data, config, gen)
    sync(device)
    seconds = time.perf_counter() - t0
    images = sum(int(r["train_images"]) for r in result.history)
    return load, seconds, images, result.history[-1]["train_accuracy"]


def time_naive(
    jpegs: Path,
    config: TrainConfig,
    device: torch.device,
    workers: int,
    norm: Normalization,
    size: int = SIZE,
) -> tuple[float, int, float]:
    """(training seconds, images trained, last train accuracy) with a JPEG DataLoader."""
    dataset = JpegFolder(jpegs, norm, size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),
    )
    gen = torch.Generator().manual_seed(config.seed)
    net = prepare_model(create_model(config.arch, 3, size, generator=gen), device)
    optimizer = make_optimizer(net, config)
    amp = use_amp(config.amp, device)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    sync(device)
    saved_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = config.cudnn_benchmark
    t0 = time.perf_counter()
    images, correct = 0, 0
    for _ in range(config.epochs):
        net.train()
        images, correct = 0, 0
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = net(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(y)
            correct += int((logits.argmax(1) == y).sum())
    sync(device)
    torch.backends.cudnn.benchmark = saved_benchmark
    return time.perf_counter() - t0, images * config.epochs, correct / max(images, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: 30 on CUDA, 1 on CPU")
    parser.add_argument("--arch", default="leukemianet")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (naive way)")
    parser.add_argument("--skip-naive", action="store_true", help="time the library only")
    parser.add_argument("--amp", default="off", help="off (float32) or bf16")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="cuDNN kernel autotuning")
    parser.add_argument("--images", type=int, default=sum(PER_CLASS), help="images in the set")
    parser.add_argument("--size", type=int, default=SIZE, help="image side")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="This DataLoader will create")  # 8 > cores
    device = resolve_device(args.device)
    epochs = args.epochs or (30 if device.type == "cuda" else 1)
    config = TrainConfig.for_arch(
        args.arch,
        epochs=epochs,
        batch_size=args.batch_size,
        amp=args.amp,
        cudnn_benchmark=args.cudnn_benchmark,
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"device: {device} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads; arch {args.arch}, batch {args.batch_size}, "
        f"{epochs} epoch(s), amp {config.amp}, cudnn benchmark {config.cudnn_benchmark}"
    )

    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        t0 = time.perf_counter()
        h5, jpegs = build_data(Path(tmp), seed=0, count=args.images, size=args.size)
        print(
            f"built {args.images:,}-image {args.size}x{args.size} HDF5 + JPEG folder "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        load, lib_s, lib_n, lib_acc = time_library(h5, config, device)
        print(
            f"library: {lib_s:.2f} s for {lib_n} images (load + upload {load:.2f} s), "
            f"last-epoch train accuracy {lib_acc:.3f}"
        )
        rows = [("library (uint8 on device)", lib_s, lib_n)]
        if not args.skip_naive:
            norm = compute_normalization(open_dataset(h5, "train").images, config.normalize)
            naive_s, naive_n, naive_acc = time_naive(
                jpegs, config, device, args.workers, norm, args.size
            )
            print(
                f"naive: {naive_s:.2f} s for {naive_n} images, "
                f"last-epoch train accuracy {naive_acc:.3f}"
            )
            rows.append((f"naive DataLoader, JPEG, {args.workers} workers", naive_s, naive_n))

    print()
    print("| way | epochs | seconds | images/s |")
    print("|---|---|---|---|")
    for way, seconds, n in rows:
        print(f"| {way} | {epochs} | {seconds:.2f} | {n / seconds:.0f} |")
    if len(rows) == 2:
        print(f"\nratio naive / library: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
