"""Every setting of a training run, checked without torch.

:class:`TrainConfig` is what ``augtool train`` builds from its options; it is
validated here, before torch is imported, so that an option error costs no
torch start-up. :mod:`model.train` runs it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from augtool import defaults
from augtool.errors import OptionError
from model.archs import check_options, get_info

OPTIMIZERS = defaults.OPTIMIZERS
#: ``TrainConfig.amp``: ``off`` (float32) or ``bf16`` (bfloat16 autocast of the forward pass).
AMP_MODES = defaults.AMP_MODES
SCHEDULES = defaults.SCHEDULES
NORMALIZE_MODES = defaults.NORMALIZE_MODES
AUGMENT_TOKENS = defaults.AUGMENT_TOKENS

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text: str | int) -> int:
    """Bytes from ``--max-memory``: a number with an optional K, M, G or T (powers of 1024).

    Raises:
        OptionError: If the text is not such a size or is not positive.
    """
    if isinstance(text, int):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)I?B?\s*", str(text).upper())
        if not match:
            raise OptionError("max_memory", f"expected a size like 8G or 512M, got {text!r}")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    if value < 1:
        raise OptionError("max_memory", f"must be positive, got {text!r}")
    return int(value)


def parse_augment(text: str) -> frozenset[str]:
    """Parse ``augment``: ``none`` or comma-separated :data:`AUGMENT_TOKENS`.

    Raises:
        OptionError: On an unknown token.
    """
    tokens = frozenset(t.strip() for t in text.split(",") if t.strip()) - {"none"}
    unknown = sorted(tokens - set(AUGMENT_TOKENS))
    if unknown:
        raise OptionError(
            "augment",
            f"unknown {', '.join(unknown)}; use none or a comma-separated list of "
            f"{', '.join(AUGMENT_TOKENS)}",
        )
    return tokens


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
            of :data:`AUGMENT_TOKENS` (``flip``, ``dihedral``, ``gray``,
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
        info = get_info(arch)
        known = {f for f in cls.__dataclass_fields__ if f != "arch"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise OptionError(unknown[0], "not a training setting")
        values = dict(info.training)
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
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for option, value in positive.items():
            if not value > 0:
                raise OptionError(option, f"must be > 0, got {value}")
        if not 0 <= self.momentum < 1:
            raise OptionError("momentum", f"must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise OptionError("weight_decay", f"must be >= 0, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise OptionError("label_smoothing", "must be in [0, 1)")
        if self.warmup_epochs < 0 or (self.warmup_epochs and self.warmup_epochs >= self.epochs):
            raise OptionError("warmup_epochs", "must be >= 0 and below {epochs}", refs=True)
        if self.patience is not None and self.patience < 1:
            raise OptionError("patience", f"must be >= 1, got {self.patience}")
        choices = {
            "optimizer": (self.optimizer, OPTIMIZERS),
            "schedule": (self.schedule, SCHEDULES),
            "normalize": (self.normalize, NORMALIZE_MODES),
            "amp": (self.amp, AMP_MODES),
        }
        for option, (value, allowed) in choices.items():
            if value not in allowed:
                raise OptionError(option, f"{value!r}; choose from {', '.join(allowed)}")
        parse_augment(self.augment)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (JSON, weights-only checkpoints)."""
        return asdict(self)
