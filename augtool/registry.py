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

Built-ins live in :data:`BUILTINS`. Plug-ins run code, so only the user's own
word loads them, never a file (a recipe, a dataset's ``augtool.json``):

* a module named on the command line (``--plugin my_transforms``, the
  ``plugins`` parameter of the library): every module-level
  :class:`TransformEntry` in it is a transform of that name;
* an installed package that declares a transform in the entry-point group
  :data:`ENTRY_POINT_GROUP` (``augtool.transforms``): the entry point's name is
  the transform's, and it is loaded only when a recipe names it.

A recipe refers to a plug-in transform by that name (``plugin = "invert"``).
Whatever a module or entry point holds is checked with ``isinstance`` before
anything of it is used; nothing is ever called to find out what it is.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import OptionError, literal
from augtool.ops import geometry, pixels
from augtool.ops.resize import resize_to
from augtool.pipeline import curator_steps as steps
from augtool.transforms import (
    ORIGINAL,
    TRANSFORMS,
    Ranges,
    Size,
    WorkScale,
    bounded,
    check_domains,
)

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


# --- the paper's ten, as entries --------------------------------------------------------------


@dataclass(frozen=True)
class SigmaSettings:
    """Gaussian blur sigma in source pixels (paper: [4, 8])."""

    sigma_range: tuple[float, float] = bounded((4.0, 8.0), 0.0, 500.0)


@dataclass(frozen=True)
class RotateSettings:
    """Rotation angle in degrees, positive counterclockwise (decision: [-45, 45])."""

    rotate_range: tuple[float, float] = bounded((-45.0, 45.0), -360.0, 360.0)


@dataclass(frozen=True)
class TranslateSettings:
    """Magnitude of each of dx, dy in source pixels, random sign (paper: [25, 50])."""

    translate_range: tuple[float, float] = bounded((25.0, 50.0), 0.0, 100_000.0)


@dataclass(frozen=True)
class ShearSettings:
    """Magnitude of the shear factor, random sign (paper: [0.3, 1.0])."""

    shear_range: tuple[float, float] = bounded((0.3, 1.0), 0.0, 10.0)


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

#: The curator set (``augtool.ops.pixels``): colour, noise, cutout, quarter turns, zoom.
CURATOR: tuple[TransformEntry, ...] = (
    TransformEntry(
        "brightness",
        "add delta x 255 to every channel",
        steps.BrightnessSettings,
        steps.sample_brightness,
        pixels.apply_brightness,
    ),
    TransformEntry(
        "exposure",
        "multiply by 2**stops",
        steps.ExposureSettings,
        steps.sample_exposure,
        pixels.apply_exposure,
    ),
    TransformEntry(
        "hue",
        "rotate the hue by shift degrees",
        steps.HueSettings,
        steps.sample_hue,
        pixels.apply_hue,
    ),
    TransformEntry(
        "saturation",
        "scale the saturation (blend with grey)",
        steps.SaturationSettings,
        steps.sample_saturation,
        pixels.apply_saturation,
    ),
    TransformEntry(
        "noise",
        "Gaussian pixel noise, std in grey levels",
        steps.NoiseSettings,
        steps.sample_noise,
        pixels.apply_noise,
    ),
    TransformEntry(
        "cutout",
        "black square holes",
        steps.CutoutSettings,
        steps.sample_cutout,
        pixels.apply_cutout,
    ),
    TransformEntry(
        "rot90",
        "quarter turns, counterclockwise",
        steps.Rot90Settings,
        steps.sample_rot90,
        geometry.apply_rot90,
        at="work",
    ),
    TransformEntry(
        "zoom",
        "crop a window (keep a fraction of each side), zoomed to the output",
        steps.ZoomSettings,
        steps.sample_zoom,
        geometry.apply_zoom,
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
            f"unknown transform {literal(repr(name))}; built-ins: {literal(', '.join(BUILTINS))} "
            "(or plugin = 'NAME' for a transform of a module given with {plugins}, "
            "or albumentations = ...)",
            refs=True,
        ) from None


# --- plug-ins: by the user's word only -------------------------------------------------------

#: Entry-point group in which installed packages declare transforms (name = transform name).
ENTRY_POINT_GROUP = "augtool.transforms"


@dataclass(frozen=True)
class Plugin:
    """A plug-in transform and where it came from.

    Attributes:
        entry: The transform.
        source: The module named by the user, or ``entry point <value>``.
    """

    entry: TransformEntry
    source: str


def _import_user_module(spec: str) -> types.ModuleType:
    """Import a module the user named: a module name, or the path of a ``.py`` file.

    Raises:
        OptionError: Naming ``plugins`` when it cannot be imported.
    """
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise OptionError("plugins", f"{literal(spec)}: no such Python file", refs=True)
        name = path.stem
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) == str(path.resolve()):
            return loaded
        found = importlib.util.spec_from_file_location(name, path.resolve())
        if found is None or found.loader is None:
            raise OptionError("plugins", f"{literal(spec)}: cannot be imported", refs=True)
        module = importlib.util.module_from_spec(found)
        sys.modules[name] = module
        try:
            found.loader.exec_module(module)
        except ImportError as err:
            del sys.modules[name]
            raise OptionError(
                "plugins", f"{literal(spec)}: cannot import ({literal(err)})", refs=True
            ) from err
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as err:
        raise OptionError(
            "plugins",
            f"cannot import {literal(repr(spec))} ({literal(err)}); is it on PYTHONPATH? "
            "(or give the path of its .py file)",
            refs=True,
        ) from err
    except (ValueError, TypeError) as err:  # an empty or relative name
        raise OptionError(
            "plugins", f"{literal(repr(spec))} is not a module name ({literal(err)})", refs=True
        ) from err


@lru_cache(maxsize=16)
def user_plugins(modules: tuple[str, ...]) -> dict[str, Plugin]:
    """The transforms of the modules the user named (``--plugin``), by name.

    Each module is imported (the user's word); its module-level
    :class:`TransformEntry` instances (``isinstance``; nothing is called) are
    its transforms, augtool's own built-ins excepted.

    Raises:
        OptionError: Naming ``plugins`` for a module that cannot be imported,
            holds no transform, or gives a name another module gives too.
    """
    own = {id(e) for e in (*BUILTINS.values(), ORIGINAL_ENTRY)}
    table: dict[str, Plugin] = {}
    for spec in modules:
        module = _import_user_module(spec)
        found = {
            id(value): value
            for value in vars(module).values()
            if isinstance(value, TransformEntry) and id(value) not in own
        }
        if not found:
            raise OptionError(
                "plugins",
                f"module {literal(repr(spec))} defines no augtool.registry.TransformEntry "
                "at module level",
                refs=True,
            )
        for entry in found.values():
            other = table.get(entry.name)
            if other is not None and other.entry is not entry:
                raise OptionError(
                    "plugins",
                    f"transform {literal(repr(entry.name))} is defined by "
                    f"{literal(repr(other.source))} and by {literal(repr(spec))}",
                    refs=True,
                )
            table[entry.name] = Plugin(entry, spec)
    return table


def installed_plugin(name: str) -> Plugin | None:
    """The transform ``name`` that an installed package declares, or None.

    Reads the entry-point group :data:`ENTRY_POINT_GROUP` and loads only the
    entry point of that name.

    Raises:
        OptionError: If two packages declare the name, it cannot be loaded,
            or what it names is not a :class:`TransformEntry`.
    """
    points = [p for p in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if p.name == name]
    if not points:
        return None
    if len({p.value for p in points}) > 1:
        values = ", ".join(sorted({p.value for p in points}))
        raise OptionError(
            "plugin", f"installed packages declare {literal(repr(name))} twice: {literal(values)}"
        )
    point = points[0]
    try:
        value = point.load()
    except (ImportError, AttributeError) as err:
        raise OptionError(
            "plugin", f"entry point {literal(point.value)} cannot be loaded ({literal(err)})"
        ) from err
    if not isinstance(value, TransformEntry):
        raise OptionError(
            "plugin",
            f"entry point {literal(point.value)} is a {type(value).__name__}, "
            "not an augtool.registry.TransformEntry",
        )
    return Plugin(value, f"entry point {point.value}")


def find_plugin(name: str, modules: Sequence[str] = (), recorded: str = "") -> Plugin:
    """The plug-in transform ``name``: from a module the user named, else an installed package.

    Args:
        name: The transform's name, as a recipe gives it.
        modules: The modules the user named (``--plugin``).
        recorded: Where a dataset says the transform came from (only named in
            the message when it is not found; never imported).

    Raises:
        OptionError: Naming ``plugin`` when no plug-in provides ``name``; the
            message names ``--plugin`` and the recorded module.
    """
    if ":" in name:
        raise OptionError(
            "plugin",
            f"{literal(repr(name))}: a recipe names no code (module:attribute); give the "
            "module on the command line with {plugins} MODULE and name its transform here "
            "by its name",
            refs=True,
        )
    found = user_plugins(tuple(modules)).get(name) or installed_plugin(name)
    if found is not None:
        return found
    source = f" (recorded from {recorded!r})" if recorded else ""
    given = user_plugins(tuple(modules))
    known = f"; the modules given provide {', '.join(sorted(given))}" if given else ""
    raise OptionError(
        "plugin",
        f"no plug-in provides transform {literal(repr(name) + source + known)}: pass "
        "{plugins} MODULE naming the module that defines it, or install the package that "
        f"declares it (entry points {literal(ENTRY_POINT_GROUP)})",
        refs=True,
    )
