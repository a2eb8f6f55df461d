"""One open table of transforms: the paper's built-ins, the curator set, and plug-ins.

An entry (:class:`TransformEntry`) is what a recipe names. It has

* ``settings``: a frozen dataclass type, the recipe's typed parameters of the
  transform (ranges, counts), with defaults; a recipe's keys are checked
  against its fields and types before any work;
* ``sample(rng, settings) -> params``: draws one output's parameters from an
  explicit ``numpy.random.Generator``; ``params`` is JSON-able (recorded in the
  manifest);
* either ``apply(image, params) -> image``, a pure function run at the output
  size (``at = "output"``) or on the working image (``at = "work"``, then
  squashed to the output size), or ``render(work, params, work_scale, size)``, for
  transforms that need the working resolution's scale (the paper's geometric
  ones: lengths in source pixels).

Built-ins live in :data:`BUILTINS`. A plug-in is a ``module:attribute`` pair
naming a :class:`TransformEntry` (or a callable returning one) in any
importable module: adding a transform needs no edit of augtool.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from augtool import curator
from augtool.errors import OptionError
from augtool.resize import resize_to
from augtool.transforms import ORIGINAL, TRANSFORMS, Ranges, Size, WorkScale

#: Where a simple ``apply`` runs: on the ``size x size`` output or the working image.
STAGES = ("output", "work")

Params = dict[str, Any]


@dataclass(frozen=True)
class NoSettings:
    """A transform without parameters in the recipe."""


@dataclass(frozen=True)
class TransformEntry:
    """One transform a recipe can name.

    Attributes:
        name: The registry name (built-ins) or the plug-in's own name.
        summary: One line for the docs and ``--help``.
        settings: Frozen dataclass type of the recipe's typed parameters.
        sample: ``sample(rng, settings) -> params`` (JSON-able).
        apply: ``apply(image, params) -> image`` (pure), run at ``at``.
        render: ``render(work, params, work_scale, size) -> output`` instead of
            ``apply``, for transforms that work in source pixels.
        at: Default stage of ``apply``: ``output`` or ``work``.
    """

    name: str
    summary: str
    settings: type = NoSettings
    sample: Callable[[np.random.Generator, Any], Params] = field(default=lambda rng, settings: {})
    apply: Callable[[np.ndarray, Params], np.ndarray] | None = None
    render: Callable[[np.ndarray, Params, WorkScale, int], np.ndarray] | None = None
    at: str = "output"

    def __post_init__(self) -> None:
        if (self.apply is None) == (self.render is None):
            raise TypeError(f"transform {self.name!r}: give exactly one of apply and render")
        if not dataclasses.is_dataclass(self.settings):
            raise TypeError(f"transform {self.name!r}: settings must be a dataclass type")
        if self.at not in STAGES:
            raise TypeError(f"transform {self.name!r}: at must be one of {', '.join(STAGES)}")

    def run(
        self,
        work: np.ndarray,
        params: Params,
        work_scale: WorkScale,
        size: Size,
        at: str | None = None,
    ) -> np.ndarray:
        """Produce the output (``size x size``, or ``(width, height)``) from the working image."""
        if self.render is not None:
            return self.render(work, params, work_scale, size)
        assert self.apply is not None
        if (at or self.at) == "work":
            return resize_to(_checked(self.apply(work, params), self.name), size)
        return resize_to(_checked(self.apply(resize_to(work, size), params), self.name), size)


def _checked(image: Any, name: str) -> np.ndarray:
    """A plug-in's result must be an RGB uint8 image."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise TypeError(
            f"transform {name!r} returned {arr.dtype} {arr.shape}; expected uint8 (H, W, 3) RGB"
        )
    return np.ascontiguousarray(arr)


# --- settings: typed, checked ------------------------------------------------------------


def build_settings(entry: TransformEntry, values: Mapping[str, Any], where: str) -> Any:
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


# --- the paper's ten, as entries --------------------------------------------------------------


@dataclass(frozen=True)
class SigmaSettings:
    """Gaussian blur sigma in source pixels (paper: [4, 8])."""

    sigma_range: tuple[float, float] = (4.0, 8.0)


@dataclass(frozen=True)
class RotateSettings:
    """Rotation angle in degrees, positive counterclockwise (decision: [-45, 45])."""

    rotate_range: tuple[float, float] = (-45.0, 45.0)


@dataclass(frozen=True)
class TranslateSettings:
    """Magnitude of each of dx, dy in source pixels, random sign (paper: [25, 50])."""

    translate_range: tuple[float, float] = (25.0, 50.0)


@dataclass(frozen=True)
class ShearSettings:
    """Magnitude of the shear factor, random sign (paper: [0.3, 1.0])."""

    shear_range: tuple[float, float] = (0.3, 1.0)


#: Settings dataclass of each of the paper's transforms.
PAPER_SETTINGS: dict[str, type] = {
    "gray": NoSettings,
    "blur_rgb": SigmaSettings,
    "blur_gray": SigmaSettings,
    "histeq": NoSettings,
    "flip_x": NoSettings,
    "flip_y": NoSettings,
    "rotate": RotateSettings,
    "translate": TranslateSettings,
    "shear_x": ShearSettings,
    "shear_y": ShearSettings,
}


def _paper_entry(name: str) -> TransformEntry:
    """Wrap one of the paper's transforms (``augtool.transforms``) as an entry."""
    transform = TRANSFORMS[name]
    settings_type = PAPER_SETTINGS[name]

    def sample(rng: np.random.Generator, settings: Any) -> Params:
        ranges = replace(Ranges(), **{f.name: getattr(settings, f.name) for f in fields(settings)})
        return transform.sample(rng, ranges)

    return TransformEntry(
        name=name,
        summary=transform.summary,
        settings=settings_type,
        sample=sample,
        render=transform.apply,
    )


def paper_settings(name: str, ranges: Ranges) -> Any:
    """The settings of one of the paper's transforms at ``ranges``."""
    settings_type = PAPER_SETTINGS[name]
    return settings_type(**{f.name: getattr(ranges, f.name) for f in fields(settings_type)})


ORIGINAL_ENTRY = TransformEntry(
    ORIGINAL.name, ORIGINAL.summary, render=lambda work, p, work_scale, size: resize_to(work, size)
)

#: The curator set (``augtool.curator``): colour, noise, cutout, quarter turns, zoom.
CURATOR: tuple[TransformEntry, ...] = (
    TransformEntry(
        "brightness",
        "add delta x 255 to every channel",
        curator.BrightnessSettings,
        curator.sample_brightness,
        curator.apply_brightness,
    ),
    TransformEntry(
        "exposure",
        "multiply by 2**stops",
        curator.ExposureSettings,
        curator.sample_exposure,
        curator.apply_exposure,
    ),
    TransformEntry(
        "hue",
        "rotate the hue by shift degrees",
        curator.HueSettings,
        curator.sample_hue,
        curator.apply_hue,
    ),
    TransformEntry(
        "saturation",
        "scale the saturation (blend with grey)",
        curator.SaturationSettings,
        curator.sample_saturation,
        curator.apply_saturation,
    ),
    TransformEntry(
        "noise",
        "Gaussian pixel noise, std in grey levels",
        curator.NoiseSettings,
        curator.sample_noise,
        curator.apply_noise,
    ),
    TransformEntry(
        "cutout",
        "black square holes",
        curator.CutoutSettings,
        curator.sample_cutout,
        curator.apply_cutout,
    ),
    TransformEntry(
        "rot90",
        "quarter turns, counterclockwise",
        curator.Rot90Settings,
        curator.sample_rot90,
        curator.apply_rot90,
        at="work",
    ),
    TransformEntry(
        "zoom",
        "crop a window (keep a fraction of each side), zoomed to the output",
        curator.ZoomSettings,
        curator.sample_zoom,
        curator.apply_zoom,
        at="work",
    ),
)

#: Every built-in transform: the paper's ten (in their cycle order), then the curator set.
BUILTINS: dict[str, TransformEntry] = {
    **{name: _paper_entry(name) for name in TRANSFORMS},
    **{entry.name: entry for entry in CURATOR},
}


def builtin(name: str, where: str = "transform") -> TransformEntry:
    """Look up a built-in transform.

    Raises:
        OptionError: Naming ``where`` for an unknown name.
    """
    if name == ORIGINAL.name:
        return ORIGINAL_ENTRY
    try:
        return BUILTINS[name]
    except KeyError:
        raise OptionError(
            where,
            f"unknown transform {name!r}; built-ins: {', '.join(BUILTINS)} "
            "(or give plugin = 'module:attribute', or albumentations = ...)",
        ) from None


def plugin_root(spec: str) -> str:
    """The folder on ``sys.path`` that a plug-in's module was imported from ('' if unknown).

    Recorded in the recipe, so worker processes started before the plug-in's
    folder was put on ``sys.path`` (a reused pool, a Dask worker) can import it.
    """
    top = spec.partition(":")[0].split(".")[0]
    found = importlib.util.find_spec(top)
    if found is None:
        return ""
    if found.submodule_search_locations:
        return str(Path(next(iter(found.submodule_search_locations))).parent)
    return str(Path(found.origin).parent) if found.origin else ""


def load_plugin(spec: str, where: str = "plugin", root: str = "") -> TransformEntry:
    """Import a plug-in transform named ``module:attribute``.

    The attribute is a :class:`TransformEntry`, or a callable without
    arguments returning one.

    Args:
        spec: ``module:attribute``.
        where: Prefix of error messages.
        root: Folder to add to ``sys.path`` if the module is not importable
            as it stands (see :func:`plugin_root`).

    Raises:
        OptionError: Naming ``where`` if the module cannot be imported or the
            attribute is missing or not a transform.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise OptionError(where, f"expected 'module:attribute', got {spec!r}")
    if (
        root
        and root not in sys.path
        and importlib.util.find_spec(module_name.split(".")[0]) is None
    ):
        sys.path.append(root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise OptionError(
            where, f"cannot import {module_name!r} ({err}); is it on PYTHONPATH?"
        ) from err
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise OptionError(where, f"module {module_name!r} has no {attr!r}") from None
    if not isinstance(value, TransformEntry) and callable(value):
        value = value()
    if not isinstance(value, TransformEntry):
        raise OptionError(
            where,
            f"{spec} is a {type(value).__name__}, not an augtool.registry.TransformEntry",
        )
    return value
