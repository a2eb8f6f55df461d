"""Worker side of ``expand``: decode one source once and render all its outputs.

Runs in worker processes. Everything a task needs travels in the task, and
each output's parameters come from its own generator
(:func:`augtool.pipeline.steps.output_rng`), so the bytes do not depend on
which worker runs what, or in which order. Every output is made by the one
pipeline (:class:`augtool.pipeline.core.Pipeline`), its targets with it: a
detection run's boxes come back from the worker where its pixels are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from augtool.defaults import DEFAULT_MIN_VISIBILITY, DEFAULT_SIZE
from augtool.engine.pool import die_with_parent
from augtool.errors import InputError
from augtool.ops.targets import Targets
from augtool.pipeline.builtins import PcaSettings
from augtool.pipeline.core import Sample, cached_pipeline
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.pipeline.steps import ORIGINAL_NAME, PCA, output_rng
from augtool.store.decode import choose_reduction, decode_rgb
from augtool.store.encode import encode_image, payload_sha256

if TYPE_CHECKING:  # segmentation's modules load only for a run with masks
    from augtool.engine.segmented import OutputMasks, SourceMasks

#: Encodings a worker can produce: PNG or JPEG bytes for folder output, raw arrays for HDF5.
ENCODINGS = ("png", "jpg", "array")

#: Sources already decoded by the scan, by ``(sha256, reduction)`` (see :func:`preloaded`).
_PRELOADED: dict[tuple[str, int], np.ndarray] = {}


@contextlib.contextmanager
def preloaded(pixels: Mapping[tuple[str, int], np.ndarray]) -> Iterator[None]:
    """Let :func:`render_source` use sources the scan decoded, instead of decoding them again.

    ``pixels`` maps ``(sha256, reduction)`` to what :func:`augtool.store.decode.decode_rgb`
    returns for the file with that hash at that reduction, so using it changes
    no byte. Worker processes forked inside the block inherit it
    (:mod:`augtool.engine.pool`); other workers (joblib, Dask) decode as before.
    """
    _PRELOADED.update(pixels)
    try:
        yield
    finally:
        _PRELOADED.clear()


@dataclass(frozen=True)
class RenderSettings:
    """What every task of a run shares.

    Attributes:
        size: Output side length.
        seed: Run seed.
        recipe: The steps and preprocessing (the paper's ten by default).
        encoding: ``png``, ``jpg`` or ``array``.
        jpeg_quality: JPEG quality when ``encoding == "jpg"``.
        pca: PCA jitter options.
        height: Output height when it differs from ``size`` (``--size WxH``:
            ``size`` is then the width); None for ``size x size``.
        letterbox: Keep each step's canvas aspect ratio in the output,
            centred between black bars, instead of squashing it.
        min_visibility: Detection: a box is dropped when less than this
            fraction of it stays inside the output (segmentation: of an
            instance's area).
        tight_boxes: Segmentation: each instance's box is that of its mapped
            mask; False: its source box mapped as a box.
    """

    size: int = DEFAULT_SIZE
    seed: int = 0
    recipe: Recipe = field(default_factory=paper_recipe)
    encoding: str = "png"
    jpeg_quality: int = 95
    pca: PcaSettings = field(default_factory=PcaSettings)
    height: int | None = None
    letterbox: bool = False
    min_visibility: float = DEFAULT_MIN_VISIBILITY
    tight_boxes: bool = True

    @property
    def out_size(self) -> int | tuple[int, int]:
        """What the steps resize to: the side, or ``(width, height)``."""
        return self.size if self.height is None else (self.size, self.height)


@dataclass(frozen=True)
class SourceTask:
    """All outputs of one source.

    Attributes:
        path: Absolute path of the source file.
        sha256: Its hash at scan time (checked again here).
        width: Width in pixels (from the scan).
        height: Height in pixels.
        jobs: ``(plan index, copy, step)`` of each output, copy 0 first.
        boxes: Detection: the source's boxes ``(x0, y0, x1, y1)`` in its
            pixels, which every output carries; None otherwise.
        masks: Segmentation: the source's masks, which every output carries;
            None otherwise.
    """

    path: str
    sha256: str
    width: int
    height: int
    jobs: tuple[tuple[int, int, str], ...]
    boxes: tuple[tuple[float, float, float, float], ...] | None = None
    masks: SourceMasks | None = None


@dataclass(frozen=True)
class Rendered:
    """One rendered output.

    Attributes:
        index: Position in the plan.
        payload: Encoded file bytes, or the ``(S, S, 3)`` array for HDF5.
        params: The step's parameters as JSON.
        sha256: Hash of the payload (file bytes, or C-order array bytes).
        boxes: Detection: the boxes on the output, ``(M, 4)`` float64 in its
            pixels (clipped; those mostly lost dropped); None otherwise.
        ids: The position of each among the source's boxes, ``(M,)``.
        masks: Segmentation: the masks on the output; None otherwise.
    """

    index: int
    payload: bytes | np.ndarray
    params: str
    sha256: str
    boxes: np.ndarray | None = None
    ids: np.ndarray | None = None
    masks: OutputMasks | None = None


def render_source(
    task: SourceTask, settings: RenderSettings, data: bytes | None = None
) -> list[Rendered]:
    """Decode a source once and render every output planned for it.

    Args:
        task: The source and its jobs.
        settings: Shared run settings.
        data: The source file's bytes, when the caller read them (a cluster
            worker that cannot see ``task.path``); read from ``task.path`` if None.

    Returns:
        The outputs, in the order of ``task.jobs``.

    Raises:
        InputError: If the file cannot be read or decoded, or changed since the
            scan (checked when the scan did not keep its pixels: kept pixels
            were decoded from the bytes the scan hashed).
    """
    reduction = choose_reduction(task.width, task.height, max(settings.size, settings.height or 0))
    kept = _PRELOADED.get((task.sha256, reduction))
    if kept is not None:
        # Decoded by the scan from the bytes it hashed: the file need not be read again.
        # A copy: a plug-in may change its input in place, and the kept image serves every run.
        work = kept.copy()
    else:
        if data is None:
            try:
                data = Path(task.path).read_bytes()
            except OSError as err:
                raise InputError(
                    f"{task.path}: cannot read ({err.strerror}); was it moved?"
                ) from err
        if hashlib.sha256(data).hexdigest() != task.sha256:
            raise InputError(f"{task.path}: file changed while augtool was running; run again")
        work = decode_rgb(data, reduction, task.path)
    pipeline = cached_pipeline(settings.recipe, settings.pca)
    targets = None
    if task.boxes is not None:
        targets = Targets.from_boxes(task.boxes, (task.width, task.height))
    if task.masks is not None:
        targets = task.masks.targets((task.width, task.height), settings.tight_boxes)
    work_scale = (work.shape[1] / task.width, work.shape[0] / task.height)
    prepared = pipeline.prepare(work, work_scale, targets)
    samples: list[Sample] = []
    pca_at: list[int] = []
    pca_rngs: list[np.random.Generator] = []
    for pos, (_, copy, name) in enumerate(task.jobs):
        rng = output_rng(settings.seed, task.sha256, copy)
        if name == PCA:
            pca_at.append(pos)
            pca_rngs.append(rng)
            samples.append(samples[0])  # replaced below, in one batched call
            continue
        samples.append(
            pipeline.run(
                prepared,
                name,
                rng,
                size=settings.out_size,
                letterboxed=settings.letterbox,
                min_visibility=settings.min_visibility,
            )
        )
    if pca_at:
        assert samples[0].step == ORIGINAL_NAME, "copy 0 comes first"
        copies = pipeline.pca_copies(samples[0], pca_rngs, prepared, settings.letterbox)
        for pos, sample in zip(pca_at, copies, strict=True):
            samples[pos] = sample
    return [
        _encode(index, sample, settings)
        for (index, _, _), sample in zip(task.jobs, samples, strict=True)
    ]


def render_in_worker(task: SourceTask, settings: RenderSettings) -> list[Rendered]:
    """:func:`render_source` in a worker process, which ends if the main process is killed."""
    die_with_parent()
    return render_source(task, settings)


def _encode(index: int, sample: Sample, settings: RenderSettings) -> Rendered:
    params_json = json.dumps(sample.params, sort_keys=True)
    if settings.encoding == "array":
        payload: bytes | np.ndarray = np.ascontiguousarray(sample.image)
    else:
        image = sample.image
        payload = encode_image(image, settings.encoding, settings.jpeg_quality, f"output {index}")
    boxes = ids = masks = None
    if sample.targets is not None:
        boxes, ids = sample.targets.boxes, sample.targets.ids
        if sample.targets.shapes is not None or sample.targets.semantic is not None:
            from augtool.engine.segmented import OutputMasks

            masks = OutputMasks.of(sample.targets)
    return Rendered(index, payload, params_json, payload_sha256(payload), boxes, ids, masks)
