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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augtool.errors import InputError, OptionError, OutputError
from augtool.publish import staged_file
from model.data import NORMALIZE_MODES, DeviceImages, Normalization, parse_augment
from model.networks import check_options, create_model, get_spec

CHECKPOINT_FORMAT = "augtool-model"
CHECKPOINT_VERSION = 1
OPTIMIZERS = ("sgd", "adamw")
#: ``TrainConfig.amp``: ``off`` (float32) or ``bf16`` (bfloat16 autocast of the forward pass).
AMP_MODES = ("off", "bf16")
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Everything that determines a training run.

    Attributes:
        arch: Registered architecture name.
        arch_options: Architecture options (checked against the registry).
        epochs: Passes over the training split.
        lr: Peak learning rate.
        batch_size: Images per step. The last incomplete batch of each epoch is
            dropped (MATLAB does the same); a split smaller than one batch is used
            whole.
        optimizer: ``sgd`` (with momentum) or ``adamw``.
        momentum: SGD momentum (ignored by AdamW).
        weight_decay: L2 penalty (SGD) or decoupled weight decay (AdamW).
        schedule: ``constant`` or ``cosine`` (per step, to zero at the end).
        warmup_epochs: Linear warm-up from 0 over this many epochs (cosine only).
        augment: On-the-fly batch augmentation: ``none`` or comma-separated tokens
            of :data:`model.data.AUGMENT_TOKENS` (``flip``, ``dihedral``, ``gray``,
            ``jitter``).
        normalize: ``zerocenter`` or ``standardize`` (statistics of the train split).
        label_smoothing: Cross-entropy label smoothing.
        patience: Stop after this many epochs without a better validation
            accuracy (needs a val split); ``None`` never stops early.
        seed: Seeds the generator for weights, batch order and flips.
        amp: ``off`` (float32, the default on every device) or ``bf16``
            (bfloat16 autocast of the forward pass; the loss stays float32).
        cudnn_benchmark: Let cuDNN time its convolution algorithms on the first
            batches and keep the fastest while :func:`fit` runs (CUDA only;
            faster, but the choice can differ from run to run, so CUDA runs are
            not reproducible bit for bit). Off by default.
    """

    arch: str = "leukemianet"
    arch_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    lr: float = 0.001
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "constant"
    warmup_epochs: int = 0
    augment: str = "none"
    normalize: str = "zerocenter"
    label_smoothing: float = 0.0
    patience: int | None = None
    seed: int = 0
    amp: str = "off"
    cudnn_benchmark: bool = False

    @classmethod
    def for_arch(cls, arch: str, **overrides: Any) -> TrainConfig:
        """The architecture's recommended settings, with ``overrides`` that are not None.

        Raises:
            OptionError: On an unknown architecture or setting, or an invalid value.
        """
        spec = get_spec(arch)
        known = {f for f in cls.__dataclass_fields__ if f != "arch"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise OptionError(unknown[0], "not a training setting")
        values = dict(spec.training)
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(arch=arch, **values)
        config.validate()
        return config

    def validate(self) -> None:
        """Check every value; errors name the command-line option.

        Raises:
            OptionError: On the first invalid value.
        """
        self.arch_options = check_options(self.arch, self.arch_options)
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size, "--lr": self.lr}
        for option, value in positive.items():
            if not value > 0:
                raise OptionError(option, f"must be > 0, got {value}")
        if not 0 <= self.momentum < 1:
            raise OptionError("--momentum", f"must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise OptionError("--weight-decay", f"must be >= 0, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise OptionError("--label-smoothing", "must be in [0, 1)")
        if self.warmup_epochs < 0 or (self.warmup_epochs and self.warmup_epochs >= self.epochs):
            raise OptionError("--warmup-epochs", "must be >= 0 and below --epochs")
        if self.patience is not None and self.patience < 1:
            raise OptionError("--patience", f"must be >= 1, got {self.patience}")
        choices = {
            "--optimizer": (self.optimizer, OPTIMIZERS),
            "--schedule": (self.schedule, SCHEDULES),
            "--normalize": (self.normalize, NORMALIZE_MODES),
            "--amp": (self.amp, AMP_MODES),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                raise OptionError(option, f"{value!r}; choose from {', '.join(allowed)}")
        parse_augment(self.augment)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON, weights-only checkpoints)."""
        return asdict(self)


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
        raise OptionError("--device", f"unknown device {name!r}; use auto, cuda or cpu") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device", "CUDA was asked for but torch sees no CUDA GPU")
    if device.type not in ("cuda", "cpu"):
        raise OptionError("--device", f"unsupported device {name!r}; use auto, cuda or cpu")
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
        loss_sum += loss.detach() * size
        correct += (logits.detach().argmax(1) == y).sum()
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
) -> Prediction:
    """Predict every image of ``data`` in order (eval mode, no gradients).

    Args:
        net: The model, on ``data.device``.
        data: Images and labels to score.
        batch_size: Images per forward pass.
        amp: bfloat16 autocast.
        tta: Average the class probabilities over the 8 flips and transposes of
            each image (:func:`dihedral_views`); costs 8 forward passes.

    Returns:
        Probabilities, predictions, labels and mean loss (with ``tta``, the
        cross-entropy of the averaged probabilities).
    """
    net.eval()
    probs, losses = [], []
    for x, y in data.eval_batches(batch_size):
        views = dihedral_views(x) if tta else [x]
        with _autocast(data.device, amp):
            log_ps = [torch.log_softmax(net(v).float(), dim=1) for v in views]
        # log of the mean probability over the views; one view: the log-softmax itself.
        log_p = torch.stack(log_ps).logsumexp(dim=0) - math.log(len(views))
        losses.append(nn.functional.nll_loss(log_p, y, reduction="sum"))
        probs.append(log_p.exp())
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
    progress: Callable[[dict[str, float]], None] | None = None,
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
        progress: Called with each epoch's history row.

    Returns:
        The history and the chosen epoch.
    """
    with cudnn_benchmark(config.cudnn_benchmark):
        return _fit(net, train, config, generator, val, progress)


def _fit(
    net: nn.Module,
    train: DeviceImages,
    config: TrainConfig,
    generator: torch.Generator,
    val: DeviceImages | None,
    progress: Callable[[dict[str, float]], None] | None,
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
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
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
            progress(row)
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
    written to a temporary sibling and renamed (:func:`augtool.publish.staged_file`),
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


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, never unpickling code.

    ``torch.load(..., weights_only=True)`` accepts only tensors and plain
    containers, so a crafted file cannot run code; anything else that is not an
    augtool model is refused with a clear message.

    Args:
        path: The ``model.pt`` file.
        device: Where to put the network.

    Returns:
        The network in eval mode with its metadata.

    Raises:
        InputError: If the file is missing, not a torch file, or not an augtool model.
    """
    import pickle
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    device = torch.device(device)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{path}: not an augtool model file (torch cannot load it safely: {first})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an augtool model file (no {CHECKPOINT_FORMAT!r} marker)")
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
