"""Generated blood-smear images: demo data when no real smears are at hand (docs/synth.md).

Each image is a stained peripheral smear seen through a bright-field microscope,
drawn after the paper's §1 description of the three classes:

* red cells: pink discs, about 7-8 % of the image width across, with a pale
  centre; their number (crowding) varies from sparse to packed;
* ``normal``: a white cell about the size of a red cell (0.9-1.3x) with a dense,
  clumped purple nucleus: a neutrophil (2-5 lobes), a lymphocyte (round
  nucleus filling most of the cell: a look-alike of the ALL blast) or, now and
  then, a monocyte (kidney-shaped nucleus, up to 1.5x: a look-alike of the AML
  blast without granules or Auer rods);
* ``ALL``: a blast about twice a red cell (1.7-2.3x), nucleus 80-90 % of the
  cell area, smooth with fine chromatin, a thin rim of pale blue cytoplasm;
* ``AML``: a blast of the same size range, nucleus 50-60 %, eccentric, with
  nucleoli; granular cytoplasm holding 1-3 Auer rods (short purple stripes).

One white cell of the image's class sits near the centre (jittered), as in the
ALL-IDB crops; some images carry further white cells cut by the border.

The picture is formed physically: every cell adds stain density to one of four
stain channels and the light through the slide is ``I0 * exp(-density @ OD)``
(Beer-Lambert), so overlapping cells darken as on a real slide. Stain colours,
illumination (vignetting, gradient), focus (blur), crowding, sensor noise and
JPEG quality vary per image and independently of the class, so colour or
brightness alone does not tell the classes apart.

Sampling and drawing are separate: :func:`sample_scene` draws every random
choice from the generator it is given into a frozen :class:`Scene`, and
:func:`draw_scene` is a pure function of that scene (its texture and noise come
from a seed stored in the scene). :func:`synthesize` gives every image its own
generator derived from ``(seed, class index, image index)`` with
:class:`numpy.random.SeedSequence`, so changing one class's count leaves the
images of the other classes byte-identical.

This module uses numpy and OpenCV only (never albumentations).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augtool import defaults
from augtool.annotations.coco_masks import COCO_MASKS_FILE, coco_masks_json
from augtool.annotations.png_masks import CLASSES_FILE, png_mask_files, write_files
from augtool.annotations.segmentation import ImageMasks
from augtool.errors import OptionError, OutputError, OutputRefused, literal
from augtool.progress import NoProgress, Progress
from augtool.store.publish import staged_folder
from augtool.tools.smear.cell_models import nucleus_fraction
from augtool.tools.smear.draw import draw_scene
from augtool.tools.smear.scene import (
    CLASSES,
    DEFAULT_SIZE,
    Scene,
    check_class,
    check_size,
    sample_scene,
)
from augtool.tools.smear.truth import CELL_CLASSES, SEMANTIC_CLASSES, cell_instances, class_map

__all__ = [
    "CELL_CLASSES",
    "CLASSES",
    "DEFAULT_PER_CLASS",
    "DEFAULT_SIZE",
    "SEMANTIC_CLASSES",
    "Scene",
    "SynthSummary",
    "draw_scene",
    "image_rng",
    "nucleus_fraction",
    "render_smear",
    "sample_scene",
    "synthesize",
]

#: The paper's source counts (49 ALL, 33 AML, 59 normal = 141).
DEFAULT_PER_CLASS: dict[str, int] = defaults.DEFAULT_PER_CLASS


def render_smear(
    cls: str, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_SIZE
) -> np.ndarray:
    """One generated smear of class ``cls``: ``draw_scene(sample_scene(...))``.

    Args:
        cls: One of :data:`CLASSES` (``"ALL"``, ``"AML"``, ``"normal"``).
        rng: The generator all random choices come from (it is advanced).
        size: Image size as (width, height).

    Returns:
        An (H, W, 3) uint8 RGB array.

    Raises:
        OptionError: ``cls`` or ``size`` is invalid.
    """
    return draw_scene(sample_scene(cls, rng, size))


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` wrote.

    Attributes:
        out: The output folder.
        counts: Images written per class, in :data:`CLASSES` order.
        size: Image size as (width, height).
        seed: The seed used.
        seconds: Wall time of the run.
    """

    out: Path
    counts: dict[str, int]
    size: tuple[int, int]
    seed: int
    seconds: float

    def line(self) -> str:
        """One-line human summary, e.g. for the command line."""
        per = ", ".join(f"{cls} {n}" for cls, n in self.counts.items())
        return (
            f"wrote {sum(self.counts.values())} images ({per}) at "
            f"{self.size[0]}x{self.size[1]}, seed {self.seed}, to {self.out} "
            f"in {self.seconds:.1f} s"
        )


def image_rng(seed: int, class_index: int, image_index: int) -> np.random.Generator:
    """The generator of one image, independent of every other image's.

    Args:
        seed: The run's seed.
        class_index: Index of the class in :data:`CLASSES`.
        image_index: Index of the image within its class.

    Returns:
        A fresh generator seeded from ``SeedSequence((seed, class_index, image_index))``.
    """
    return np.random.default_rng(np.random.SeedSequence((seed, class_index, image_index)))


def _check_per_class(per_class: Mapping[str, int]) -> dict[str, int]:
    """Validated counts in :data:`CLASSES` order, classes with 0 left out."""
    if not isinstance(per_class, Mapping):
        raise OptionError("per_class", f"expected a mapping class -> count, got {per_class!r}")
    counts: dict[str, int] = {}
    for cls, n in per_class.items():
        check_class(cls, "per_class")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise OptionError("per_class", f"count for {cls} must be an integer >= 0, got {n!r}")
    for cls in CLASSES:
        if per_class.get(cls, 0) > 0:
            counts[cls] = int(per_class[cls])
    if not counts:
        raise OptionError("per_class", "asks for no images; give at least one class a count > 0")
    return counts


def _check_quality(quality_range: tuple[int, int]) -> tuple[int, int]:
    """Validated inclusive JPEG quality range."""
    try:
        lo, hi = quality_range
    except (TypeError, ValueError):
        raise OptionError(
            "jpeg_quality_range", f"expected (low, high), got {quality_range!r}"
        ) from None
    if not all(isinstance(q, int | np.integer) for q in (lo, hi)) or not (1 <= lo <= hi <= 100):
        raise OptionError(
            "jpeg_quality_range", f"need 1 <= low <= high <= 100, got {quality_range!r}"
        )
    return int(lo), int(hi)


def synthesize(
    out: Path | str,
    per_class: Mapping[str, int] | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    jpeg_quality_range: tuple[int, int] = (75, 95),
    overwrite: bool = False,
    progress: Progress | None = None,
    masks: Path | str | None = None,
) -> SynthSummary:
    """Write a generated dataset ``OUT/<class>/<class>_<nnn>.jpg``.

    Image ``i`` of class ``c`` is drawn from :func:`image_rng` ``(seed, index
    of c, i)`` (its JPEG quality too), so it does not depend on the other
    classes' counts. The images are written into a temporary sibling folder
    that is renamed to ``out`` at the end: ``out`` never holds a partial set.

    With ``masks``, every cell's exact mask (:mod:`augtool.tools.smear.truth`) is
    written there too, for the images in ``out``:

    * ``annotations.json``: COCO instance segmentation (``file_name`` relative
      to ``out``; each cell an outline along its pixel edges, which gives its
      pixels back exactly);
    * ``instances/<class>/<class>_<nnn>.png`` and ``.json``: instance-id map
      (cells numbered as painted, a later one on top where two overlap) and
      its class table;
    * ``semantic/<class>/<class>_<nnn>.png`` and ``semantic/classes.txt``:
      class-index map over :data:`SEMANTIC_CLASSES`.

    The images are the same bytes with or without ``masks``.

    Args:
        out: Output folder; it must not exist, or be empty, unless ``overwrite``.
        per_class: Images per class; keys among :data:`CLASSES`. Classes left
            out (or with 0) are not generated. Default: :data:`DEFAULT_PER_CLASS`.
        size: Image size as (width, height).
        seed: Non-negative integer seed.
        jpeg_quality_range: Inclusive range the per-image JPEG quality is drawn from.
        overwrite: Replace a non-empty ``out`` (and ``masks``).
        progress: Told of the ``synth`` phase (one step per image); ``None``: silent.
        masks: Folder for the cells' masks, outside ``out``; the same rules as
            ``out`` apply. ``None``: no masks.

    Returns:
        A :class:`SynthSummary`.

    Raises:
        OptionError: An argument is invalid (the message names it).
        OutputError: ``out`` or ``masks`` is not an empty folder and ``overwrite``
            is off, or it cannot be written.
    """
    started = time.perf_counter()
    counts = _check_per_class(DEFAULT_PER_CLASS if per_class is None else per_class)
    width, height = check_size(size, "size")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise OptionError("seed", f"must be an integer >= 0, got {seed!r}")
    lo, hi = _check_quality(jpeg_quality_range)
    out = Path(out)
    masks_out = None if masks is None else Path(masks)
    if masks_out is not None:
        a, b = out.resolve(), masks_out.resolve()
        if a == b or a in b.parents or b in a.parents:
            raise OptionError(
                "masks",
                f"must be a folder outside {{out}} ({literal(out)}), got {literal(masks_out)}",
                refs=True,
            )
    for folder in (out, masks_out):
        if folder is not None:
            _check_output_folder(folder, overwrite)
    progress = progress or NoProgress()
    try:
        progress.start("synth", sum(counts.values()))
        with contextlib.ExitStack() as stack:
            mask_tmp = None if masks_out is None else stack.enter_context(staged_folder(masks_out))
            tmp = stack.enter_context(staged_folder(out))
            written: list[ImageMasks] = []
            for cls, n in counts.items():
                folder = tmp / cls
                folder.mkdir()
                digits = max(3, len(str(n - 1)))
                class_index = CLASSES.index(cls)
                for i in range(n):
                    rng = image_rng(int(seed), class_index, i)
                    scene = sample_scene(cls, rng, (width, height))
                    image = draw_scene(scene)
                    quality = int(rng.integers(lo, hi + 1))
                    name = f"{cls}_{i:0{digits}d}.jpg"
                    ok, buf = cv2.imencode(
                        ".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]
                    )
                    if not ok:
                        raise OutputError(f"JPEG encoding failed for {name}")
                    (folder / name).write_bytes(buf.tobytes())
                    if mask_tmp is not None:
                        written.append(_write_masks(mask_tmp, f"{cls}/{name}", scene))
                    progress.advance(1)
            if mask_tmp is not None:
                coco = coco_masks_json(written, CELL_CLASSES)
                (mask_tmp / COCO_MASKS_FILE).write_text(coco, encoding="utf-8")
                names = "".join(c + "\n" for c in SEMANTIC_CLASSES)
                (mask_tmp / SEMANTIC / CLASSES_FILE).write_text(names, encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {out}: {err}") from err
    return SynthSummary(
        out=out,
        counts=counts,
        size=(width, height),
        seed=int(seed),
        seconds=time.perf_counter() - started,
    )


#: Where ``synthesize(masks=...)`` writes the instance-id and the class-index maps.
INSTANCES, SEMANTIC = "instances", "semantic"


def _write_masks(folder: Path, image: str, scene: Scene) -> ImageMasks:
    """Write one image's instance-id map, class table and class-index map; return its instances."""
    width, height = scene.size
    item = ImageMasks(image, width, height, cell_instances(scene), class_map(scene), image)
    instances = png_mask_files([item], (), instances=True)
    write_files(folder / INSTANCES, instances)
    semantic = png_mask_files([item], SEMANTIC_CLASSES, instances=False)
    del semantic[CLASSES_FILE]
    write_files(folder / SEMANTIC, semantic)
    return ImageMasks(image, width, height, item.instances, None, image)


def _check_output_folder(out: Path, overwrite: bool) -> None:
    """Refuse an output that is a file, or a non-empty folder without ``overwrite``.

    Raises:
        OutputError: As said, or when its parent cannot be created.
    """
    if out.exists():
        if not out.is_dir():
            raise OutputRefused(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise OutputRefused(
                f"{literal(out)} is not empty; choose another folder or pass {{overwrite}}",
                refs=True,
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create a folder next to {out}: {err}") from err
