"""Recipe settings of a step: typed, bounded, checked before any work.

A step's settings are a frozen dataclass (``StepType.settings``). A recipe's
keys for the step are checked against its fields and their types
(:func:`build_settings`), and every :func:`bounded` field against its domain,
so a value no step can use is refused with the file, line and key before any
image is read.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import field, fields
from typing import TYPE_CHECKING, Any

from augtool.errors import OptionError

if TYPE_CHECKING:
    from augtool.pipeline.steps import StepType


def bounded(default: Any, low: float, high: float) -> Any:
    """A settings field whose numbers (each, for a tuple) must lie in ``[low, high]``.

    :func:`check_domains` checks it, and with it :func:`build_settings`
    when a recipe is read: a value no transform can use (a negative standard
    deviation, a fraction above 1, a blur wider than any image) is refused with
    the file, line and key before any work, never in a worker.
    """
    return field(default=default, metadata={"domain": (low, high)})


def check_domains(settings: Any, where: str = "") -> None:
    """Check every :func:`bounded` field of a settings dataclass instance.

    Raises:
        OptionError: Naming ``<where>.<field>`` (or the field) and its domain.
    """
    for f in fields(settings):
        if "domain" not in f.metadata:
            continue
        low, high = f.metadata["domain"]
        value = getattr(settings, f.name)
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, int | float) and not isinstance(v, bool) and not low <= v <= high:
                raise OptionError(
                    f"{where}.{f.name}" if where else f.name,
                    f"{v!r} is outside {low:g}..{high:g}, the values it can take",
                )


def build_settings(entry: StepType, values: Mapping[str, Any], where: str) -> Any:
    """Check a recipe's parameters against the entry's settings dataclass and build it.

    Args:
        entry: The transform.
        values: The recipe's keys for it (without ``name``, ``at`` and the like).
        where: Prefix of error messages (file, line, key).

    Returns:
        An instance of ``entry.settings``.

    Raises:
        OptionError: Naming the key for an unknown key or a value of the wrong type.
    """
    known = {f.name: f for f in fields(entry.settings)}
    hints = typing.get_type_hints(entry.settings)
    for key in values:
        if key not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise OptionError(
                f"{where}.{key}", f"unknown parameter of {entry.name!r}; known: {choices}"
            )
    converted = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        settings = entry.settings(**converted)
    except (TypeError, ValueError) as err:
        raise OptionError(where, f"{entry.name}: {err}") from err
    check_domains(settings, where)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name.endswith("_range") and isinstance(value, tuple) and len(value) == 2:
            lo, hi = value
            if lo > hi:
                raise OptionError(f"{where}.{f.name}", f"low bound {lo} is above high bound {hi}")
    return settings


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(where, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise OptionError(where, f"expected a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(where, f"expected a whole number, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionError(where, f"expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise OptionError(where, f"expected text, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise OptionError(where, f"expected a list like [low, high], got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise OptionError(where, f"expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, where) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _convert(value, arg, where)
            except OptionError:
                continue
        raise OptionError(where, f"{value!r} is none of {hint}")
    return value


def settings_dict(settings: Any) -> dict[str, Any]:
    """JSON-friendly form of a settings instance (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(settings, f.name), tuple) else v
        for f in fields(settings)
    }
