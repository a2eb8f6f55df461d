"""Recipe files: TOML read and checked into a :class:`~augtool.pipeline.recipe_spec.Recipe`.

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
do. The paper's recipe ships as ``augtool/pipeline/recipes/paper.toml`` and is exactly
the default (the same bytes). Errors name the file, line and key, and are
raised before anything is scanned or written.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import OptionError, literal
from augtool.ops.geometry import RESIZE_POLICIES
from augtool.ops.stain import STAIN_METHODS, lab_stats
from augtool.pipeline.builtins import builtin
from augtool.pipeline.plugins import find_plugin
from augtool.pipeline.recipe_spec import FORMAT, RESERVED, Preprocess, Recipe, Step, frozen
from augtool.pipeline.settings import build_settings, settings_dict
from augtool.pipeline.steps import STAGES, StepType

#: Folder of the recipes shipped with augtool (``--recipe paper`` etc.).
SHIPPED = Path(__file__).resolve().parent / "recipes"
#: Most transforms a recipe may cycle through.
MAX_STEPS = 256

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOP_KEYS = ("format", "name", "description", "preprocess", "transform")
_STEP_KEYS = ("name", "builtin", "plugin", "plugin_module", "albumentations", "at")


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


def read_recipe_file(value: str | Path, plugins: tuple[str, ...] = ()) -> Recipe:
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
        OptionError: As :func:`read_recipe_file` (plug-in or albumentations missing...).
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
        keys = ", ".join(repr(k) for k in item if k != "name")
        has = f" (this one has {keys})" if keys else ""
        raise locate.error(i, "name", f"every transform needs a name{has}")
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
        from augtool.pipeline.albu import check_serialized

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
    values = tuple((k, frozen(v)) for k, v in settings_dict(settings).items())
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
