"""What a pipeline step is: its settings, how it samples, its pixels, where its targets go.

:class:`StepType` is the one kind of entry every step is built from: the
built-ins (``augtool.pipeline.builtins``), the curator set, plug-ins, and the
albumentations steps (``augtool.pipeline.albu``). A recipe names a step type
by its name. It has

* ``settings``: a frozen dataclass type, the recipe's typed parameters of the
  step (ranges, counts), with defaults; a recipe's keys are checked against
  its fields and types before any work (``augtool.pipeline.settings``);
* ``sample(rng, settings) -> params``: draws one output's parameters from an
  explicit ``numpy.random.Generator``; ``params`` is JSON-able (recorded in the
  manifest);
* either ``apply(image, params) -> image``, a pure function run at the output
  size (``at = "output"``) or on the working image (``at = "work"``, then
  squashed to the output size), or ``render(work, params, work_scale, size)``,
  for steps that need the working resolution's scale (the paper's geometric
  ones: lengths in source pixels);
* what it does to its targets (boxes, and masks in time):

  * ``moves_pixels=False``: colour or intensity only; targets stay where
    they are, up to the resize to the output;
  * ``moves_pixels=True`` with ``geometry``: the pixels move by an affine
    map, and targets are mapped by that same map;
  * ``moves_pixels=True`` with ``apply_targets``: the step moves its targets
    itself, with its pixels (albumentations steps, through albumentations'
    own box support);
  * ``moves_pixels=True`` with neither, or not declared (``None``, a plug-in
    that does not say): the pixels move in a way nobody stated, so a run
    with targets refuses the step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augtool.ops.geometry import Affine, Size, WorkScale
from augtool.ops.resize import resize_to
from augtool.ops.targets import Targets

#: Step name of copy 0 of every source: the source, resized (with its preprocessing).
ORIGINAL_NAME = "original"
#: Step name of the PCA colour-jittered copies of the original.
PCA = "pca"
#: Where a simple ``apply`` runs: on the ``size x size`` output or the working image.
STAGES = ("output", "work")

Params = dict[str, Any]
#: ``geometry(params, width, height) -> (2x3 matrix, canvas)``: the map of one step's pixels.
Geometry = Callable[[Params, float, float], Affine]
#: ``apply_targets(image, params, targets, min_visibility) -> (image, targets)``: pixels and
#: settled targets together, for a step that moves its targets itself.
ApplyTargets = Callable[[np.ndarray, Params, Targets, float], tuple[np.ndarray, Targets]]


@dataclass(frozen=True)
class NoSettings:
    """A step without parameters in the recipe."""


@dataclass(frozen=True)
class StepType:
    """One kind of step: its settings, sampling, pixels, and the map its targets follow.

    Attributes:
        name: The built-in's or the plug-in's own name.
        summary: One line for the docs and ``--help``.
        settings: Frozen dataclass type of the recipe's typed parameters.
        sample: ``sample(rng, settings) -> params`` (JSON-able).
        apply: ``apply(image, params) -> image`` (pure), run at ``at``.
        render: ``render(work, params, work_scale, size) -> output`` instead of
            ``apply``, for steps that work in source pixels.
        at: Default stage of ``apply``: ``output`` or ``work``.
        moves_pixels: False for a step that changes colours only; True for one
            that moves pixels; None when not declared (refused with targets).
        geometry: ``geometry(params, width, height)``: the 2x3 map and canvas
            of the step's pixels, on the image the step sees (source pixels
            for a ``render`` step, the ``apply`` input otherwise: the
            ``size x size`` output or the working image). The canvas is what
            ``apply`` returns before the resize to the output.
        apply_targets: ``apply_targets(image, params, targets, min_visibility)``,
            for an ``apply`` step that moves its targets itself: the same image
            ``apply`` gives, and the targets on it.
    """

    name: str
    summary: str
    settings: type = NoSettings
    sample: Callable[[np.random.Generator, Any], Params] = field(default=lambda rng, settings: {})
    apply: Callable[[np.ndarray, Params], np.ndarray] | None = None
    render: Callable[[np.ndarray, Params, WorkScale, Size], np.ndarray] | None = None
    at: str = "output"
    moves_pixels: bool | None = None
    geometry: Geometry | None = None
    apply_targets: ApplyTargets | None = None

    def __post_init__(self) -> None:
        if (self.apply is None) == (self.render is None):
            raise TypeError(f"step {self.name!r}: give exactly one of apply and render")
        if not dataclasses.is_dataclass(self.settings):
            raise TypeError(f"step {self.name!r}: settings must be a dataclass type")
        if self.at not in STAGES:
            raise TypeError(f"step {self.name!r}: at must be one of {', '.join(STAGES)}")
        moving = self.geometry is not None or self.apply_targets is not None
        if moving and self.moves_pixels is not True:
            raise TypeError(f"step {self.name!r}: geometry and apply_targets need moves_pixels")
        if self.apply_targets is not None and self.apply is None:
            raise TypeError(f"step {self.name!r}: apply_targets goes with apply, not render")

    @property
    def carries_targets(self) -> bool:
        """True when boxes (and masks) can follow this step's pixels."""
        return (
            self.moves_pixels is False
            or self.geometry is not None
            or self.apply_targets is not None
        )

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


def output_rng(seed: int, source_sha256: str, copy: int) -> np.random.Generator:
    """The generator of one output, keyed by (seed, source content, copy index).

    Independent of file order, worker count and which other outputs exist, so
    the same source and copy always get the same parameters.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, int(source_sha256, 16), copy]))


def _checked(image: Any, name: str) -> np.ndarray:
    """A plug-in's result must be an RGB uint8 image."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise TypeError(
            f"step {name!r} returned {arr.dtype} {arr.shape}; expected uint8 (H, W, 3) RGB"
        )
    return np.ascontiguousarray(arr)
