"""The pipeline: one image and its targets through a step, with the bytes ``expand`` writes.

A :class:`Pipeline` holds the steps copies cycle through (a recipe, resolved:
built-ins, plug-ins, albumentations), the preprocessing and the PCA settings.
:meth:`Pipeline.apply` runs one step on one image, drawing the step's
parameters from the generator of ``(seed, source, copy)``
(:func:`augtool.pipeline.steps.output_rng`), exactly as an ``expand`` worker does: the
same seed, source and copy give the image ``expand`` writes, and the targets
(boxes) on it::

    pipe = Pipeline.paper()
    sample = pipe.apply(image, "rotate", seed=0, source=sha256, copy=3, size=227)

Every step carries targets the same way (``augtool.pipeline.steps``): a
geometric step maps them by the matrix its pixels are warped by, an
albumentations step moves them with albumentations' own box support, a step
that changes colours only leaves them where they are, up to the resize to the
output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augtool.defaults import DEFAULT_MIN_VISIBILITY, DEFAULT_SIZE
from augtool.errors import OptionError
from augtool.ops.geometry import (
    as3x3,
    crop,
    letterbox,
    policy_window,
)
from augtool.ops.targets import Targets
from augtool.pipeline.builtins import ORIGINAL, STEPS, PcaSettings, Ranges
from augtool.pipeline.plugins import find_plugin
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.pipeline.recipe_toml import parse_recipe, read_recipe_file
from augtool.pipeline.settings import build_settings
from augtool.pipeline.step_run import preprocess_work, run_step
from augtool.pipeline.steps import ORIGINAL_NAME, PCA, Params, StepType, output_rng
from augtool.store.decode import choose_reduction, decode_rgb, image_size, read_image_file

#: Output size: a side length, or ``(width, height)``.
Size = int | tuple[int, int]


@dataclass(frozen=True)
class PipelineStep:
    """One step of a pipeline, ready to run.

    Attributes:
        name: Its name in the recipe, file names and the manifest.
        step_type: What it does (:class:`augtool.pipeline.steps.StepType`).
        settings: Its typed settings (an instance of ``step_type.settings``).
        at: Where an ``apply`` step runs: ``output`` or ``work``.
    """

    name: str
    step_type: StepType
    settings: Any
    at: str


@dataclass(frozen=True)
class Sample:
    """One output: the image, the parameters it was made with, and its targets.

    Attributes:
        step: The step's name (``original`` and ``pca`` included).
        image: ``(H, W, 3)`` uint8 RGB, the output size.
        params: The parameters, as ``expand`` records them in the manifest.
        targets: The targets on the image (settled), or None if none were given.
    """

    step: str
    image: np.ndarray
    params: Params
    targets: Targets | None = None


@dataclass(frozen=True)
class Prepared:
    """A source ready for its steps (:meth:`Pipeline.prepare`).

    Attributes:
        work: The working image after the recipe's preprocessing.
        work_scale: Pixels of ``work`` per source pixel, ``(sx, sy)``.
        canvas: The preprocessed source's size, in source pixels (the source's
            own, unless a ``crop`` or ``pad`` policy squared it).
        targets: Its targets on that canvas, or None.
    """

    work: np.ndarray
    work_scale: tuple[float, float]
    canvas: tuple[float, float]
    targets: Targets | None


@dataclass(frozen=True)
class Pipeline:
    """The steps copies cycle through, with their preprocessing and the PCA copies' settings.

    Build one with :meth:`paper`, :meth:`from_recipe`, :meth:`from_dict` or
    :func:`load_recipe`.

    Attributes:
        recipe: The recipe it was built from (recorded in ``augtool.json``).
        steps: The resolved steps, in cycle order.
        pca: Settings of the ``pca`` copies.
    """

    recipe: Recipe
    steps: tuple[PipelineStep, ...]
    pca: PcaSettings = field(default_factory=PcaSettings)

    @classmethod
    def from_recipe(cls, recipe: Recipe, pca: PcaSettings | None = None) -> Pipeline:
        """Resolve a checked recipe: built-ins, plug-ins, albumentations.

        Raises:
            OptionError: If a plug-in cannot be imported or albumentations is missing.
        """
        steps = []
        for step in recipe.steps:
            if step.kind == "albumentations":
                from augtool.pipeline.albu import albumentations_step

                entry = albumentations_step(
                    step.name, json.loads(step.albumentations), step.at or "output"
                )
            elif step.kind == "plugin":
                entry = find_plugin(step.ref, recipe.plugins).entry
            else:
                entry = STEPS[step.ref]
            settings = build_settings(entry, dict(step.settings), step.name)
            steps.append(PipelineStep(step.name, entry, settings, step.at or entry.at))
        return cls(recipe, tuple(steps), pca or PcaSettings())

    @classmethod
    def paper(
        cls,
        ranges: Ranges | None = None,
        names: tuple[str, ...] | None = None,
        pca: PcaSettings | None = None,
    ) -> Pipeline:
        """The paper's ten steps (``expand``'s default) at ``ranges``, or a subset ``names``."""
        return cls.from_recipe(paper_recipe(ranges, names), pca)

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        pca: PcaSettings | None = None,
        plugins: tuple[str, ...] = (),
    ) -> Pipeline:
        """A pipeline from recipe data, the structure of a recipe file (``docs/recipes.md``).

        Args:
            data: The recipe's structure.
            pca: Settings of the ``pca`` copies.
            plugins: Modules (names or ``.py`` paths) the caller names, whose
                transforms the recipe's ``plugin`` steps may name.

        Raises:
            OptionError: Naming the key, for anything a recipe file may not hold.
        """
        return cls.from_recipe(parse_recipe(data, "the pipeline", plugins=plugins), pca)

    @property
    def names(self) -> tuple[str, ...]:
        """Step names, in the order copies cycle through them."""
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> PipelineStep:
        """The step called ``name``.

        Raises:
            OptionError: Naming ``step``, when the pipeline has no such step.
        """
        for s in self.steps:
            if s.name == name:
                return s
        choices = ", ".join((ORIGINAL_NAME, *self.names, PCA))
        raise OptionError("step", f"no step {name!r} in this pipeline; its steps: {choices}")

    def apply(
        self,
        image: np.ndarray,
        step: str,
        *,
        seed: int = 0,
        source: str | None = None,
        copy: int = 1,
        rng: np.random.Generator | None = None,
        size: Size = DEFAULT_SIZE,
        work_scale: tuple[float, float] = (1.0, 1.0),
        targets: Targets | None = None,
        letterboxed: bool = False,
        min_visibility: float = DEFAULT_MIN_VISIBILITY,
    ) -> Sample:
        """Run one step on one image and its targets, as an ``expand`` worker does.

        Args:
            image: ``(H, W, 3)`` uint8 RGB: the source, or the source decoded at a
                reduced working resolution (then give ``work_scale``).
            step: A step name, ``original`` or ``pca``.
            seed: The run seed (``expand``'s ``seed``).
            source: The source file's sha256 (hex), which ``expand`` keys outputs
                by; default: the sha256 of the image's pixels.
            copy: The copy index (1, 2, ... for augmented copies).
            rng: Draw from this generator instead of the one of ``(seed, source, copy)``.
            size: Output side, or ``(width, height)``.
            work_scale: Pixels of ``image`` per source pixel, ``(sx, sy)``.
            targets: The source's targets (:meth:`Targets.from_boxes`, on the
                source's pixels), or None.
            letterboxed: Keep the canvas' aspect ratio between black bars
                (the paper's steps only).
            min_visibility: Drop a box when less than this fraction of it stays
                in the output.

        Returns:
            The output image, its parameters and its targets.

        Raises:
            OptionError: For an unknown step, targets through a step that cannot
                carry them, or ``letterboxed`` with a step it does not support.
            ValueError: If ``image`` is not an RGB uint8 image, or the targets
                are not on the source's grid.
        """
        if rng is None:
            array = np.ascontiguousarray(image)
            rng = output_rng(seed, source or hashlib.sha256(array.tobytes()).hexdigest(), copy)
        prepared = self.prepare(image, work_scale, targets)
        if step != PCA:
            return self.run(
                prepared,
                step,
                rng,
                size=size,
                letterboxed=letterboxed,
                min_visibility=min_visibility,
            )
        original = self.run(
            prepared,
            ORIGINAL_NAME,
            rng,
            size=size,
            letterboxed=letterboxed,
            min_visibility=min_visibility,
        )
        return self.pca_copies(original, [rng], prepared, letterboxed)[0]

    def prepare(
        self,
        image: np.ndarray,
        work_scale: tuple[float, float] = (1.0, 1.0),
        targets: Targets | None = None,
    ) -> Prepared:
        """A source ready for its steps: the recipe's preprocessing done once.

        Args:
            image: ``(H, W, 3)`` uint8 RGB: the source, or the source decoded at a
                reduced working resolution (then give ``work_scale``).
            work_scale: Pixels of ``image`` per source pixel, ``(sx, sy)``.
            targets: The source's targets (on the source's pixels), or None.

        Raises:
            ValueError: If ``image`` is not an RGB uint8 image, or the targets
                are not on the source's grid.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}"
            )
        sx, sy = work_scale
        source_px = (round(image.shape[1] / sx), round(image.shape[0] / sy))
        if targets is not None and targets.size != (float(source_px[0]), float(source_px[1])):
            raise ValueError(f"targets are on a {targets.size} grid, the source is {source_px}")
        preprocess = self.recipe.preprocess
        work = preprocess_work(image, preprocess)
        canvas: tuple[float, float] = source_px
        if preprocess.resize != "squash":
            x0, y0, side = policy_window(image.shape[1], image.shape[0], preprocess.resize)
            canvas = (side / sx, side / sy)
            if targets is not None:  # clipped here: what the policy cuts off is gone
                window = as3x3(crop(x0 / sx, y0 / sy, *canvas)[0])
                targets = targets.mapped(window, canvas).settled()
        return Prepared(work, (sx, sy), canvas, targets)

    def run(
        self,
        prepared: Prepared,
        step: str,
        rng: np.random.Generator,
        *,
        size: Size = DEFAULT_SIZE,
        letterboxed: bool = False,
        min_visibility: float = DEFAULT_MIN_VISIBILITY,
    ) -> Sample:
        """One output of a prepared source: a step's parameters drawn from ``rng``, then applied.

        Args:
            prepared: The source (:meth:`prepare`).
            step: A step name, or ``original`` (``pca`` copies: :meth:`pca_copies`).
            rng: The output's generator (:func:`augtool.pipeline.steps.output_rng`).
            size: Output side, or ``(width, height)``.
            letterboxed: Keep the canvas' aspect ratio between black bars.
            min_visibility: Drop a box when less than this fraction of it stays.

        Raises:
            OptionError: For an unknown step, targets through a step that cannot
                carry them, or ``letterboxed`` with a step it does not support.
        """
        out = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if step == ORIGINAL_NAME:
            chosen = PipelineStep(step, ORIGINAL, ORIGINAL.settings(), ORIGINAL.at)
            params: Params = {}
        else:
            chosen = self.step(step)
            params = chosen.step_type.sample(rng, chosen.settings)
        result, targets = run_step(
            chosen,
            prepared.work,
            params,
            prepared.work_scale,
            prepared.canvas,
            out,
            prepared.targets,
            letterboxed,
            min_visibility,
        )
        if targets is not None:
            targets = targets.settled(min_visibility)
        return Sample(step, result, params, targets)

    def pca_copies(
        self,
        original: Sample,
        rngs: Sequence[np.random.Generator],
        prepared: Prepared,
        letterboxed: bool = False,
    ) -> list[Sample]:
        """The ``pca`` copies of an original output, one per generator, in one batched call.

        The copies move no pixel: each keeps the original's targets. A
        letterboxed original is jittered in its picture, not in its black bars.

        Args:
            original: The ``original`` output (:meth:`run`).
            rngs: Each copy's generator; the alphas are drawn from it.
            prepared: The source it was made from.
            letterboxed: The original was letterboxed.
        """
        from augtool.ops.pca import apply_pca, sample_alphas

        pca = self.pca
        alphas = np.stack([sample_alphas(rng, 1, pca.k, pca.std)[0] for rng in rngs])
        image = original.image
        window = np.s_[:, :]
        if letterboxed:
            (fw, fh), (ox, oy) = letterbox(prepared.canvas, (image.shape[1], image.shape[0]))
            window = np.s_[oy : oy + fh, ox : ox + fw]
        batch = np.repeat(image[window][None], len(rngs), axis=0)
        result = apply_pca(batch, alphas, mode=pca.mode, scale=pca.scale)
        copies = []
        for j in range(len(rngs)):
            jittered = np.zeros_like(image)
            jittered[window] = result.images[j]
            params = {
                "alphas": [float(a) for a in alphas[j]],
                "eigenvalues": [float(v) for v in result.eigenvalues[j]],
                "std": pca.std,
                "k": pca.k,
                "mode": pca.mode,
                "scale": pca.scale,
            }
            copies.append(Sample(PCA, jittered, params, original.targets))
        return copies

    def apply_file(
        self,
        path: str | Path,
        step: str,
        *,
        seed: int = 0,
        copy: int = 1,
        size: Size = DEFAULT_SIZE,
        targets: Targets | None = None,
        letterboxed: bool = False,
        min_visibility: float = DEFAULT_MIN_VISIBILITY,
    ) -> Sample:
        """:meth:`apply` to a source file, decoded and keyed as ``expand`` does.

        The file is decoded at the working resolution ``expand`` picks for
        ``size`` and keyed by its sha256, so the output is ``expand``'s own.

        Raises:
            InputError: If the file cannot be read or decoded.
        """
        data = read_image_file(path)
        width, height = image_size(data, str(path))
        out = (size, size) if isinstance(size, int) else size
        work = decode_rgb(data, choose_reduction(width, height, max(out)), str(path))
        return self.apply(
            work,
            step,
            seed=seed,
            source=hashlib.sha256(data).hexdigest(),
            copy=copy,
            size=size,
            work_scale=(work.shape[1] / width, work.shape[0] / height),
            targets=targets,
            letterboxed=letterboxed,
            min_visibility=min_visibility,
        )


#: Pipelines built in this process, by recipe, plug-in modules and PCA settings.
_BUILT: dict[tuple[str, tuple[str, ...], PcaSettings], Pipeline] = {}


def cached_pipeline(recipe: Recipe, pca: PcaSettings | None = None) -> Pipeline:
    """The pipeline of a recipe, built once per process (workers render many sources).

    Plug-in steps are found in the modules the user named (``recipe.plugins``,
    imported here in a worker process that has not imported them yet) or in
    installed packages, never through what a recorded recipe says.
    """
    key = (recipe.key(), recipe.plugins, pca or PcaSettings())
    if key not in _BUILT:
        if len(_BUILT) >= 16:
            _BUILT.clear()
        _BUILT[key] = Pipeline.from_recipe(recipe, pca)
    return _BUILT[key]


def load_recipe(
    value: str | Path, pca: PcaSettings | None = None, plugins: tuple[str, ...] = ()
) -> Pipeline:
    """Read a recipe file, or a shipped recipe by name (``paper``, ``curator``...), as a pipeline.

    Args:
        value: A recipe file's path or a shipped recipe's name.
        pca: Settings of the ``pca`` copies.
        plugins: Modules the caller names whose transforms the recipe may name.

    Raises:
        OptionError: As :func:`~augtool.pipeline.recipe_toml.read_recipe_file`: the file,
            line and key.
    """
    return Pipeline.from_recipe(read_recipe_file(value, plugins), pca)


def as_recipe(value: str | Path | Recipe | Pipeline, plugins: tuple[str, ...] = ()) -> Recipe:
    """A recipe given as a file, a shipped recipe's name, a :class:`Recipe` or a :class:`Pipeline`.

    Args:
        value: What names the recipe.
        plugins: Modules the user named whose steps a recipe file may name.

    Raises:
        OptionError: As :func:`~augtool.pipeline.recipe_toml.read_recipe_file`.
    """
    if isinstance(value, Pipeline):
        return value.recipe
    if isinstance(value, Recipe):
        return value
    return read_recipe_file(value, plugins)
