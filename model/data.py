"""Datasets for training and evaluation, kept as uint8 tensors on the device.

The whole uint8 set is copied to the device once (227x227x3 bytes per image:
1,676 images are 260 MB). A batch is gathered there by index, optionally
flipped, converted to float and normalised, all as whole-batch tensor
operations: there is no per-sample Python work and no host-to-device copy in
the training loop. On CUDA the batch comes out channels_last, which is the
layout the stored NHWC bytes already have.

Inputs are an ``augtool expand`` output (HDF5 or folder, read with
:func:`augtool.store.dataset.open_dataset`) or, for evaluation, a plain ``RAW/<class>/``
image folder preprocessed exactly as ``expand`` makes its original copies,
read by a function the caller passes in (``augtool evaluate`` passes
:func:`augtool.load_image_folder`: checking a raw folder is the engine's work,
and ``model/`` imports only ``augtool.store``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augtool import defaults
from augtool.errors import InputError, OptionError, literal
from augtool.progress import Progress
from augtool.store.dataset import RAW_FOLDER_SOURCE, Dataset, open_dataset
from augtool.store.schema import MANIFEST_NAME
from model.config import parse_augment as parse_augment

#: Normalisation modes: ``zerocenter`` subtracts the per-channel mean of the
#: training images (pixel values stay on the 0..255 scale, like MATLAB's
#: ``imageInputLayer`` with ``'zerocenter'``); ``standardize`` also divides by
#: the per-channel standard deviation.
NORMALIZE_MODES = defaults.NORMALIZE_MODES
#: On-the-fly augmentation of training batches, combined with commas (e.g.
#: ``dihedral,gray``); ``none`` for nothing. ``flip``: a left-right and a
#: top-bottom flip, each with probability 1/2. ``dihedral``: those and a transpose
#: (all 8 symmetries of the square). ``gray``: with probability 1/4 the image is
#: replaced by its luminance (the ``gray`` transform's weights). ``jitter``: each
#: channel is scaled by U(0.9, 1.1) and shifted by U(-12, 12) levels, per image.
AUGMENT_TOKENS = defaults.AUGMENT_TOKENS
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
GRAY_PROBABILITY = 0.25
JITTER_GAIN = 0.1
JITTER_SHIFT = 12.0
#: ``Dataset.attrs["source"]`` of data read from a raw image folder.
RAW_SOURCE = RAW_FOLDER_SOURCE
#: Reads a raw ``RAW/<class>/`` folder at a size: ``(path, size, progress) -> Dataset``.
FolderReader = Callable[[Path, int, Progress | None], Dataset]


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine normalisation ``(x - mean) / std`` on the 0..255 scale.

    Attributes:
        mean: Mean of R, G, B over the training images.
        std: Divisor of R, G, B (1.0 each for ``zerocenter``).
        mode: How the statistics were chosen (one of :data:`NORMALIZE_MODES`).
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mode: str = "zerocenter"

    def to_dict(self) -> dict[str, object]:
        """Plain types only, for JSON and for weights-only checkpoints."""
        return {"mean": list(self.mean), "std": list(self.std), "mode": self.mode}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: If a field is missing or malformed.
        """
        try:
            mean = tuple(float(v) for v in data["mean"])
            std = tuple(float(v) for v in data["std"])
            mode = str(data.get("mode", "zerocenter"))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"malformed normalization record ({err})") from err
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError("malformed normalization record (need 3 means, 3 positive stds)")
        return cls(mean=mean, std=std, mode=mode)  # type: ignore[arg-type]


def compute_normalization(
    images: np.ndarray, mode: str = "zerocenter", chunk: int = 256
) -> Normalization:
    """Per-channel statistics of ``(N, S, S, 3)`` uint8 images, exact in float64.

    Args:
        images: The training images only (statistics of other splits would leak).
        mode: One of :data:`NORMALIZE_MODES`.
        chunk: Images read at a time (bounds the memory used).

    Raises:
        OptionError: On an unknown mode.
        InputError: If there are no images.
    """
    if mode not in NORMALIZE_MODES:
        raise OptionError("normalize", f"expected one of {', '.join(NORMALIZE_MODES)}")
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise InputError(f"need (N, S, S, 3) images with N >= 1, got shape {images.shape}")
    # Per-channel histograms of the 256 levels: exact integer counts, no float
    # temporaries, and the same sums as adding the values in float64.
    hist = np.zeros((3, 256), dtype=np.int64)
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start : start + chunk]).reshape(-1, 3)
        for c in range(3):
            hist[c] += np.bincount(block[:, c], minlength=256)
    levels = np.arange(256, dtype=np.float64)
    total = hist.astype(np.float64) @ levels
    total_sq = hist.astype(np.float64) @ np.square(levels)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    if mode == "zerocenter":
        std = np.ones(3)
    else:
        std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
        std = np.where(std > 1e-6, std, 1.0)
    return Normalization(
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        mode=mode,
    )


class DeviceImages:
    """A labelled uint8 image set resident on one device, served as normalised batches.

    Args:
        images: ``(N, S, S, 3)`` uint8 RGB (square images).
        labels: ``(N,)`` integer labels.
        normalization: Applied to every batch.
        device: Where the images live and the batches are made.
        channels_last: Return batches in channels_last memory format (default: on
            CUDA only, where cuDNN's NHWC kernels are the fast ones).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        normalization: Normalization,
        device: torch.device,
        channels_last: bool | None = None,
    ) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
            raise InputError(f"need (N, S, S, 3) square RGB images, got shape {images.shape}")
        if images.dtype != np.uint8:
            raise InputError(f"need uint8 images, got {images.dtype}")
        if len(labels) != len(images):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        self.device = device
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        self.normalization = normalization
        host = torch.from_numpy(np.ascontiguousarray(images))
        if device.type == "cuda":
            host = host.pin_memory()
        self.images = host.to(device, non_blocking=True)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(
            device, non_blocking=True
        )
        self.maker = BatchMaker(normalization, device, self.channels_last)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """Side length S of the images."""
        return int(self.images.shape[1])

    def batch(
        self,
        index: torch.Tensor,
        augment: frozenset[str] = frozenset(),
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather, augment and normalise a batch on the device.

        Args:
            index: ``(B,)`` int64 indices, on this set's device.
            augment: Tokens of :data:`AUGMENT_TOKENS` (see :func:`parse_augment`).
            generator: Draws the augmentation; must live on this set's device.
                Required when ``augment`` is not empty.

        Returns:
            ``(x, y)``: float32 ``(B, 3, S, S)`` normalised images (channels_last
            on CUDA) and int64 ``(B,)`` labels.
        """
        x = self.images.index_select(0, index)
        return self.maker(x, augment, generator), self.labels.index_select(0, index)

    def train_batches(
        self,
        batch_size: int,
        augment: frozenset[str],
        generator: torch.Generator,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches in a random order.

        The order is one :func:`torch.randperm` of the whole set drawn from
        ``generator``; the last incomplete batch is dropped (a set smaller than
        one batch is one batch).

        Args:
            batch_size: Images per batch.
            augment: Tokens of :data:`AUGMENT_TOKENS`.
            generator: On this set's device; draws the order and the augmentation.

        Yields:
            ``(x, y)`` as :meth:`batch` returns them.
        """
        n = len(self)
        size = min(batch_size, n)
        order = torch.randperm(n, generator=generator, device=self.device)
        for step in range(max(n // size, 1)):
            yield self.batch(order[step * size : (step + 1) * size], augment, generator)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every image once, in order, without augmentation, ``batch_size`` at a time."""
        for start in range(0, len(self), batch_size):
            index = torch.arange(start, min(start + batch_size, len(self)), device=self.device)
            yield self.batch(index)


class BatchMaker:
    """Turns gathered uint8 NHWC images into normalised float batches on one device.

    Every constant (mean, scale, gray weights) is built here once, on the device,
    so making a batch creates no host tensor and copies nothing from the host.

    Args:
        normalization: Applied to every batch.
        device: Where the batches are made.
        channels_last: Return batches in channels_last memory format, else
            contiguous NCHW.
    """

    def __init__(
        self, normalization: Normalization, device: torch.device, channels_last: bool
    ) -> None:
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(normalization.mean, dtype=torch.float32, device=device).view(
            1, 3, 1, 1
        )
        self.scale = 1.0 / torch.tensor(normalization.std, dtype=torch.float32, device=device).view(
            1, 3, 1, 1
        )
        self.gray_weights = gray_weights(device)

    def __call__(
        self,
        x: torch.Tensor,
        augment: frozenset[str] = frozenset(),
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Augment and normalise a ``(B, S, S, 3)`` uint8 batch.

        Args:
            x: The gathered images, on the device.
            augment: Tokens of :data:`AUGMENT_TOKENS`.
            generator: Draws the augmentation (required when ``augment`` is not empty).

        Returns:
            float32 ``(B, 3, S, S)`` in this maker's memory format, whatever the
            augmentation did to the strides (a transpose of some images of the
            batch leaves ``torch.where`` free to choose another layout).
        """
        if augment and generator is None:
            raise ValueError("augmentation needs a generator")
        if "flip" in augment or "dihedral" in augment:
            x = random_flips(x, generator, transpose="dihedral" in augment)
        x = x.permute(0, 3, 1, 2).contiguous(memory_format=self.memory_format).float()
        if "gray" in augment:
            x = random_gray(x, generator, self.gray_weights)
        if "jitter" in augment:
            x = random_jitter(x, generator)
        x = x.sub_(self.mean).mul_(self.scale)  # x is this call's own float tensor
        return x.contiguous(memory_format=self.memory_format)


def gray_weights(device: torch.device) -> torch.Tensor:
    """The ``gray`` luminance weights as a ``(1, 3, 1, 1)`` float32 tensor on ``device``."""
    return torch.tensor(GRAY_WEIGHTS, dtype=torch.float32, device=device).view(1, 3, 1, 1)


def random_gray(
    x: torch.Tensor, generator: torch.Generator, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Replace each ``(B, 3, H, W)`` float image by its luminance with probability 1/4.

    Args:
        x: Float images.
        generator: Draws which images turn gray, on ``x``'s device.
        weights: :func:`gray_weights` on ``x``'s device; pass it in a loop, or
            it is built (a host-to-device copy) on every call.
    """
    if weights is None:
        weights = gray_weights(x.device)
    gray = (x * weights).sum(dim=1, keepdim=True).expand_as(x)
    pick = torch.rand(x.shape[0], generator=generator, device=x.device) < GRAY_PROBABILITY
    return torch.where(pick.view(-1, 1, 1, 1), gray, x)


def random_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image and channel: scale by U(0.9, 1.1), shift by U(-12, 12) levels, clip to 0..255."""
    draws = torch.rand((2, x.shape[0], 3, 1, 1), generator=generator, device=x.device)
    gain = 1.0 + JITTER_GAIN * (2 * draws[0] - 1)
    shift = JITTER_SHIFT * (2 * draws[1] - 1)
    return (x * gain + shift).clamp_(0.0, 255.0)


def random_flips(x: torch.Tensor, generator: torch.Generator, transpose: bool) -> torch.Tensor:
    """Flip each image of a ``(B, S, S, C)`` batch independently, on its device.

    Each image is flipped left-right and top-bottom with probability 1/2 each and,
    with ``transpose``, transposed with probability 1/2 (together: a uniform draw
    from the 8 symmetries of the square). Three masked selects over the batch.

    Args:
        x: Channels-last images (any dtype).
        generator: Random source on ``x``'s device.
        transpose: Also draw transposes (needs square images).

    Returns:
        A new tensor of the same shape.
    """
    draws = torch.rand((3, x.shape[0]), generator=generator, device=x.device) < 0.5
    view = (-1, 1, 1, 1)
    x = torch.where(draws[0].view(view), x.flip(2), x)
    x = torch.where(draws[1].view(view), x.flip(1), x)
    if transpose:
        x = torch.where(draws[2].view(view), x.transpose(1, 2), x)
    return x


def is_raw_folder(path: Path) -> bool:
    """True for a folder that is not an expand output (it has no manifest)."""
    return path.is_dir() and not (path / MANIFEST_NAME).is_file()


def check_classification(data: Dataset, path: str | Path, min_classes: int = 2) -> None:
    """Refuse data a classifier cannot learn from (or, with ``min_classes=1``, be scored on).

    Raises:
        InputError: For a detection or segmentation output (whole smears with
            boxes or masks, one class ``images``), images that are not square, or
            data of fewer than ``min_classes`` classes.
    """
    if isinstance(data.attrs.get("annotations"), dict):
        raise InputError(
            f"{literal(path)}: a detection or segmentation output ({{expand.annotations}}): whole "
            "images with boxes or masks, not classes; cut a cell set out of them with augtool "
            "cells and expand that",
            refs=True,
        )
    height, width = int(data.images.shape[1]), int(data.images.shape[2])
    if height != width:
        raise InputError(
            f"{literal(path)}: images are {width:d}x{height:d}, and a classifier takes square "
            "images; make it again with {expand.size} and one side",
            refs=True,
        )
    if len(data.class_names) < min_classes:
        shown = ", ".join(data.class_names) or "none"
        raise InputError(
            f"{literal(path)}: classes: {literal(shown)}; a classifier needs images of at "
            "least 2 classes"
        )


def load_for_evaluation(
    path: str | Path,
    split: str | None,
    size: int,
    progress: Progress | None = None,
    read_folder: FolderReader | None = None,
) -> Dataset:
    """Load evaluation data: an expand output's split, or a raw image folder.

    Args:
        path: HDF5 file, expand output folder, or ``RAW/<class>/`` folder.
        split: Split of an expand output to use; ignored for a raw folder
            (every image is used). ``None`` uses every split.
        size: The model's input size; an expand output must have been made at it.
        progress: Told of the ``load`` phase of a raw folder (one step per image).
        read_folder: Reads a raw folder (the caller's choice:
            :func:`augtool.load_image_folder` checks and decodes it as ``expand``
            does, a layer ``model/`` does not import); ``None`` refuses raw folders.

    Raises:
        InputError: If the data cannot be read or its image size differs, or it
            is a raw folder and ``read_folder`` is ``None``.
    """
    path = Path(path)
    if is_raw_folder(path):
        if read_folder is None:
            raise InputError(
                f"{literal(path)}: a folder without {MANIFEST_NAME}, so not an expand output; "
                "give the HDF5 file or folder that augtool expand wrote"
            )
        return read_folder(path, size, progress)
    data = open_dataset(path) if split is None else _open_split(path, split)
    check_classification(data, path, min_classes=1)
    if data.images.shape[1] != size:
        raise InputError(
            f"{literal(path)}: images are {data.images.shape[2]:d}x{data.images.shape[1]:d} but "
            f"the model takes {size:d}x{size:d}; make it again with {{expand.size}} {size:d}",
            refs=True,
        )
    return data


def _open_split(path: Path, split: str) -> Dataset:
    data = open_dataset(path)
    return data.subset(split)


def _with_near_match(name: str, known: list[str]) -> str:
    """``name``, with "(did you mean X?)" when a known name differs only a little (case, a typo).

    Class names are compared exactly: a near match is a suggestion, never a mapping.
    """
    import difflib

    same_case = [k for k in known if k.casefold() == name.casefold()]
    close = same_case or difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f"{name} (did you mean {close[0]}?)" if close else name


def align_labels(data: Dataset, model_classes: list[str]) -> np.ndarray:
    """Map a dataset's labels onto a model's class indices, by class name.

    Args:
        data: Evaluation data.
        model_classes: The model's class names, index = output.

    Returns:
        ``(N,)`` int64 labels in the model's numbering.

    Raises:
        InputError: If the data has a class the model does not know.
    """
    unknown = [c for c in data.class_names if c not in model_classes]
    if unknown:
        named = ", ".join(_with_near_match(c, model_classes) for c in unknown)
        raise InputError(
            f"the data has class(es) {named} that the model does not know; "
            f"the model's classes are {', '.join(model_classes)}"
        )
    mapping = np.array([model_classes.index(c) for c in data.class_names], dtype=np.int64)
    return mapping[data.labels]
