"""What a pipeline step is: how it samples, how it changes the pixels, where its targets go.

:class:`StepType` is the one kind of entry every step is built from: the
built-ins (``augtool.pipeline.builtins``), plug-ins, and, wrapped, the
albumentations steps (``augtool.pipeline.albu_boxes``). It extends
:class:`augtool.registry.TransformEntry` (which a recipe names today) with
what a step must say for its targets to follow its pixels:

* ``moves_pixels=False``: colour or intensity only; targets stay where they
  are, up to the resize to the output;
* ``moves_pixels=True`` with ``geometry``: the step's pixels move by an affine
  map, and targets are mapped by that same map;
* ``moves_pixels=True`` with ``apply_targets``: the step moves its targets
  itself, with its pixels (albumentations steps, through albumentations' own
  box support);
* ``moves_pixels=True`` with neither, or not declared (``None``, a plug-in
  written before steps declared it): the pixels move in a way nobody stated,
  so a run with targets refuses the step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from augtool.ops.geometry import Affine
from augtool.ops.targets import Targets
from augtool.registry import TransformEntry

Params = dict[str, Any]
#: ``geometry(params, width, height) -> (2x3 matrix, canvas)``: the map of one step's pixels.
Geometry = Callable[[Params, float, float], Affine]
#: ``apply_targets(image, params, targets, min_visibility) -> (image, targets)``: pixels and
#: settled targets together, for a step that moves its targets itself.
ApplyTargets = Callable[[np.ndarray, Params, Targets, float], tuple[np.ndarray, Targets]]


@dataclass(frozen=True)
class StepType(TransformEntry):
    """One kind of step: its settings, sampling, pixels, and the map its targets follow.

    Attributes:
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

    moves_pixels: bool | None = None
    geometry: Geometry | None = None
    apply_targets: ApplyTargets | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
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


def as_step_type(
    entry: TransformEntry, moves_pixels: bool | None = None, geometry: Geometry | None = None
) -> StepType:
    """A registry entry as a step type, with what it declares about its pixels.

    Args:
        entry: A registry entry (a step type is returned as it is).
        moves_pixels: See :class:`StepType`; None for a plug-in that does not say.
        geometry: See :class:`StepType`.
    """
    if isinstance(entry, StepType):
        return entry
    values = {f.name: getattr(entry, f.name) for f in dataclasses.fields(TransformEntry)}
    return StepType(**values, moves_pixels=moves_pixels, geometry=geometry)
