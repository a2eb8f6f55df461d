"""Worker side of ``expand``: decode one source once and render all its outputs.

Runs in worker processes. Everything a task needs travels in the task, and
each output's parameters come from its own generator (``plan.output_rng``), so
the bytes do not depend on which worker runs what, or in which order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from augtool.errors import InputError
from augtool.ops.resize import resize_to
from augtool.pipeline.builtins import PcaSettings, Ranges
from augtool.pipeline.core import cached_pipeline, preprocess_work
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.pipeline.steps import ORIGINAL_NAME, PCA, output_rng
from augtool.store.decode import choose_reduction, decode_rgb
from augtool.store.encode import encode_image, payload_sha256
from augtool.transforms import WorkScale
from augtool.worker_lifetime import die_with_parent

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
    (:mod:`augtool.pool`); other workers (joblib, Dask) decode as before.
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
        ranges: Transform parameter ranges.
        seed: Run seed.
        encoding: ``png``, ``jpg`` or ``array``.
        jpeg_quality: JPEG quality when ``encoding == "jpg"``.
        pca: PCA jitter options.
        recipe: The transforms and preprocessing (``--recipe``); None: the
            paper's ten at ``ranges``.
        height: Output height when it differs from ``size`` (``--size WxH``:
            ``size`` is then the width); None for ``size x size``.
        letterbox: Keep each transform's canvas aspect ratio in the output,
            centred between black bars, instead of squashing it.
    """

    size: int
    ranges: Ranges
    seed: int
    encoding: str = "png"
    jpeg_quality: int = 95
    pca: PcaSettings = field(default_factory=PcaSettings)
    recipe: Recipe | None = None
    height: int | None = None
    letterbox: bool = False

    @property
    def out_size(self) -> int | tuple[int, int]:
        """What the transforms resize to: the side, or ``(width, height)``."""
        return self.size if self.height is None else (self.size, self.height)

    def effective_recipe(self) -> Recipe:
        """The recipe that runs: ``recipe``, or the paper's at ``ranges``."""
        return self.recipe if self.recipe is not None else _paper(self.ranges)


@lru_cache(maxsize=8)
def _paper(ranges: Ranges) -> Recipe:
    return paper_recipe(ranges)


@dataclass(frozen=True)
class SourceTask:
    """All outputs of one source.

    Attributes:
        path: Absolute path of the source file.
        sha256: Its hash at scan time (checked again here).
        width: Width in pixels (from the scan).
        height: Height in pixels.
        jobs: ``(plan index, copy, transform)`` of each output, copy 0 first.
    """

    path: str
    sha256: str
    width: int
    height: int
    jobs: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class Rendered:
    """One rendered output.

    Attributes:
        index: Position in the plan.
        payload: Encoded file bytes, or the ``(S, S, 3)`` array for HDF5.
        params: The transform parameters as JSON.
        sha256: Hash of the payload (file bytes, or C-order array bytes).
    """

    index: int
    payload: bytes | np.ndarray
    params: str
    sha256: str


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
        InputError: If the file changed since the scan or cannot be decoded.
    """
    if data is None:
        try:
            data = Path(task.path).read_bytes()
        except OSError as err:
            raise InputError(f"{task.path}: cannot read ({err.strerror}); was it moved?") from err
    if hashlib.sha256(data).hexdigest() != task.sha256:
        raise InputError(f"{task.path}: file changed while augtool was running; run again")
    reduction = choose_reduction(task.width, task.height, max(settings.size, settings.height or 0))
    kept = _PRELOADED.get((task.sha256, reduction))
    # A copy: a plug-in may change its input in place, and the kept image serves every run.
    work = decode_rgb(data, reduction, task.path) if kept is None else kept.copy()
    work_scale = (work.shape[1] / task.width, work.shape[0] / task.height)
    recipe = settings.effective_recipe()
    steps = cached_pipeline(recipe)
    work = preprocess_work(work, recipe.preprocess)
    images: list[np.ndarray] = []
    params: list[dict] = []
    pca_jobs: list[int] = []
    for pos, (_, copy, name) in enumerate(task.jobs):
        rng = output_rng(settings.seed, task.sha256, copy)
        if name == PCA:
            pca_jobs.append(pos)
            images.append(images[0])
            params.append({})
            continue
        step = None if name == ORIGINAL_NAME else steps.step(name)
        p = {} if step is None else step.step_type.sample(rng, step.settings)
        if settings.letterbox:
            source = (float(task.width), float(task.height))
            images.append(letterboxed(name, work, p, work_scale, source, settings.out_size))
        elif step is None:
            images.append(resize_to(work, settings.out_size))
        else:
            images.append(step.step_type.run(work, p, work_scale, settings.out_size, step.at))
        params.append(p)
    if pca_jobs:
        _apply_pca(task, settings, images, params, pca_jobs)
    return [
        _encode(index, img, p, settings)
        for (index, _, _), img, p in zip(task.jobs, images, params, strict=True)
    ]


def letterboxed(
    name: str,
    work: np.ndarray,
    params: dict,
    work_scale: WorkScale,
    source: tuple[float, float],
    size: int | tuple[int, int],
) -> np.ndarray:
    """One transform's output with its canvas' aspect ratio kept, black bars around it.

    The canvas (``augtool.transforms.geometry``) is resized to the largest
    size that fits (``augtool.boxes.letterbox``, which the boxes use too) and
    centred in the output.
    """
    from augtool.boxes import letterbox
    from augtool.transforms import geometry, get_transform

    out = (size, size) if isinstance(size, int) else size
    (fw, fh), (ox, oy) = letterbox(geometry(name, params, *source)[1], out)
    image = get_transform(name).apply(work, params, work_scale, (fw, fh))
    result = np.zeros((out[1], out[0], 3), np.uint8)
    result[oy : oy + fh, ox : ox + fw] = image
    return result


def render_in_worker(task: SourceTask, settings: RenderSettings) -> list[Rendered]:
    """:func:`render_source` in a worker process, which ends if the main process is killed."""
    die_with_parent()
    return render_source(task, settings)


def _apply_pca(
    task: SourceTask,
    settings: RenderSettings,
    images: list[np.ndarray],
    params: list[dict],
    positions: list[int],
) -> None:
    """Change the original's colours once per PCA copy, in one batched call."""
    from augtool.ops.pca import apply_pca, sample_alphas

    pca = settings.pca
    alphas = np.stack(
        [
            sample_alphas(
                output_rng(settings.seed, task.sha256, task.jobs[pos][1]), 1, pca.k, pca.std
            )[0]
            for pos in positions
        ]
    )
    original = images[0]
    window = np.s_[:, :]
    if settings.letterbox:  # jitter the picture, not its black bars: then pad it again
        from augtool.boxes import letterbox
        from augtool.transforms import geometry

        out = original.shape[1], original.shape[0]
        source = (float(task.width), float(task.height))
        (fw, fh), (ox, oy) = letterbox(geometry(ORIGINAL_NAME, {}, *source)[1], out)
        window = np.s_[oy : oy + fh, ox : ox + fw]
    batch = np.repeat(original[window][None], len(positions), axis=0)
    result = apply_pca(batch, alphas, mode=pca.mode, scale=pca.scale)
    for j, pos in enumerate(positions):
        image = np.zeros_like(original)
        image[window] = result.images[j]
        images[pos] = image
        params[pos] = {
            "alphas": [float(a) for a in alphas[j]],
            "eigenvalues": [float(v) for v in result.eigenvalues[j]],
            "std": pca.std,
            "k": pca.k,
            "mode": pca.mode,
            "scale": pca.scale,
        }


def _encode(index: int, image: np.ndarray, params: dict, settings: RenderSettings) -> Rendered:
    params_json = json.dumps(params, sort_keys=True)
    if settings.encoding == "array":
        payload: bytes | np.ndarray = np.ascontiguousarray(image)
    else:
        payload = encode_image(image, settings.encoding, settings.jpeg_quality, f"output {index}")
    return Rendered(index, payload, params_json, payload_sha256(payload))
