"""The architecture registry's names, options and training defaults, without torch.

What ``augtool train --help`` shows and what the command line checks before it
imports torch: each architecture's one-line summary, its options with their
defaults, and its recommended training settings. :mod:`model.networks` pairs
each entry with its builder and checks, when it is imported, that the options
here are exactly the builder's keyword arguments and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from augtool.errors import OptionError


@dataclass(frozen=True)
class ArchInfo:
    """One registered architecture, torch-free.

    Attributes:
        name: Registry name (``arch``).
        summary: One line for ``--help`` and the docs.
        options: Every option the builder takes, with its default value; the
            default's type is the type a value must have.
        training: Recommended training settings (keys of
            :class:`model.config.TrainConfig`) used where the user gives none.
    """

    name: str
    summary: str
    options: Mapping[str, Any]
    training: Mapping[str, Any]


ARCHS: dict[str, ArchInfo] = {
    "leukemianet": ArchInfo(
        name="leukemianet",
        summary="the paper's network: two conv4x4 blocks (10, 20 filters) and one FC layer",
        options={
            "conv1_filters": 10,
            "conv2_filters": 20,
            "kernel_size": 4,
            "padding": 0,
            "pool1_stride": 2,
            "pool2_stride": 2,
        },
        training={
            "epochs": 30,
            "lr": 0.001,
            "batch_size": 128,
            "optimizer": "sgd",
            "momentum": 0.9,
            "weight_decay": 1e-4,
            "schedule": "constant",
            "augment": "none",
            "normalize": "zerocenter",
        },
    ),
    "cellnet": ArchInfo(
        name="cellnet",
        summary="stronger: patch stem, 4 double-conv blocks, radius channel, global pooling",
        options={
            "stem_width": 32,
            "widths": "32,64,128,256",
            "convs_per_block": 2,
            "stem": "patch",
            "head": "gap",
            "crop": 1.0,
            "coords": True,
        },
        training={
            "epochs": 30,
            "lr": 0.05,
            "batch_size": 64,
            "optimizer": "sgd",
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "schedule": "cosine",
            "augment": "dihedral",
            "normalize": "standardize",
        },
    ),
}


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(ARCHS)


def get_info(name: str) -> ArchInfo:
    """The registry entry of ``name``.

    Raises:
        OptionError: If no architecture has that name (the message lists them).
    """
    try:
        return ARCHS[name]
    except KeyError:
        raise OptionError(
            "arch", f"unknown architecture {name!r}; choose from {', '.join(list_models())}"
        ) from None


def training_default(setting: str) -> str:
    """``0.001 leukemianet, 0.05 cellnet``, or one value when every architecture agrees.

    For help texts: the default of a training setting, per architecture.
    """
    values = {name: ARCHS[name].training[setting] for name in list_models()}
    if len(set(map(repr, values.values()))) == 1:
        return f"{next(iter(values.values()))}"
    return ", ".join(f"{value} {name}" for name, value in values.items())


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate architecture options and fill in the defaults.

    Args:
        name: Registered architecture name.
        options: Option values to override; each must be a known option whose value
            has the default's type. Text is parsed into that type (command-line
            values arrive as text); an int is accepted for a float option.

    Returns:
        Every option of the architecture with its value.

    Raises:
        OptionError: On an unknown architecture, an unknown option or a wrong type.
    """
    info = get_info(name)
    merged = dict(info.options)
    for key, value in options.items():
        if key not in info.options:
            known = ", ".join(sorted(info.options)) or "none"
            raise OptionError(key, f"not an option of {name!r}; its options are {known}")
        merged[key] = _coerce(key, value, type(info.options[key]))
    return merged


def _coerce(key: str, value: Any, want: type) -> Any:
    """``value`` as type ``want``: text (from the command line) is parsed, an int may be a float.

    Raises:
        OptionError: If the value cannot be of that type.
    """
    if isinstance(value, str) and want is bool:
        text = value.strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise OptionError(key, f"expected true or false, got {value!r}")
        return text in ("true", "1", "yes")
    if isinstance(value, str) and want is not str:
        try:
            return want(value)
        except ValueError:
            raise OptionError(key, f"expected {want.__name__}, got {value!r}") from None
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise OptionError(key, f"expected {want.__name__}, got {value!r}")
    return value
