"""Training and evaluation loops, and checkpoints that load without unpickling code.

Small functions with explicit arguments: :func:`train_one_epoch`, :func:`evaluate`,
:func:`fit`, :func:`save_checkpoint`, :func:`load_checkpoint`. Randomness (batch
order, flips) comes from a :class:`torch.Generator` passed in; the library never
seeds torch's global generator. On the CPU the same seed gives the same weights.

Device path: the data is a :class:`model.data.DeviceImages` already resident on
the device; the loop keeps the running loss and accuracy as device tensors and
synchronises once per epoch. On CUDA the model is channels_last. Training runs
in float32 everywhere unless ``TrainConfig.amp`` asks for bfloat16 autocast, and
cuDNN's benchmark mode is on only while :func:`fit` runs with
``TrainConfig.cudnn_benchmark`` (the library never sets it process-wide).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtool.errors import InputError, OptionError, OutputError
from augtool.progress import Progress
from augtool.store.publish import staged_file
from model.config import AMP_MODES as AMP_MODES
from model.config import OPTIMIZERS as OPTIMIZERS
from model.config import SCHEDULES as SCHEDULES
from model.config import TrainConfig as TrainConfig
from model.data import DeviceImages, Normalization, parse_augment
from model.networks import create_model

CHECKPOINT_FORMAT = "augtool-model"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainEvent:
    """One step of a training run, as its ``progress`` callback receives it.

    A run emits ``load`` once (its data is about to be read; only
    :func:`model.run.train_run` emits it), then for every epoch one ``batch``
    event per training step and one ``epoch`` event once the epoch (and its
    val scoring) is done, and ``done`` once the run folder is written (again
    :func:`model.run.train_run`). Test data never appears in an event.

    Attributes:
        kind: ``load``, ``batch``, ``epoch`` or ``done``.
        elapsed: Seconds since the run's clock started (see :func:`fit`'s
            ``started``); never decreases from one event to the next.
        epoch: The 1-based epoch (0 for ``load``; the last epoch run for ``done``).
        epochs: Epochs planned.
        batch: Training steps done in this epoch.
        batches: Training steps per epoch.
        row: The epoch's history row (``epoch`` events), else ``None``.
        sums: ``batch`` events: (loss sum, correct count, images seen) of this
            epoch so far, still on the device; read through :meth:`train_so_far`.
    """

    kind: str
    elapsed: float
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    row: dict[str, float] | None = None
    sums: tuple[torch.Tensor, torch.Tensor, int] | None = field(default=None, repr=False)

    def train_so_far(self) -> tuple[float, float] | None:
        """Mean train loss and accuracy over this epoch's steps so far, or ``None``.

        ``batch`` events compute it on demand (one device synchronisation on a
        GPU, so a caller that draws a bar reads it only when it redraws);
        ``epoch`` events give the epoch's figures.
        """
        if self.row is not None:
            return self.row["train_loss"], self.row["train_accuracy"]
        if self.sums is None:
            return None
        loss_sum, correct, seen = self.sums
        return loss_sum.item() / seen, correct.item() / seen


#: A training run's progress callback (see :class:`TrainEvent`).
ProgressCallback = Callable[[TrainEvent], None]


@dataclass
class EpochStats:
    """Mean loss and accuracy over the images of one pass."""

    loss: float
    accuracy: float
    images: int


@dataclass
class Prediction:
    """Outputs of a model over a data set, in data order.

    Attributes:
        probabilities: ``(N, C)`` softmax outputs.
        predicted: ``(N,)`` argmax class indices.
        labels: ``(N,)`` true labels.
        loss: Mean cross-entropy.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    labels: np.ndarray
    loss: float

    @property
    def accuracy(self) -> float:
        """Fraction of correct predictions."""
        return float(np.mean(self.predicted == self.labels)) if len(self.labels) else math.nan


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: One row per epoch: epoch, lr, train loss/accuracy/images/seconds
            (the training pass alone), val loss/accuracy, seconds (all). Test data
            never enters the loop: it is scored once, after training, by the caller.
        best_epoch: Epoch (1-based) whose weights the model holds at the end.
        stopped_early: True when ``patience`` ended the run.
        train_seconds: Wall time of the training loop (evaluation included).
    """

    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    train_seconds: float


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cuda``, ``cuda:N`` or ``cpu``.

    Raises:
        OptionError: If CUDA is asked for and not available, or the name is unknown.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise OptionError("device", f"unknown device {name!r}; use auto, cuda or cpu") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", "CUDA was asked for but torch sees no CUDA GPU")
    if device.type not in ("cuda", "cpu"):
        raise OptionError("device", f"unsupported device {name!r}; use auto, cuda or cpu")
    return device


def prepare_model(net: nn.Module, device: torch.device) -> nn.Module:
    """Move a model to ``device``; on CUDA make it channels_last (cuDNN's fast NHWC kernels)."""
    if device.type == "cuda":
        return net.to(device, memory_format=torch.channels_last)
    return net.to(device)


@contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Set ``torch.backends.cudnn.benchmark`` for the duration of a block, then restore it."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from ``generator`` (the same one on the CPU)."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return torch.Generator(device=device).manual_seed(seed)


def make_optimizer(net: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum and L2, or AdamW, per ``config``."""
    params = [p for p in net.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Learning rate at ``step`` (0-based) of ``total_steps``."""
    if config.schedule == "constant":
        return config.lr
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(total_steps - warmup, 1)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch (at least one: a small split is one batch)."""
    return max(n // batch_size, 1)


def _autocast(device: torch.device, amp: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


def use_amp(config_amp: str | bool | None, device: torch.device) -> bool:
    """Whether to autocast to bfloat16: ``amp`` is ``bf16``.

    Checkpoints written before :data:`AMP_MODES` recorded ``True``, ``False`` or
    ``None`` (which meant bf16 on CUDA); ``True`` still means bf16, ``None`` now
    means float32 like ``off``. ``device`` is accepted for the callers' symmetry;
    the answer is the same on every device.
    """
    del device
    return config_amp is True or config_amp == "bf16"


def train_one_epoch(
    net: nn.Module,
    data: DeviceImages,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    batch_size: int,
    augment: frozenset[str] = frozenset(),
    lr_at: Callable[[int], float] | None = None,
    first_step: int = 0,
    label_smoothing: float = 0.0,
    amp: bool = False,
    on_batch: Callable[[int, int, tuple[torch.Tensor, torch.Tensor, int]], None] | None = None,
) -> EpochStats:
    """One pass over ``data`` in a random order.

    Args:
        net: The model, on ``data.device``, in any mode (set to train here).
        data: The training images.
        optimizer: Steps the model's parameters.
        generator: On ``data.device``; draws the order and the flips.
        batch_size: Images per step; the incomplete last batch is dropped.
        augment: On-the-fly augmentation tokens (see :func:`model.data.parse_augment`).
        lr_at: Learning rate for a global step number; ``None`` keeps it fixed.
        first_step: Global step number of this epoch's first step.
        label_smoothing: Cross-entropy label smoothing.
        amp: bfloat16 autocast of the forward pass.
        on_batch: Called after each step with (steps done, steps per epoch,
            (loss sum, correct count, images seen) so far); the sums stay on
            the device, so the loop never waits for the GPU unless the caller reads them.

    Returns:
        Mean loss and accuracy over the images seen.
    """
    net.train()
    n = len(data)
    size = min(batch_size, n)
    steps = steps_per_epoch(n, size)
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    for step, (x, y) in enumerate(data.train_batches(size, augment, generator)):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(first_step + step)
        with _autocast(data.device, amp):
            logits = net(x)
        loss = nn.functional.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # New tensors, not in-place sums: a caller may keep the sums of an earlier step.
        loss_sum = loss_sum + loss.detach() * size
        correct = correct + (logits.detach().argmax(1) == y).sum()
        if on_batch is not None:
            on_batch(step + 1, steps, (loss_sum, correct, (step + 1) * size))
    seen = steps * size
    return EpochStats(loss=loss_sum.item() / seen, accuracy=correct.item() / seen, images=seen)


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips and transposes of a ``(B, C, S, S)`` batch, the batch itself first."""
    views = []
    for t in (x, x.transpose(2, 3)):
        views += [t, t.flip(3), t.flip(2), t.flip((2, 3))]
    return views


@torch.inference_mode()
def evaluate(
    net: nn.Module,
    data: DeviceImages,
    batch_size: int = 256,
    amp: bool = False,
    tta: bool = False,
    progress: Progress | None = None,
) -> Prediction:
    """Predict every image of ``data`` in order (eval mode, no gradients).

    Args:
        net: The model, on ``data.device``.
        data: Images and labels to score.
        batch_size: Images per forward pass.
        amp: bfloat16 autocast.
        tta: Average the class probabilities over the 8 flips and transposes of
            each image (:func:`dihedral_views`); costs 8 forward passes.
        progress: Told of the ``evaluate`` phase, one step per image; ``None``: silent.

    Returns:
        Probabilities, predictions, labels and mean loss (with ``tta``, the
        cross-entropy of the averaged probabilities).
    """
    net.eval()
    probs, losses = [], []
    if progress is not None:
        progress.start("evaluate", len(data))
    for x, y in data.eval_batches(batch_size):
        views = dihedral_views(x) if tta else [x]
        with _autocast(data.device, amp):
            log_ps = [torch.log_softmax(net(v).float(), dim=1) for v in views]
        # log of the mean probability over the views; one view: the log-softmax itself.
        log_p = torch.stack(log_ps).logsumexp(dim=0) - math.log(len(views))
        losses.append(nn.functional.nll_loss(log_p, y, reduction="sum"))
        probs.append(log_p.exp())
        if progress is not None:
            progress.advance(len(y))
    probabilities = torch.cat(probs).cpu().numpy().astype(np.float64)
    labels = data.labels.cpu().numpy()
    total = torch.stack(losses).sum().item() if losses else math.nan
    return Prediction(
        probabilities=probabilities,
        predicted=probabilities.argmax(axis=1),
        labels=labels,
        loss=total / max(len(data), 1),
    )


def fit(
    net: nn.Module,
    train: DeviceImages,
    config: TrainConfig,
    generator: torch.Generator,
    val: DeviceImages | None = None,
    progress: ProgressCallback | None = None,
    started: float | None = None,
) -> FitResult:
    """Train ``net`` for ``config.epochs``, scoring val after each epoch.

    With a val split the model ends holding the weights of its best epoch on val
    (highest accuracy, ties to the lower loss) and ``config.patience`` can stop the
    run early; without one it ends holding the last epoch's weights. There is no
    test argument: the test set is scored once, after training, by the caller.

    Args:
        net: Model already on ``train.device`` (see :func:`prepare_model`).
        train: Training images.
        config: Validated settings.
        generator: Random source (CPU); a device generator is derived from it.
        val: Validation images, or ``None``.
        progress: Called with a ``batch`` :class:`TrainEvent` after every training
            step and an ``epoch`` event after every epoch.
        started: ``time.perf_counter()`` when the run began (the events' elapsed
            times count from it); ``None``: now.

    Returns:
        The history and the chosen epoch.
    """
    with cudnn_benchmark(config.cudnn_benchmark):
        return _fit(net, train, config, generator, val, progress, started)


def _fit(
    net: nn.Module,
    train: DeviceImages,
    config: TrainConfig,
    generator: torch.Generator,
    val: DeviceImages | None,
    progress: ProgressCallback | None,
    started: float | None,
) -> FitResult:
    device = train.device
    amp = use_amp(config.amp, device)
    gen = device_generator(generator, device)
    optimizer = make_optimizer(net, config)
    per_epoch = steps_per_epoch(len(train), min(config.batch_size, len(train)))
    total = per_epoch * config.epochs

    def lr_at(step: int) -> float:
        return learning_rate(config, step, total, per_epoch)

    history: list[dict[str, float]] = []
    best: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, since_best, stopped = config.epochs, 0, False
    start = time.perf_counter()
    clock = start if started is None else started
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        on_batch = None
        if progress is not None:

            def on_batch(
                done: int, steps: int, sums: tuple[torch.Tensor, torch.Tensor, int], e: int = epoch
            ) -> None:
                elapsed = time.perf_counter() - clock
                progress(TrainEvent("batch", elapsed, e, config.epochs, done, steps, sums=sums))

        stats = train_one_epoch(
            net,
            train,
            optimizer,
            gen,
            config.batch_size,
            augment=parse_augment(config.augment),
            lr_at=lr_at,
            first_step=(epoch - 1) * per_epoch,
            label_smoothing=config.label_smoothing,
            amp=amp,
            on_batch=on_batch,
        )
        row: dict[str, float] = {
            "epoch": epoch,
            "lr": lr_at(epoch * per_epoch - 1),
            "train_loss": stats.loss,
            "train_accuracy": stats.accuracy,
            "train_images": stats.images,
            "train_seconds": time.perf_counter() - t0,
        }
        if val is not None:
            pred = evaluate(net, val, amp=amp)
            row["val_loss"], row["val_accuracy"] = pred.loss, pred.accuracy
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if progress is not None:
            elapsed = time.perf_counter() - clock
            progress(TrainEvent("epoch", elapsed, epoch, config.epochs, per_epoch, per_epoch, row))
        if val is None:
            continue
        score = (row["val_accuracy"], -row["val_loss"])
        if best is None or score > best:
            best, best_epoch, since_best = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            since_best += 1
            if config.patience is not None and since_best >= config.patience:
                stopped = True
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    elif history:
        best_epoch = int(history[-1]["epoch"])
    return FitResult(
        history=history,
        best_epoch=best_epoch,
        stopped_early=stopped,
        train_seconds=time.perf_counter() - start,
    )


@dataclass
class Checkpoint:
    """A trained model with everything needed to use it.

    Attributes:
        net: The network (eval mode, on the device it was loaded to).
        arch: Registered architecture name.
        arch_options: Its options.
        class_names: Output index -> class name.
        input_size: Side of the square input.
        normalization: Input normalisation.
        config: The training settings (plain dict).
        info: Anything else recorded (best epoch, augtool version, ...).
    """

    net: nn.Module
    arch: str
    arch_options: dict[str, Any]
    class_names: list[str]
    input_size: int
    normalization: Normalization
    config: dict[str, Any]
    info: dict[str, Any]


def save_checkpoint(
    path: str | Path,
    net: nn.Module,
    arch: str,
    arch_options: dict[str, Any],
    class_names: list[str],
    input_size: int,
    normalization: Normalization,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint that :func:`load_checkpoint` reads with ``weights_only=True``.

    The file holds only tensors and plain types (str, int, float, bool, None,
    lists, dicts): the state dict on the CPU, the architecture and its options,
    class names, input size, normalisation, training settings and ``info``. It is
    written to a temporary sibling and renamed (:func:`augtool.store.publish.staged_file`),
    so a crash never leaves half a file.

    Raises:
        OutputError: If the file cannot be written.
    """
    from augtool import __version__

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "augtool_version": __version__,
        "arch": arch,
        "arch_options": dict(arch_options),
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "input_size": int(input_size),
        "normalization": normalization.to_dict(),
        "config": dict(config),
        "info": dict(info or {}),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    try:
        with staged_file(path) as partial:
            torch.save(payload, partial)
    except OSError as err:
        raise OutputError(f"{path}: cannot write the checkpoint ({err.strerror})") from err


#: The first bytes of a file written by ``torch.save`` (a zip archive).
_ZIP_MAGIC = b"PK\x03\x04"
#: First bytes of files often given where a model belongs, and what they are.
_FILE_KINDS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"GIF8", "a GIF image"),
    (b"\x89HDF", "an HDF5 file"),
)


def _describe_file(head: bytes) -> str:
    """What a file that is no torch archive is, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, kind in _FILE_KINDS:
        if head.startswith(magic):
            return kind
    return "not a PyTorch zip archive"


def not_a_model(path: str | Path, why: str) -> InputError:
    """The error for a file given as a model that is none; never suggests an unsafe load."""
    return InputError(
        f"{path} is not an augtool model ({why}); a model is the RUN/model.pt that "
        "`augtool train` writes"
    )


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, never unpickling code.

    ``torch.load(..., weights_only=True)`` accepts only tensors and plain
    containers, so a crafted file cannot run code; anything else that is not an
    augtool model (an image given in its place, a pickle, another program's
    weights) is refused with a message that says what the file is and never
    suggests the unsafe ``weights_only=False``.

    Args:
        path: The ``model.pt`` file.
        device: Where to put the network.

    Returns:
        The network in eval mode with its metadata.

    Raises:
        InputError: If the file is missing, not a torch file, or not an augtool model.
    """
    import warnings

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    device = torch.device(device)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    if not head.startswith(_ZIP_MAGIC):  # torch.save's format: what save_checkpoint writes
        raise not_a_model(path, _describe_file(head))
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not the user's concern
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    except Exception as err:
        # torch's safe loader refuses in many ways (UnpicklingError, KeyError, ...). Never
        # pass its message on: it suggests weights_only=False, the unsafe load.
        raise not_a_model(path, "a PyTorch file holding more than tensors and plain data") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise not_a_model(path, f"a PyTorch file without the {CHECKPOINT_FORMAT!r} marker")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: model format version {payload.get('format_version')!r}; this augtool "
            f"reads version {CHECKPOINT_VERSION}"
        )
    try:
        arch = str(payload["arch"])
        options = dict(payload["arch_options"])
        class_names = [str(c) for c in payload["class_names"]]
        input_size = int(payload["input_size"])
        normalization = Normalization.from_dict(payload["normalization"])
        state = payload["state_dict"]
        net = create_model(arch, len(class_names), input_size, **options)
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, OptionError) as err:
        raise InputError(f"{path}: damaged augtool model file ({err})") from err
    net = prepare_model(net, device)
    net.eval()
    return Checkpoint(
        net=net,
        arch=arch,
        arch_options=options,
        class_names=class_names,
        input_size=input_size,
        normalization=normalization,
        config=dict(payload.get("config", {})),
        info=dict(payload.get("info", {})),
    )
