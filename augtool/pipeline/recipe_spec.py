"""Recipes as data: the steps copies cycle through, their settings, and the preprocessing.

A :class:`Recipe` is what a recipe file (``augtool.pipeline.recipe_toml``)
or an output's ``augtool.json`` holds, checked: its steps (built-in, plug-in
or albumentations, each with typed settings), the preprocessing of every
output, its name. :func:`paper_recipe` is the paper's ten at the range
flags, the default of ``expand``. :class:`augtool.pipeline.core.Pipeline`
resolves a recipe into steps that run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from augtool.pipeline.builtins import PAPER, Ranges, paper_settings
from augtool.pipeline.settings import settings_dict
from augtool.pipeline.steps import ORIGINAL_NAME, PCA

#: Version of the recipe format.
FORMAT = 1
#: Kinds of step.
KINDS = ("builtin", "plugin", "albumentations")
#: Names a step may not take (the plan uses them).
RESERVED = (ORIGINAL_NAME, PCA)


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


def frozen(value: Any) -> Any:
    """Lists (of lists) as tuples: a value a frozen recipe can hold and hash."""
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def paper_recipe(ranges: Ranges | None = None, names: tuple[str, ...] | None = None) -> Recipe:
    """The paper's ten transforms at ``ranges`` (the default of ``expand``).

    Args:
        ranges: Parameter ranges (``--sigma-range`` etc.); the paper's by default.
        names: A subset (``--transforms``), in cycle order; all ten by default.
    """
    ranges = ranges or Ranges()
    steps = []
    for name in names or tuple(PAPER):
        settings = settings_dict(paper_settings(name, ranges))
        steps.append(
            Step(name, "builtin", name, tuple((k, frozen(v)) for k, v in settings.items()))
        )
    return Recipe(tuple(steps), name="paper", description="the paper's ten transforms (§3.1)")
