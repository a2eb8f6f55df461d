"""Plug-in steps: code, so loaded only by the user's own word, never by a file.

Plug-ins run code, so only the user's own word loads them, never a file (a
recipe, a dataset's ``augtool.json``):

* a module named on the command line (``--plugin my_transforms``, the
  ``plugins`` parameter of the library): every module-level
  :class:`~augtool.pipeline.steps.StepType` in it is a step of that name;
* an installed package that declares a step in the entry-point group
  :data:`ENTRY_POINT_GROUP` (``augtool.transforms``): the entry point's name is
  the step's, and it is loaded only when a recipe names it.

A recipe refers to a plug-in step by that name (``plugin = "invert"``).
Whatever a module or entry point holds is checked with ``isinstance`` before
anything of it is used; nothing is ever called to find out what it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from augtool.errors import OptionError, literal
from augtool.pipeline.builtins import ORIGINAL, STEPS
from augtool.pipeline.steps import StepType

#: Entry-point group in which installed packages declare transforms (name = transform name).
ENTRY_POINT_GROUP = "augtool.transforms"


@dataclass(frozen=True)
class Plugin:
    """A plug-in transform and where it came from.

    Attributes:
        entry: The transform.
        source: The module named by the user, or ``entry point <value>``.
    """

    entry: StepType
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
    :class:`StepType` instances (``isinstance``; nothing is called) are
    its transforms, augtool's own built-ins excepted.

    Raises:
        OptionError: Naming ``plugins`` for a module that cannot be imported,
            holds no transform, or gives a name another module gives too.
    """
    own = {id(e) for e in (*STEPS.values(), ORIGINAL)}
    table: dict[str, Plugin] = {}
    for spec in modules:
        module = _import_user_module(spec)
        found = {
            id(value): value
            for value in vars(module).values()
            if isinstance(value, StepType) and id(value) not in own
        }
        if not found:
            raise OptionError(
                "plugins",
                f"module {literal(repr(spec))} defines no augtool.StepType at module level",
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
            or what it names is not a :class:`StepType`.
    """
    import importlib.metadata  # only when a plug-in is named: its import is slow

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
    if not isinstance(value, StepType):
        raise OptionError(
            "plugin",
            f"entry point {literal(point.value)} is a {type(value).__name__}, "
            "not an augtool.StepType",
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
