"""Recipes: which transforms copies cycle through, with what parameters, after what preprocessing.

A recipe is data: a TOML file (the format of ``--config``), parsed and
checked here before any work, or the same structure recorded in an output's
``augtool.json`` (``verify --regenerate`` replays it). docs/recipes.md
describes the format; in short::

    name = "my recipe"

    [preprocess]
    resize = "squash"        # squash (the paper), pad or crop
    stain = "reinhard"       # none (default) or reinhard
    reference = "ref.jpg"    # reference image of the stain, relative to this file

    [[transform]]
    name = "blur_rgb"        # a built-in (augtool.pipeline.builtins.STEPS)
    sigma_range = [4, 8]     # its typed parameters

    [[transform]]
    name = "colour"          # any name (file names, manifest)
    albumentations = '''{"__version__": "2.0.8", "transform": {...}}'''  # A.to_dict form
    at = "output"            # output (default) or work

    [[transform]]
    name = "stripes"
    plugin = "stripes"       # a plug-in's transform, by its name (--plugin MODULE)

Copies of a source cycle through the steps in file order, as the paper's ten
do. The paper's recipe ships as ``augtool/recipes/paper.toml`` and is exactly
the default (the same bytes). Errors name the file, line and key, and are
raised before anything is scanned or written.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import OptionError, literal
from augtool.ops.geometry import RESIZE_POLICIES
from augtool.ops.stain import STAIN_METHODS, lab_stats
from augtool.pipeline.builtins import Ranges, builtin, paper_settings
from augtool.pipeline.plugins import find_plugin, user_plugins
from augtool.pipeline.settings import build_settings, settings_dict
from augtool.pipeline.steps import STAGES, StepType
from augtool.transforms import TRANSFORMS

#: Version of the recipe format.
FORMAT = 1
#: Folder of the recipes shipped with augtool (``--recipe paper`` etc.).
SHIPPED = Path(__file__).resolve().parent / "recipes"
#: Kinds of step.
KINDS = ("builtin", "plugin", "albumentations")
#: Most transforms a recipe may cycle through.
MAX_STEPS = 256
#: Names a step may not take (the plan uses them).
RESERVED = ("original", "pca")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOP_KEYS = ("format", "name", "description", "preprocess", "transform")
_STEP_KEYS = ("name", "builtin", "plugin", "plugin_module", "albumentations", "at")


@dataclass(frozen=True)
class Step:
    """One transform of a recipe.

    Attributes:
        name: Its name in file names and the manifest.
        kind: ``builtin``, ``plugin`` or ``albumentations``.
        ref: The built-in's or the plug-in's transform name (empty for
            albumentations).
        settings: The checked parameters (JSON-friendly; typed again by the
            entry's settings dataclass where the step runs).
        at: ``output`` or ``work``, or empty for the entry's own default.
        albumentations: The serialized albumentations transform, JSON text.
        source: For a plug-in, the module (or entry point) that provided it;
            recorded for people to read, never imported from a record.
    """

    name: str
    kind: str
    ref: str = ""
    settings: tuple[tuple[str, Any], ...] = ()
    at: str = ""
    albumentations: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The step as it is written in a recipe file (and recorded)."""
        d: dict[str, Any] = {"name": self.name}
        if self.kind == "builtin" and self.ref != self.name:
            d["builtin"] = self.ref
        if self.kind == "plugin":
            d["plugin"] = self.ref
            if self.source:
                d["plugin_module"] = self.source
        if self.kind == "albumentations":
            d["albumentations"] = json.loads(self.albumentations)
        if self.at:
            d["at"] = self.at
        d.update({k: _jsonable(v) for k, v in self.settings})
        return d


@dataclass(frozen=True)
class Preprocess:
    """Preprocessing of every output (see ``augtool.ops.stain``).

    Attributes:
        resize: ``squash`` (the paper), ``pad`` or ``crop``.
        stain: ``none`` or ``reinhard``.
        reference: The stain reference image as named in the recipe.
        reference_sha256: Its hash.
        reference_mean: LAB means of the reference.
        reference_std: LAB standard deviations of the reference.
    """

    resize: str = "squash"
    stain: str = "none"
    reference: str = ""
    reference_sha256: str = ""
    reference_mean: tuple[float, ...] = ()
    reference_std: tuple[float, ...] = ()

    @property
    def identity(self) -> bool:
        """True when preprocessing changes nothing."""
        return self.resize == "squash" and self.stain == "none"

    def to_dict(self) -> dict[str, Any]:
        """As written in a recipe, with the reference's statistics."""
        d: dict[str, Any] = {"resize": self.resize, "stain": self.stain}
        if self.stain != "none":
            d.update(
                reference=self.reference,
                reference_sha256=self.reference_sha256,
                reference_mean=list(self.reference_mean),
                reference_std=list(self.reference_std),
            )
        return d


@dataclass(frozen=True)
class Recipe:
    """The transforms copies cycle through, and the preprocessing.

    Attributes:
        steps: The transforms, in cycle order.
        preprocess: What is done to every output first.
        name: The recipe's name.
        description: One line about it.
        plugins: The modules the user named (``--plugin``) that its plug-in
            steps come from; worker processes import these, and only these.
            Not part of the recorded recipe.
    """

    steps: tuple[Step, ...]
    preprocess: Preprocess = field(default_factory=Preprocess)
    name: str = ""
    description: str = ""
    plugins: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Step names in cycle order."""
        return tuple(s.name for s in self.steps)

    @property
    def uses_albumentations(self) -> bool:
        """True when a step is an albumentations transform."""
        return any(s.kind == "albumentations" for s in self.steps)

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as data (TOML-shaped), as recorded in the manifest."""
        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.description,
            "preprocess": self.preprocess.to_dict(),
            "transform": [s.to_dict() for s in self.steps],
        }

    def key(self) -> str:
        """Canonical JSON of the recipe (cache key in workers)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


# --- the paper's recipe -------------------------------------------------------------------


def paper_recipe(ranges: Ranges | None = None, names: tuple[str, ...] | None = None) -> Recipe:
    """The paper's ten transforms at ``ranges`` (the default of ``expand``).

    Args:
        ranges: Parameter ranges (``--sigma-range`` etc.); the paper's by default.
        names: A subset (``--transforms``), in cycle order; all ten by default.
    """
    ranges = ranges or Ranges()
    steps = []
    for name in names or tuple(TRANSFORMS):
        settings = settings_dict(paper_settings(name, ranges))
        steps.append(
            Step(name, "builtin", name, tuple((k, _frozen(v)) for k, v in settings.items()))
        )
    return Recipe(tuple(steps), name="paper", description="the paper's ten transforms (§3.1)")


# --- reading ------------------------------------------------------------------------------


def shipped_recipes() -> list[str]:
    """Names of the recipes shipped with augtool."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def resolve_path(value: str | Path) -> Path:
    """A recipe file, or the shipped recipe of that name (``paper``, ``colour``, ...)."""
    path = Path(value)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        shipped = SHIPPED / f"{value}.toml"
        if shipped.is_file():
            return shipped
    return path


def load_recipe(value: str | Path, plugins: tuple[str, ...] = ()) -> Recipe:
    """Read and check a recipe file (or a shipped recipe by name).

    Args:
        value: The file, or a shipped recipe's name.
        plugins: Modules the user named (``--plugin``) whose transforms the
            recipe may name; installed packages' transforms are found too.

    Raises:
        OptionError: ``--recipe: <file>, line N, key: what is wrong``, for an
            unreadable or malformed file, an unknown key or transform, a bad
            parameter, a plug-in transform no named module or installed
            package provides, or albumentations missing or of another version.
    """
    path = resolve_path(value)
    try:
        raw = path.read_bytes()
    except OSError as err:
        hint = f"; shipped recipes: {', '.join(shipped_recipes())}"
        raise OptionError("recipe", f"cannot read {value}: {err.strerror}{hint}") from err
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as err:
        raise OptionError("recipe", f"{path}: not UTF-8 text ({err})") from err
    except tomllib.TOMLDecodeError as err:
        raise OptionError("recipe", f"{path}: malformed TOML: {err}") from err
    return parse_recipe(data, str(path), text, path.parent, plugins)


def recipe_from_dict(data: dict[str, Any], plugins: tuple[str, ...] = ()) -> Recipe:
    """Rebuild a recipe recorded in an output (``verify --regenerate``), checking it again.

    A recorded plug-in step is found only among ``plugins`` (the user's
    ``--plugin`` modules) and installed packages; the module the record names
    is shown in the message, never imported.

    Raises:
        OptionError: As :func:`load_recipe` (plug-in or albumentations missing...).
    """
    return parse_recipe(data, "the recorded recipe", "", None, plugins)


def parse_recipe(
    data: Any,
    origin: str,
    text: str = "",
    base: Path | None = None,
    plugins: tuple[str, ...] = (),
) -> Recipe:
    """Check recipe data and build the :class:`Recipe`.

    Args:
        data: The parsed TOML (or recorded) structure.
        origin: The file (for messages).
        text: The file's text (to name lines); empty for recorded recipes.
        base: Folder that relative reference paths are resolved from.
        plugins: Modules the user named whose transforms steps may name.

    Raises:
        OptionError: Naming the file, line and key.
    """
    locate = _Locator(origin, text)
    if not isinstance(data, dict):
        raise locate.error(None, None, "a recipe is a table of keys")
    for key in data:
        if key not in _TOP_KEYS:
            raise locate.error(None, key, f"unknown key; known: {', '.join(_TOP_KEYS)}")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise locate.error(
            None, "format", f"this augtool reads recipe format {FORMAT}, got {fmt!r}"
        )
    name = data.get("name", "")
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise locate.error(None, key, f"expected text, got {value!r}")
    steps_data = data.get("transform")
    if not isinstance(steps_data, list) or not steps_data:
        raise locate.error(
            None,
            "transform",
            "give at least one [[transform]] table (the steps copies cycle through)",
        )
    steps: list[Step] = []
    plugins = tuple(plugins)
    if len(steps_data) > MAX_STEPS:
        raise locate.error(None, "transform", f"{len(steps_data)} transforms; at most {MAX_STEPS}")
    for i, item in enumerate(steps_data):
        steps.append(_parse_step(item, i, locate, plugins))
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen:
            raise locate.error(i, "name", f"{step.name!r} is used by two transforms")
        seen.add(step.name)
    preprocess = _parse_preprocess(data.get("preprocess", {}), locate, base)
    used = plugins if any(s.kind == "plugin" for s in steps) else ()
    return Recipe(tuple(steps), preprocess, name, description, used)


class _Locator:
    """Turns (transform index, key) into ``file, line N, transform[i].key`` messages."""

    def __init__(self, origin: str, text: str) -> None:
        self.origin = origin
        self.lines = text.splitlines()
        self.headers = [
            n for n, line in enumerate(self.lines) if re.match(r"^\s*\[\[\s*transform\s*\]\]", line)
        ]

    def line(self, index: int | None, key: str | None, section: str = "") -> int | None:
        """The 1-based line of ``key`` in transform ``index`` or ``section`` (None if unknown)."""
        if not self.lines:
            return None
        if section:
            heads = [
                n for n, t in enumerate(self.lines) if re.match(rf"^\s*\[\s*{section}\s*\]", t)
            ]
            if not heads:
                return None
            start = heads[0]
            end = next(
                (
                    n
                    for n in range(start + 1, len(self.lines))
                    if self.lines[n].lstrip().startswith("[")
                ),
                len(self.lines),
            )
        elif index is None:
            start, end = 0, (self.headers[0] if self.headers else len(self.lines))
        elif index < len(self.headers):
            start = self.headers[index]
            end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines)
        else:
            return None
        if key:
            top = key.split(".")[0]
            pattern = re.compile(rf"^\s*\"?{re.escape(top)}\"?\s*=")
            for n in range(start, end):
                if pattern.match(self.lines[n]):
                    return n + 1
        return start + 1 if (index is not None or section) else None

    def where(self, index: int | None, key: str | None, section: str = "") -> str:
        parts = [self.origin]
        line = self.line(index, key, section)
        if line is not None:
            parts.append(f"line {line}")
        path = section
        if index is not None:
            path = f"transform[{index}]"
        if key:
            path = f"{path}.{key}" if path else key
        if path:
            parts.append(path)
        return ", ".join(parts)

    def error(
        self,
        index: int | None,
        key: str | None,
        message: str,
        section: str = "",
        refs: bool = False,
    ) -> OptionError:
        """The error ``--recipe: <file>, line N, <key>: message``.

        With ``refs``, ``message`` is a template (:mod:`augtool.errors`) whose
        parameter references are kept; otherwise it is plain text.
        """
        template = message if refs else literal(message)
        return OptionError(
            "recipe", literal(self.where(index, key, section)) + ": " + template, refs=True
        )

    def reraise(self, index: int | None, err: OptionError) -> OptionError:
        """A step's :class:`OptionError` (``option`` = its key) as a located recipe error."""
        key = err.option.lstrip(".") or None
        return self.error(index, key, err.detail_template, refs=True)


def _parse_step(item: Any, i: int, locate: _Locator, plugins: tuple[str, ...]) -> Step:
    if not isinstance(item, dict):
        raise locate.error(i, None, "each [[transform]] is a table")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise locate.error(i, "name", "every transform needs a name")
    if not _NAME.match(name) or name in RESERVED:
        raise locate.error(
            i,
            "name",
            f"{name!r}: use letters, digits, '_', '-' or '.' (it becomes part of file "
            f"names), and not {' or '.join(RESERVED)}",
        )
    kinds = [k for k in ("builtin", "plugin", "albumentations") if k in item]
    if len(kinds) > 1:
        raise locate.error(i, kinds[1], f"give one of builtin, plugin, albumentations, not {kinds}")
    at = item.get("at", "")
    if at and at not in STAGES:
        raise locate.error(i, "at", f"expected one of {', '.join(STAGES)}, got {at!r}")
    params = {k: v for k, v in item.items() if k not in _STEP_KEYS}
    if kinds == ["albumentations"]:
        if params:
            key = next(iter(params))
            raise locate.error(
                i,
                key,
                "unknown key for an albumentations step; parameters go inside the "
                "serialized transform",
            )
        from augtool.albu import check_serialized

        try:
            serialized = check_serialized(item["albumentations"], "albumentations")
        except OptionError as err:
            raise locate.reraise(i, err) from err
        return Step(
            name,
            "albumentations",
            at=at or "output",
            albumentations=json.dumps(serialized, sort_keys=True),
        )
    if "plugin_root" in item:
        raise locate.error(
            i,
            "plugin_root",
            "a recipe puts no folder on the import path; give the plug-in's module on the "
            "command line with {plugins} MODULE (a module name or a .py file)",
            refs=True,
        )
    recorded = item.get("plugin_module", "")
    if "plugin_module" in item and (kinds != ["plugin"] or not isinstance(recorded, str)):
        raise locate.error(i, "plugin_module", "only beside plugin = 'NAME', as text")
    try:
        if kinds == ["plugin"]:
            ref = item["plugin"]
            if not isinstance(ref, str) or not ref:
                raise OptionError("plugin", f"expected a transform name, got {ref!r}")
            found = find_plugin(ref, plugins, recorded)
            entry, kind, source = found.entry, "plugin", found.source
        else:
            ref = item.get("builtin", name)
            if not isinstance(ref, str):
                raise OptionError("builtin", f"expected a transform name, got {ref!r}")
            entry = builtin(ref, "builtin" if "builtin" in item else "name")
            kind, source = "builtin", ""
        if at and entry.render is not None:
            raise OptionError("at", f"{entry.name!r} always works at the working resolution")
        settings = build_settings(entry, params, "")
        _check_sample(entry, settings)
    except OptionError as err:
        raise locate.reraise(i, err) from err
    values = tuple((k, _frozen(v)) for k, v in settings_dict(settings).items())
    return Step(name, kind, ref, values, at, source=source)


def _check_sample(entry: StepType, settings: Any) -> None:
    """Draw once, so a setting ``sample`` rejects fails now, not in a worker."""
    try:
        params = entry.sample(np.random.default_rng(0), settings)
        json.dumps(params)
    except (ValueError, TypeError) as err:
        raise OptionError("", f"{entry.name}: {err}") from err


def _parse_preprocess(data: Any, locate: _Locator, base: Path | None) -> Preprocess:
    section = "preprocess"
    if not isinstance(data, dict):
        raise locate.error(None, None, "expected a [preprocess] table", section)
    known = ("resize", "stain", "reference", "reference_sha256", "reference_mean", "reference_std")
    for key in data:
        if key not in known:
            raise locate.error(None, key, f"unknown key; known: {', '.join(known[:3])}", section)
    resize = data.get("resize", "squash")
    if resize not in RESIZE_POLICIES:
        raise locate.error(
            None, "resize", f"expected one of {', '.join(RESIZE_POLICIES)}, got {resize!r}", section
        )
    stain = data.get("stain", "none")
    if stain not in STAIN_METHODS:
        raise locate.error(
            None, "stain", f"expected one of {', '.join(STAIN_METHODS)}, got {stain!r}", section
        )
    if stain == "none":
        if "reference" in data:
            raise locate.error(None, "reference", 'only with stain = "reinhard"', section)
        return Preprocess(resize=resize)
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference:
        raise locate.error(
            None, "reference", "stain normalization needs a reference image", section
        )
    if "reference_mean" in data and "reference_std" in data:
        mean, std = data["reference_mean"], data["reference_std"]
        ok = all(
            isinstance(v, list) and len(v) == 3 and all(isinstance(x, int | float) for x in v)
            for v in (mean, std)
        )
        if not ok:
            raise locate.error(None, "reference_mean", "expected three numbers each", section)
        sha = str(data.get("reference_sha256", ""))
    else:
        path = Path(reference)
        if base is not None and not path.is_absolute():
            path = base / path
        mean, std, sha = _reference_stats(path, locate)
    return Preprocess(
        resize, stain, reference, sha, tuple(float(v) for v in mean), tuple(float(v) for v in std)
    )


def _reference_stats(path: Path, locate: _Locator) -> tuple[list[float], list[float], str]:
    from augtool.errors import InputError
    from augtool.store.decode import decode_rgb

    try:
        data = path.read_bytes()
        image = decode_rgb(data, 1, str(path))
    except OSError as err:
        raise locate.error(
            None, "reference", f"cannot read {path}: {err.strerror}", "preprocess"
        ) from err
    except InputError as err:
        raise locate.error(None, "reference", str(err), "preprocess") from err
    mean, std = lab_stats(image)
    return mean, std, hashlib.sha256(data).hexdigest()


# --- running (in workers) -----------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedStep:
    """A step ready to run: its entry, typed settings and stage."""

    entry: StepType
    settings: Any
    at: str


@lru_cache(maxsize=16)
def _resolve_key(key: str, plugins: tuple[str, ...]) -> dict[str, ResolvedStep]:
    recipe = json.loads(key)
    resolved: dict[str, ResolvedStep] = {}
    for item in recipe["transform"]:
        name = item["name"]
        at = item.get("at", "")
        params = {k: v for k, v in item.items() if k not in _STEP_KEYS}
        if "albumentations" in item:
            from augtool.albu import make_entry

            entry = make_entry(name, item["albumentations"], at or "output")
        elif "plugin" in item:
            entry = find_plugin(item["plugin"], plugins).entry
        else:
            entry = builtin(item.get("builtin", name))
        settings = build_settings(entry, params, name)
        resolved[name] = ResolvedStep(entry, settings, at or entry.at)
    return resolved


def resolve(recipe: Recipe) -> dict[str, ResolvedStep]:
    """Entries and typed settings of every step, built once per process.

    Plug-in steps are found in the modules the user named (``recipe.plugins``,
    imported here in a worker process that has not imported them yet) or in
    installed packages, never through what the recorded recipe says.
    """
    if recipe.plugins:
        user_plugins(recipe.plugins)
    return _resolve_key(recipe.key(), recipe.plugins)
