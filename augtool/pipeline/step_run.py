"""One step of a prepared source: its pixels at the output size, and where its targets go.

The arithmetic every output shares (:meth:`augtool.pipeline.core.Pipeline.run`
calls it): the recipe's preprocessing of the working image, then the step's
pixels, letterboxed or squashed to the output, with its targets mapped by the
very matrix the pixels are warped by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from augtool.errors import OptionError
from augtool.ops.geometry import (
    Affine,
    as3x3,
    identity,
    letterbox,
    output_map,
    reshape_policy,
)
from augtool.ops.resize import resize_to
from augtool.ops.stain import reinhard
from augtool.ops.targets import Targets
from augtool.pipeline.steps import Params, StepType

if TYPE_CHECKING:
    from augtool.pipeline.core import PipelineStep
    from augtool.pipeline.recipe_spec import Preprocess


def preprocess_work(work: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """Apply the recipe's preprocessing (shape policy, stain) to the working image."""
    if preprocess.identity:
        return work
    work = reshape_policy(work, preprocess.resize)
    if preprocess.stain == "reinhard":
        work = reinhard(work, list(preprocess.reference_mean), list(preprocess.reference_std))
    return work


def run_step(
    chosen: PipelineStep,
    work: np.ndarray,
    params: Params,
    work_scale: tuple[float, float],
    src: tuple[float, float],
    out: tuple[int, int],
    targets: Targets | None,
    letterboxed: bool,
    min_visibility: float,
) -> tuple[np.ndarray, Targets | None]:
    """One step's pixels at the output size, and its targets (pending, not settled).

    A ``render`` step warps the working image by its geometry (source pixels),
    letterboxed or not, and its targets follow that map; an ``apply`` step runs
    at the output size or on the working image, and its targets follow its
    ``geometry`` on that image, or are moved by the step itself
    (``apply_targets``, which must give back the masks it was given); a step
    that moves pixels without saying where refuses targets.

    Raises:
        OptionError: Naming ``targets`` or ``letterboxed`` for what the step cannot do.
    """
    kind = chosen.step_type
    if targets is not None and not kind.carries_targets:
        raise OptionError(
            "targets",
            f"step {chosen.name!r} moves pixels without saying where, so boxes and masks "
            "cannot follow it; a plug-in declares moves_pixels=False (colours only) or "
            "gives its geometry",
        )
    if kind.render is not None:
        geometry: Affine = (kind.geometry or _identity)(params, *src)
        resize, picture = output_map(geometry[1], out, letterboxed)
        if letterboxed:
            image = _letterboxed(kind, work, params, work_scale, geometry[1], out)
        else:
            image = kind.run(work, params, work_scale, out, chosen.at)
        if targets is not None:
            targets = targets.mapped(resize @ as3x3(geometry[0]), out, picture)
        return image, targets
    if letterboxed:
        raise OptionError(
            "letterboxed", f"keeps the aspect of the paper's steps only, not {chosen.name!r}"
        )
    at_work = chosen.at == "work"
    stage = (work.shape[1], work.shape[0]) if at_work else out
    to_stage = np.diag([*work_scale, 1.0]) if at_work else output_map(src, out)[0]
    if targets is not None and kind.apply_targets is not None:
        staged = work if at_work else resize_to(work, out)
        settled = targets.mapped(to_stage, stage).settled(min_visibility)
        image, moved = kind.apply_targets(staged, params, settled, min_visibility)
        _check_masks_moved(chosen.name, settled, moved)
        return resize_to(image, out), moved.mapped(output_map(moved.size, out)[0], out)
    image = kind.run(work, params, work_scale, out, chosen.at)
    if targets is not None:
        matrix, canvas = (kind.geometry or _identity)(params, *stage)
        resize = output_map(canvas, out)[0]
        targets = targets.mapped(resize @ as3x3(matrix) @ to_stage, out)
    return image, targets


def _check_masks_moved(name: str, given: Targets, moved: Targets) -> None:
    """A step that moves its targets itself must give back the masks it was given.

    Raises:
        OptionError: Naming ``targets``, for a step that returned boxes without their masks.
    """
    lost = [
        what
        for what, before, after in (
            ("instance masks", given.shapes, moved.shapes),
            ("class map", given.semantic, moved.semantic),
        )
        if before is not None and after is None
    ]
    if lost:
        raise OptionError(
            "targets",
            f"step {name!r} moves its own targets but returned no {' or '.join(lost)}; "
            "its apply_targets must map the masks of the Targets it is given "
            "(Targets.shapes and Targets.semantic), or the run must go without masks",
        )


def _identity(params: Params, width: float, height: float) -> Affine:
    return identity(width, height)


def _letterboxed(
    kind: StepType,
    work: np.ndarray,
    params: Params,
    work_scale: tuple[float, float],
    canvas: tuple[float, float],
    out: tuple[int, int],
) -> np.ndarray:
    """The step's canvas at the largest size that fits the output, centred between black bars."""
    assert kind.render is not None
    (fw, fh), (ox, oy) = letterbox(canvas, out)
    result = np.zeros((out[1], out[0], 3), np.uint8)
    result[oy : oy + fh, ox : ox + fw] = kind.render(work, params, work_scale, (fw, fh))
    return result
