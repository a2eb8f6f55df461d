"""``augtool expand``: scan -> split -> plan -> parallel workers -> one writer.

The orchestration only: what each step does lives in ``sources``, ``split``,
``plan``, ``render`` and ``writers``.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from augtool import __version__, defaults
from augtool.annotations.base import FORMATS
from augtool.backends import Backend, LocalBackend, default_workers
from augtool.errors import (
    InputError,
    Message,
    OptionError,
    literal,
    template_of,
)
from augtool.ops.pca import MODES as PCA_MODES
from augtool.ops.pca import SCALES as PCA_SCALES
from augtool.pipeline.builtins import PAPER, PcaSettings, Ranges, parse_step_list
from augtool.pipeline.plugins import user_plugins
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.pipeline.recipe_toml import read_recipe_file, recipe_from_dict
from augtool.plan import Job, make_plan, resolve_target
from augtool.pool import fork_available
from augtool.render import Rendered, RenderSettings, SourceTask, preloaded
from augtool.sources import ScanResult, Source, scan
from augtool.split import (
    LEAK_WARNING,
    SplitSpec,
    check_folds,
    fold_by_group,
    merge_groups,
    parse_split,
    split_by_group,
    split_by_image,
)
from augtool.store.dataset import is_hdf5_path
from augtool.store.schema import SCHEMA_VERSION
from augtool.store.writers import StagedWriter, check_output, open_writer
from augtool.store.writers import complete_after_interrupt as complete_after_interrupt

if TYPE_CHECKING:
    from augtool.detect import DetectionInput, OutputBoxes

#: Keys of a journal entry that are not manifest columns: a detection output's boxes.
JOURNAL_ONLY = ("index", "boxes", "box_ids")

SPLIT_BY = defaults.SPLIT_BY
#: ``ExpandOptions.split``'s default; the only split value ``folds`` accepts besides ``none``.
DEFAULT_SPLIT = defaults.DEFAULT_SPLIT
COMPRESSIONS = defaults.COMPRESSIONS


class Reporter(Protocol):
    """Where ``expand`` reports progress and warnings (the CLI draws bars)."""

    def start(self, phase: str, total: int) -> None:
        """A phase with ``total`` steps begins."""

    def advance(self, n: int) -> None:
        """``n`` more steps of the current phase are done."""

    def warn(self, message: str) -> None:
        """Something the user should know, that does not stop the run."""


class SilentReporter:
    """Reports nothing."""

    def start(self, phase: str, total: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def warn(self, message: str) -> None:
        """Ignore."""


@dataclass(frozen=True)
class ExpandOptions:
    """Every option of ``expand``; the defaults reproduce the paper.

    Attributes:
        size: Output side length (paper: 227).
        target: Conventional outputs wanted, originals included. When neither
            ``target`` nor ``factor`` is given, the paper's 1,492
            (:data:`augtool.defaults.DEFAULT_TARGET`).
        factor: Alternative to ``target``: outputs per source on average
            (``round(factor x sources)``); give one of the two.
        seed: Run seed.
        pca_count: PCA copies (paper: 184 with ``--pca``).
        pca: PCA jitter settings.
        image_format: ``png`` or ``jpg`` (folder output).
        jpeg_quality: JPEG quality.
        output_format: ``folder`` or ``hdf5``; ``None`` picks by the OUT suffix.
        compression: HDF5 compression: ``none``, ``lzf`` or ``gzip``.
        split: ``--split`` text: ``0.7``, ``0.7,0.15,0.15`` or ``none``.
        split_by: ``source`` (no leakage) or ``image`` (the paper's protocol).
        folds: Cross-validation folds K (0: none). Folds replace the fractional
            split: every output's split is ``all`` and its fold (0..K-1) is that of
            its source; groups never cross folds, classes are balanced.
        group_regex: Regular expression naming a source's group.
        no_augment_test: Keep only originals in val/test.
        skip_invalid: Skip bad input files instead of refusing.
        max_pixels: Refuse sources larger than this many pixels.
        workers: Worker processes (not part of the recipe: it never changes bytes).
        overwrite: Replace an existing output.
        resume: Continue the partial output of an interrupted run of the same recipe.
        pipeline: The one pipeline every output is made by: the steps copies
            cycle through, their settings and the preprocessing. By default
            the paper's ten at the paper's ranges; :func:`options_from_values`
            builds it from the range flags and ``transforms``, or reads a recipe.
        recipe_named: The pipeline is a recipe the user named (``--recipe``),
            recorded whole in the output; else it is the paper's steps,
            recorded as their names and ranges.
        annotations: Detection runs: the annotation folder (VOC, YOLO) or file
            (COCO) of RAW's images; RAW is then a folder of images, not of classes.
        annotation_format: ``voc``, ``coco`` or ``yolo`` (with ``annotations``).
        names: YOLO class names file (default: found beside the labels).
        min_visibility: Detection: a box is dropped when less than this fraction
            of it stays inside the output.
        height: Output height when not square (``--size WxH``, folder output
            only); ``size`` is then the width. None: ``size x size``.
        letterbox: Keep each output's aspect ratio, black bars around it,
            instead of squashing it to the output size.
    """

    size: int = defaults.DEFAULT_SIZE
    target: int | None = None
    factor: float | None = None
    seed: int = 0
    pca_count: int = 0
    pca: PcaSettings = field(default_factory=PcaSettings)
    image_format: str = defaults.DEFAULT_IMAGE_FORMAT
    jpeg_quality: int = defaults.DEFAULT_JPEG_QUALITY
    output_format: str | None = None
    compression: str = defaults.DEFAULT_COMPRESSION
    split: str = DEFAULT_SPLIT
    split_by: str = defaults.DEFAULT_SPLIT_BY
    folds: int = 0
    group_regex: str | None = None
    no_augment_test: bool = False
    skip_invalid: bool = False
    max_pixels: int = defaults.MAX_PIXELS
    workers: int = 0
    overwrite: bool = False
    resume: bool = False
    pipeline: Recipe = field(default_factory=paper_recipe)
    recipe_named: bool = False
    annotations: str | None = None
    annotation_format: str | None = None
    names: str | None = None
    min_visibility: float = defaults.DEFAULT_MIN_VISIBILITY
    height: int | None = None
    letterbox: bool = False

    def __post_init__(self) -> None:
        """Resolve the default count: the paper's 1,492 unless ``factor`` is given."""
        if self.target is None and self.factor is None:
            object.__setattr__(self, "target", defaults.DEFAULT_TARGET)

    def validate(self, resolved_format: str | None = None) -> SplitSpec:
        """Check every option; return the parsed split.

        Args:
            resolved_format: The output format OUT resolves to
                (:func:`resolve_output_format`); checks of what a format cannot
                hold use it when ``output_format`` is None.

        Raises:
            OptionError: Naming the first invalid option.
        """
        fmt = self.output_format or resolved_format
        lo, hi = defaults.MIN_SIZE, defaults.MAX_SIZE
        if not lo <= self.size <= hi:
            raise OptionError("size", f"must be between {lo} and {hi}, got {self.size}")
        if self.height is not None and not lo <= self.height <= hi:
            raise OptionError("height", f"must be between {lo} and {hi}, got {self.height}")
        if self.height is not None and fmt == "hdf5":
            raise OptionError(
                "height", "HDF5 output is square; give one side length, or a folder OUT"
            )
        if self.target is not None and self.factor is not None:
            raise OptionError("target", "give {target} or {factor}, not both", refs=True)
        most = defaults.MAX_OUTPUTS
        if self.target is not None and not 1 <= self.target <= most:
            raise OptionError("target", f"must be between 1 and {most:,}, got {self.target:,}")
        if self.factor is not None and not (math.isfinite(self.factor) and self.factor <= most):
            raise OptionError("factor", f"must be a number up to {most:,}, got {self.factor}")
        if not 0 <= self.pca_count <= most:
            raise OptionError(
                "pca_count", f"must be between 0 and {most:,}, got {self.pca_count:,}"
            )
        if not 0 <= self.seed < 2**63:
            raise OptionError("seed", f"must be between 0 and 2**63 - 1, got {self.seed}")
        if self.image_format not in defaults.IMAGE_FORMATS:
            raise OptionError("image_format", f"png or jpg, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise OptionError("jpeg_quality", f"must be 1..100, got {self.jpeg_quality}")
        if self.output_format not in (None, "folder", "hdf5"):
            raise OptionError("output_format", f"folder or hdf5, got {self.output_format!r}")
        if self.compression not in COMPRESSIONS:
            raise OptionError("compression", f"one of {', '.join(COMPRESSIONS)}")
        if self.split_by not in SPLIT_BY:
            raise OptionError("split_by", f"source or image, got {self.split_by!r}")
        if self.pca_count < 0:
            raise OptionError("pca_count", f"must be >= 0, got {self.pca_count}")
        if self.pca_count and not self.pca.std >= 0:
            raise OptionError("pca_std", f"must be >= 0, got {self.pca.std}")
        if self.pca_count and self.pca.k not in (1, 2, 3):
            raise OptionError("pca_k", f"must be 1, 2 or 3, got {self.pca.k}")
        if self.pca_count and self.pca.mode not in PCA_MODES:
            raise OptionError("pca_mode", f"pixel or shift, got {self.pca.mode!r}")
        if self.pca_count and self.pca.scale not in PCA_SCALES:
            raise OptionError("pca_scale", f"relative, unit or byte, got {self.pca.scale!r}")
        if self.pca_count and self.pca.mode == "pixel" and self.pca.scale != "relative":
            raise OptionError(
                "pca_scale", "unit and byte are legacy scales of {pca_mode} shift", refs=True
            )
        if self.workers < 0:
            raise OptionError("workers", f"must be >= 0 (0 = all cores), got {self.workers}")
        if self.max_pixels < 1:
            raise OptionError("max_pixels", "must be positive")
        spec = parse_split(self.split)
        self._validate_detection(fmt)
        if check_folds(self.folds):
            if self.split not in (DEFAULT_SPLIT, "none"):
                raise OptionError(
                    "folds",
                    "replaces the fractional split; leave {split} at its default",
                    refs=True,
                )
            if self.split_by == "image":
                raise OptionError(
                    "folds", "needs {split_by} source (folds split sources)", refs=True
                )
            if self.no_augment_test:
                raise OptionError(
                    "no_augment_test", "needs a fractional split, not {folds}", refs=True
                )
            spec = parse_split("none")
        if self.no_augment_test and self.split_by == "image":
            raise OptionError("no_augment_test", "needs {split_by} source", refs=True)
        if self.no_augment_test and not spec.enabled:
            raise OptionError(
                "no_augment_test", "needs a split ({split} 0.7 or similar)", refs=True
            )
        self._validate_steps()
        return spec

    def _validate_steps(self) -> None:
        """Letterboxing keeps the paper's steps only; boxes need steps that can carry them.

        Raises:
            OptionError: Naming ``recipe`` and the steps that cannot.
        """
        if self.letterbox:
            others = [
                s.name for s in self.pipeline.steps if s.kind != "builtin" or s.ref not in PAPER
            ]
            if others:
                raise OptionError(
                    "recipe",
                    "{letterbox} keeps the aspect ratio of the paper's transforms only; this "
                    f"recipe also has {literal(', '.join(others))}",
                    refs=True,
                )
        if self.annotations is not None:
            from augtool.pipeline.core import cached_pipeline

            steps = cached_pipeline(self.pipeline, self.pca).steps
            blind = [s.name for s in steps if not s.step_type.carries_targets]
            if blind:
                raise OptionError(
                    "recipe",
                    f"boxes ({{annotations}}) cannot follow {literal(', '.join(blind))}: a "
                    "plug-in step that moves pixels without saying where (a step declares "
                    "moves_pixels=False, or gives its geometry)",
                    refs=True,
                )

    def _validate_detection(self, fmt: str | None) -> None:
        if self.annotations is None:
            if self.annotation_format is not None:
                raise OptionError(
                    "annotation_format",
                    f"{literal(self.annotation_format)} needs {{annotations}}",
                    refs=True,
                )
            if self.names is not None:
                raise OptionError("names", "needs {annotations} (YOLO)", refs=True)
            return
        if self.annotation_format not in FORMATS:
            raise OptionError(
                "annotation_format",
                f"with {{annotations}}, one of {literal(', '.join(FORMATS))}; "
                f"got {literal(repr(self.annotation_format))}",
                refs=True,
            )
        if fmt == "hdf5":
            raise OptionError(
                "output_format",
                "detection output ({annotations}) is a folder; give a folder OUT",
                refs=True,
            )
        check_min_visibility(self.min_visibility)

    @classmethod
    def from_provenance(
        cls, recorded: dict, workers: int = 0, plugins: tuple[str, ...] = ()
    ) -> ExpandOptions:
        """Rebuild the options an output records (:meth:`provenance`; ``verify --regenerate``).

        Args:
            recorded: The recorded options (``augtool.json``'s ``recipe``).
            workers: Worker processes.
            plugins: Modules the user named (``--plugin``) that a recorded
                plug-in step may come from; nothing the record names is imported.

        Raises:
            InputError: If the record has keys this version does not know.
            OptionError: If a plug-in it needs is not given or installed.
        """
        known = {f.name for f in fields(cls)} - {"recipe_named"} | {"transforms", "ranges"}
        unknown = sorted(set(recorded) - known)
        if unknown:
            raise InputError(f"the recorded recipe has unknown options: {', '.join(unknown)}")
        values = dict(recorded)
        values.pop("workers", None)
        try:
            ranges = Ranges(**{k: tuple(v) for k, v in values.pop("ranges", {}).items()})
            names = values.pop("transforms", None)
            if "pca" in values:
                # Recipes written before --pca-mode existed meant Krizhevsky's shift.
                values["pca"] = PcaSettings(**{"mode": "shift", **values["pca"]})
            named = values.pop("pipeline", None)
            if named is not None:
                values.update(pipeline=recipe_from_dict(named, plugins), recipe_named=True)
            else:
                values["pipeline"] = paper_recipe(ranges, None if names is None else tuple(names))
            options = cls(**values, workers=workers)
            _check_types(options)
            options.validate()
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            raise InputError(
                f"the recorded recipe is damaged ({type(err).__name__}: {err})"
            ) from err
        return options

    def paper_ranges(self) -> Ranges:
        """The range settings of the paper's steps (their defaults where no step has one)."""
        if self.recipe_named:
            return Ranges()
        found: dict[str, tuple[float, float]] = {}
        for step in self.pipeline.steps:
            for key, value in step.settings:
                if key in RANGE_KEYS:
                    found.setdefault(key, tuple(value))
        return Ranges(**found)

    def provenance(self) -> dict:
        """The options that decide the output bytes, as ``augtool.json`` records them.

        Recorded under the key ``recipe``, in the order and form outputs have
        always had: the paper's steps as ``transforms`` and ``ranges``, a named
        recipe besides whole under ``pipeline``; detection, size and letterbox
        keys only when they apply. ``workers``, ``overwrite`` and ``resume``
        never change a byte and are left out.
        """
        d: dict[str, Any] = {
            "size": self.size,
            "target": self.target,
            "factor": self.factor,
            "transforms": list(self.pipeline.names),
            "ranges": self.paper_ranges().as_dict(),
            "seed": self.seed,
            "pca_count": self.pca_count,
            "pca": asdict(self.pca),
        }
        for key in (
            "image_format",
            "jpeg_quality",
            "output_format",
            "compression",
            "split",
            "split_by",
            "folds",
            "group_regex",
            "no_augment_test",
            "skip_invalid",
            "max_pixels",
        ):
            d[key] = getattr(self, key)
        if self.annotations is not None:  # classification records stay as they were
            for key in ("annotations", "annotation_format", "names", "min_visibility"):
                d[key] = getattr(self, key)
        if self.height is not None:  # square outputs' records stay as they were
            d["height"] = self.height
        if self.letterbox:
            d["letterbox"] = True
        if self.recipe_named:
            d["pipeline"] = self.pipeline.to_dict()
        return d


def check_min_visibility(value: float) -> float:
    """Validate ``min_visibility`` (a fraction in ``[0, 1]``).

    Raises:
        OptionError: When it is not a finite number in ``[0, 1]``.
    """
    if not (0.0 <= value <= 1.0):
        raise OptionError("min_visibility", f"a fraction between 0 and 1, got {value}")
    return float(value)


def _check_types(options: ExpandOptions) -> None:
    """Every field of recorded options has its declared type (JSON gives any).

    Raises:
        TypeError: Naming the first field of another type.
    """
    hints = {"int": int, "float": (int, float), "str": str, "bool": bool}
    for f in fields(options):
        value = getattr(options, f.name)
        if value is None or not isinstance(f.type, str):
            continue
        kinds = [hints[t.strip()] for t in f.type.split("|") if t.strip() in hints]
        wrong = kinds and not any(
            isinstance(value, k) and not (isinstance(value, bool) and k is not bool) for k in kinds
        )
        if wrong:
            raise TypeError(f"{f.name} is {value!r}, expected {f.type}")


#: Flat values :func:`options_from_values` folds into :class:`Ranges`.
RANGE_KEYS = ("sigma_range", "rotate_range", "translate_range", "shear_range")
#: Flat values folded into :class:`PcaSettings` (``pca_<field>``).
PCA_KEYS = ("pca_std", "pca_k", "pca_mode", "pca_scale")


def options_from_values(values: Mapping[str, Any]) -> ExpandOptions:
    """Build :class:`ExpandOptions` from flat values, as a command line or a config gives them.

    Besides the fields of :class:`ExpandOptions` (except ``ranges``, ``pca`` and
    ``pipeline``), ``values`` may hold:

    * ``sigma_range``, ``rotate_range``, ``translate_range``, ``shear_range``: the
      :class:`Ranges` (the others keep their defaults);
    * ``pca_std``, ``pca_k``, ``pca_mode``, ``pca_scale``: the :class:`PcaSettings`;
    * ``pca``: True adds the paper's 184 PCA copies unless ``pca_count`` says how
      many (``pca_count`` alone implies ``pca``);
    * ``recipe``: a recipe file or shipped name (``recipe_toml.read_recipe_file``),
      or a loaded :class:`Recipe`; it names its own transforms;
    * ``plugins``: modules whose transforms the recipe may name (``--plugin``);
    * ``transforms``: ``all``, ``"a,b,c"`` or a sequence of names;
    * ``output_format``: also ``voc``, ``coco`` or ``yolo``, the format of
      ``annotations`` (the output is then a folder).

    A value of None means the default.

    Raises:
        OptionError: For an unknown key, a recipe with ``transforms``, and any invalid
            value (the options are validated).
    """
    flat = {k: v for k, v in values.items() if v is not None}
    known = {f.name for f in fields(ExpandOptions)} - {"pca", "pipeline", "recipe_named"}
    allowed = known | set(RANGE_KEYS) | set(PCA_KEYS) | {"pca", "recipe", "plugins", "transforms"}
    for key in flat:
        if key not in allowed:
            raise OptionError(key, "not an option of expand")
    ranges = Ranges(**{k: tuple(flat.pop(k)) for k in RANGE_KEYS if k in flat})
    pca = PcaSettings(**{k.removeprefix("pca_"): flat.pop(k) for k in PCA_KEYS if k in flat})
    wants_pca = bool(flat.pop("pca", False))
    if "pca_count" not in flat:
        flat["pca_count"] = defaults.DEFAULT_PCA_COUNT if wants_pca else 0
    recipe = flat.pop("recipe", None)
    plugins = tuple(flat.pop("plugins", ()))
    if plugins:
        user_plugins(plugins)  # the user's word: imported, and checked to hold transforms
    transforms = flat.pop("transforms", defaults.DEFAULT_TRANSFORMS)
    if flat.get("output_format") in defaults.ANNOTATION_FORMATS:
        flat["annotation_format"], flat["output_format"] = flat["output_format"], "folder"
    if recipe is None:
        names = parse_step_list(transforms) if isinstance(transforms, str) else transforms
        pipeline = paper_recipe(ranges, tuple(names))
    else:
        pipeline = _named_recipe(recipe, plugins)
        same = tuple(transforms) == pipeline.names
        default = isinstance(transforms, str) and transforms.strip().lower() == "all"
        if not (default or same):
            raise OptionError(
                "transforms", "a recipe names its own transforms; drop {transforms}", refs=True
            )
        if ranges != Ranges():
            raise OptionError(
                "recipe",
                "a recipe sets its own ranges; drop {sigma_range} and the like",
                refs=True,
            )
    options = ExpandOptions(pca=pca, pipeline=pipeline, recipe_named=recipe is not None, **flat)
    options.validate()
    return options


def _named_recipe(recipe: Any, plugins: tuple[str, ...]) -> Recipe:
    """A recipe given as a file or shipped name, a :class:`Recipe`, or a :class:`Pipeline`."""
    from augtool.pipeline.core import Pipeline

    if isinstance(recipe, Pipeline):
        return recipe.recipe
    if isinstance(recipe, Recipe):
        return recipe
    return read_recipe_file(recipe, plugins)


@dataclass
class ExpandSummary:
    """What a run produced.

    Attributes:
        out: The output path.
        total: Images in the output.
        resumed: Images found done in a partial output (``--resume``), not rendered again.
        counts: Images per (split, class); per (``fold k``, class) with ``--folds``.
        seconds: Wall time.
        scan: The scan result (sources, skipped files, duplicates).
        output_format: ``folder`` or ``hdf5``.
        boxes: Detection runs: the annotation record (``boxes_in``, ``boxes_out``,
            ``files``); None otherwise.
    """

    out: Path
    total: int
    resumed: int
    counts: dict[tuple[str, str], int]
    seconds: float
    scan: ScanResult
    output_format: str
    boxes: dict | None = None

    @property
    def images_per_second(self) -> float:
        """Throughput of this run (images rendered now, over its wall time)."""
        rendered = self.total - self.resumed
        return rendered / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class PlannedRun:
    """The resolved plan: sources, their splits, and every output."""

    scan: ScanResult
    jobs: list[Job]
    split_of_source: list[str]
    split_of_job: list[str]
    names: list[str]
    spec: SplitSpec
    fold_of_source: list[int] | None = None


def resolve_output_format(out: Path, options: ExpandOptions) -> str:
    """``hdf5`` for ``--format hdf5`` or an ``.h5``/``.hdf5`` OUT, else ``folder``."""
    if options.output_format is not None:
        return options.output_format
    return "hdf5" if is_hdf5_path(out) else "folder"


def plan_run(scan_result: ScanResult, options: ExpandOptions, reporter: Reporter) -> PlannedRun:
    """Split the sources and lay out every output (no pixels, no files).

    Args:
        scan_result: The scanned sources.
        options: The run's options.
        reporter: Receives warnings.

    Returns:
        The plan with split and file name of every output.
    """
    spec = options.validate()
    sources = scan_result.sources
    class_of = [s.class_name for s in sources]
    total = resolve_target(len(sources), options.target, options.factor)
    fold_of_source = None
    if options.split_by == "source" or not spec.enabled:
        groups = merge_groups([s.group for s in sources], [s.sha256 for s in sources])
        split_of_source = split_by_group([s.label for s in sources], groups, spec, options.seed)
        if options.folds:
            labels = [s.label for s in sources]
            fold_of_source = fold_by_group(labels, groups, options.folds, options.seed)
            _warn_missing_fold_classes(scan_result, fold_of_source, options.folds, reporter)
    else:
        split_of_source = ["-"] * len(sources)
        reporter.warn(LEAK_WARNING)
    augment = None
    if options.no_augment_test:
        augment = [sp == "train" for sp in split_of_source]
    jobs = make_plan(class_of, total, options.pipeline.names, options.pca_count, augment)
    if options.split_by == "image" and spec.enabled:
        split_of_job = split_by_image([sources[j.source].label for j in jobs], spec, options.seed)
    else:
        split_of_job = [split_of_source[j.source] for j in jobs]
    ext = "png" if options.image_format == "png" else "jpg"
    names = [
        output_name(sources[j.source], j, split_of_job[i] if spec.enabled else None, ext)
        for i, j in enumerate(jobs)
    ]
    _warn_missing_classes(scan_result, split_of_job, jobs, spec, reporter)
    _warn_ungrouped(scan_result, options, reporter)
    return PlannedRun(scan_result, jobs, split_of_source, split_of_job, names, spec, fold_of_source)


def _warn_ungrouped(scan_result: ScanResult, options: ExpandOptions, reporter: Reporter) -> None:
    """Say how many sources ``--group-regex`` did not match (each is then its own group)."""
    missed = scan_result.ungrouped
    if not missed:
        return
    total = len(scan_result.sources)
    reporter.warn(
        Message(
            f"{{group_regex}} '{literal(options.group_regex)}' matched {total - len(missed)} "
            f"of {total:d} sources; the other {len(missed)} fell back to their own group "
            f"(e.g. {literal(missed[0])}), so they are split as if each came from a different "
            "patient or smear"
        )
    )


def output_name(source: Source, job: Job, split: str | None, ext: str) -> str:
    """Relative output path: ``[<split>/]<class>/<stem>__<kk>_<transform>.<ext>``."""
    parts = [source.class_name, f"{source.stem}__{job.copy:02d}_{job.transform}.{ext}"]
    if split is not None:
        parts.insert(0, split)
    return str(PurePosixPath(*parts))


def _warn_missing_fold_classes(
    scan_result: ScanResult, fold_of_source: Sequence[int], folds: int, reporter: Reporter
) -> None:
    present = {(f, s.class_name) for f, s in zip(fold_of_source, scan_result.sources, strict=True)}
    for k in range(folds):
        missing = [c for c in scan_result.classes if (k, c) not in present]
        if missing:
            reporter.warn(
                f"fold {k} has no images of {len(missing)} class(es) {_list_briefly(missing)}: "
                "too few sources or groups for this many folds"
            )


def _warn_missing_classes(
    scan_result: ScanResult,
    split_of_job: Sequence[str],
    jobs: Sequence[Job],
    spec: SplitSpec,
    reporter: Reporter,
) -> None:
    if not spec.enabled:
        return
    present = {
        (split_of_job[i], scan_result.sources[j.source].class_name) for i, j in enumerate(jobs)
    }
    for name in spec.names:
        missing = [c for c in scan_result.classes if (name, c) not in present]
        if missing:
            reporter.warn(
                f"split {name!r} has no images of {len(missing)} class(es) "
                f"{_list_briefly(missing)}: too few sources or groups for this split"
            )


def expand(
    raw: str | Path,
    out: str | Path,
    options: ExpandOptions,
    reporter: Reporter | None = None,
    command_line: str = "",
    backend: Backend | None = None,
) -> ExpandSummary:
    """Materialize the augmented dataset of RAW into OUT.

    Args:
        raw: ``RAW/<class>/<image>`` folder.
        out: Output folder, or ``.h5`` file.
        options: The run's options.
        reporter: Progress and warnings; silent by default.
        command_line: Recorded in the output for provenance.
        backend: Where the per-source work runs; joblib processes on this
            machine (``options.workers``) by default. Never changes the bytes.

    Returns:
        A summary of what was written.

    Raises:
        InputError: For unusable input (nothing is written).
        OptionError: For invalid options (nothing is written).
        OutputError: If OUT exists and ``overwrite`` is false, or writing fails.
    """
    started = time.perf_counter()
    reporter = reporter or SilentReporter()
    raw, out = Path(raw), Path(out)
    output_format = resolve_output_format(out, options)
    options.validate(output_format)
    check_output(out, options.overwrite)
    workers = options.workers or default_workers()
    backend = backend or LocalBackend(workers)

    # Local workers see the scan's decoded sources (in-process, or forked after the scan).
    local = isinstance(backend, LocalBackend) and (backend.workers <= 1 or fork_available())
    keep = max(options.size, options.height or 0) if local else None
    run, detection = _scan_and_plan(raw, options, workers, reporter, keep_size=keep)
    scan_result = run.scan

    encoding = "array" if output_format == "hdf5" else options.image_format
    settings = RenderSettings(
        size=options.size,
        seed=options.seed,
        recipe=options.pipeline,
        encoding=encoding,
        jpeg_quality=options.jpeg_quality,
        pca=options.pca,
        height=options.height,
        letterbox=options.letterbox,
        min_visibility=options.min_visibility,
    )
    compression = None if options.compression == "none" else options.compression
    writer = open_writer(
        out,
        output_format,
        fingerprint=fingerprint(run, options, output_format),
        resume=options.resume,
        n=len(run.jobs),
        size=options.size,
        compression=compression,
    )
    notice = _partial_notice(writer, options.resume)
    if notice is not None:
        reporter.warn(notice)
    from augtool.detect import OutputBoxes

    records: list[dict | None] = [None] * len(run.jobs)
    boxes: dict[int, OutputBoxes] = {}  # detection: the boxes workers sent back, by plan index
    with writer:
        for index, record in writer.resumed.items():
            records[index] = {k: v for k, v in record.items() if k not in JOURNAL_ONLY}
            if "boxes" in record:
                boxes[index] = OutputBoxes.from_journal(record)
        reporter.start("expand", len(run.jobs))
        reporter.advance(len(writer.resumed))
        with preloaded(scan_result.pixels), contextlib.ExitStack() as stack:
            scan_result.pixels.clear()  # held by the render until it ends, not by the result
            tasks = _tasks(run, raw, detection, skip=set(writer.resumed))
            batches = backend.render(tasks, settings)
            if hasattr(batches, "close"):  # a generator: stop its workers on the way out
                stack.callback(batches.close)
            for batch in batches:
                new = []
                for item in batch:
                    writer.write(item.index, run.names[item.index], item.payload)
                    records[item.index] = _record(run, item, options.seed)
                    journal = {"index": item.index, **records[item.index]}
                    if item.boxes is not None and item.ids is not None:
                        boxes[item.index] = OutputBoxes(item.boxes, item.ids)
                        journal.update(boxes[item.index].to_journal())
                    new.append(journal)
                writer.commit(new)
                reporter.advance(len(batch))
        attrs = _attributes(run, options, output_format, command_line)
        if detection is not None:
            attrs["annotations"] = _write_boxes(run, records, boxes, detection, options, writer)
        writer.finish([r for r in records if r is not None], _source_rows(run), attrs)
        summary = ExpandSummary(
            out=out,
            total=len(run.jobs),
            resumed=len(writer.resumed),
            counts=_counts(run),
            seconds=time.perf_counter() - started,
            scan=scan_result,
            output_format=output_format,
            boxes=attrs.get("annotations"),
        )
    return summary


@dataclass(frozen=True)
class DryRun:
    """What ``expand`` would write: the plan, counted.

    Attributes:
        run: The plan (sources, splits, every output's name).
        counts: Outputs per (split, class); per (``fold k``, class) with ``folds``.
        per_transform: Outputs per transform name, in plan order of first use.
        recipe: The transform recipe, or None for the paper's transforms.
    """

    run: PlannedRun
    counts: dict[tuple[str, str], int]
    per_transform: dict[str, int]
    recipe: Recipe | None

    @property
    def total(self) -> int:
        """Outputs planned."""
        return len(self.run.jobs)


def dry_run(raw: str | Path, options: ExpandOptions, reporter: Reporter | None = None) -> DryRun:
    """Scan RAW and plan the run as :func:`expand` would, writing nothing.

    The scan, the scan's warnings (skipped, ignored and identical files) and the
    plan's warnings are the real run's: the same functions make them.

    Args:
        raw: ``RAW/<class>/<image>`` folder (or images, with ``annotations``).
        options: The run's options.
        reporter: Receives the warnings; silent by default.

    Returns:
        The plan and its counts.

    Raises:
        InputError: For unusable input.
        OptionError: For invalid options.
    """
    reporter = reporter or SilentReporter()
    options.validate()
    workers = options.workers or default_workers()
    run, _ = _scan_and_plan(Path(raw), options, workers, reporter)
    return DryRun(
        run=run,
        counts=_counts(run),
        per_transform=dict(Counter(j.transform for j in run.jobs)),
        recipe=options.pipeline if options.recipe_named else None,
    )


def _scan_and_plan(
    raw: Path,
    options: ExpandOptions,
    workers: int,
    reporter: Reporter,
    keep_size: int | None = None,
) -> tuple[PlannedRun, DetectionInput | None]:
    """Scan RAW, report what the scan found, and plan: shared by the run and the dry run.

    ``keep_size`` (the run, not the dry run): keep the sources decoded for outputs
    of that side (:func:`augtool.sources.scan`), so the render need not decode them.
    """
    reporter.start("scan", 0)
    detection = None
    if options.annotations is not None:
        scan_result, detection = scan_detection(raw, options)
        for warning in detection.warnings:
            reporter.warn(warning)
    else:
        scan_result = scan(
            raw,
            group_regex=options.group_regex,
            skip_invalid=options.skip_invalid,
            max_pixels=options.max_pixels,
            workers=workers,
            progress=None,
            keep_size=keep_size,
        )
    _report_scan(scan_result, reporter)
    return plan_run(scan_result, options, reporter), detection


def _counts(run: PlannedRun) -> dict[tuple[str, str], int]:
    """Outputs per (row label, class), sorted."""
    counts = Counter(
        (row_label(run, i), run.scan.sources[j.source].class_name) for i, j in enumerate(run.jobs)
    )
    return dict(sorted(counts.items()))


def scan_detection(raw: Path, options: ExpandOptions) -> tuple[ScanResult, DetectionInput]:
    """The sources and boxes of a detection run (``options.annotations`` set)."""
    from augtool.detect import scan_annotated

    assert options.annotations is not None and options.annotation_format is not None
    return scan_annotated(
        raw,
        options.annotation_format,
        options.annotations,
        options.names,
        options.group_regex,
        options.skip_invalid,
        options.max_pixels,
    )


def _write_boxes(
    run: PlannedRun,
    records: Sequence[dict | None],
    boxes: Mapping[int, OutputBoxes],
    detection: DetectionInput,
    options: ExpandOptions,
    writer: StagedWriter,
) -> dict:
    """Write the annotation files of every output; return their record for ``augtool.json``."""
    from augtool.detect import detection_files

    result = detection_files(
        [(r, boxes[i]) for i, r in enumerate(records) if r is not None],
        detection,
        (options.size, options.height or options.size),
    )
    for name, text in result.files.items():
        writer.write(-1, name, text.encode("utf-8"))
    return result.record(options.min_visibility, detection.fmt, detection.classes)


def row_label(run: PlannedRun, index: int) -> str:
    """Row of output ``index`` in the summary table: its split, or ``fold k`` with ``--folds``."""
    if run.fold_of_source is None:
        return run.split_of_job[index]
    return f"fold {run.fold_of_source[run.jobs[index].source]}"


def _list_briefly(items: Sequence[str], limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, ... and 990 more``: warnings stay readable with 2,000 classes."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} ... and {len(items) - limit} more"


def _report_scan(scan_result: ScanResult, reporter: Reporter) -> None:
    if scan_result.skipped:
        listing = "".join(f"\n  {literal(p)}: {template_of(why)}" for p, why in scan_result.skipped)
        reporter.warn(
            Message(
                f"skipped {len(scan_result.skipped)} invalid file(s) (recorded in the output):"
                + listing
            )
        )
    if scan_result.ignored:
        reporter.warn(
            f"ignored {len(scan_result.ignored)} file(s) without an image suffix, or folder "
            f"links (not followed): {_list_briefly(scan_result.ignored)}"
        )
    for paths in scan_result.duplicates:
        classes = {p.split("/", 1)[0] for p in paths}
        note = " in DIFFERENT classes" if len(classes) > 1 else ""
        reporter.warn(f"identical files{note} (kept in one split): {', '.join(paths)}")


def _tasks(
    run: PlannedRun, raw: Path, detection: DetectionInput | None, skip: set[int]
) -> list[SourceTask]:
    """One task per source with outputs still to render, with its boxes in a detection run."""
    by_source: dict[int, list[tuple[int, int, str]]] = {}
    for i, job in enumerate(run.jobs):
        by_source.setdefault(job.source, []).append((i, job.copy, job.transform))
    tasks = []
    for s, jobs in by_source.items():
        if all(i in skip for i, _, _ in jobs):
            continue
        src = run.scan.sources[s]
        corners = None
        if detection is not None:
            corners = tuple((b.x0, b.y0, b.x1, b.y1) for b in detection.boxes[src.path].boxes)
        path = str(raw / src.path)
        tasks.append(SourceTask(path, src.sha256, src.width, src.height, tuple(jobs), corners))
    return tasks


def _partial_notice(writer: StagedWriter, resume: bool) -> Message | None:
    """What a run without ``resume`` does with the partial output an interrupted run left."""
    held = writer.leftover()
    if resume or held is None:
        return None
    return Message(
        f"an interrupted run left a partial output in {literal(writer.tmp)} holding "
        f"{held:d} finished image(s); this run starts over and deletes it (to continue it "
        "instead, stop now and run the same command with {resume})"
    )


def fingerprint(run: PlannedRun, options: ExpandOptions, output_format: str) -> str:
    """Hash of everything that determines the output bytes (for ``--resume``)."""
    import hashlib
    import json

    key = {
        "recipe": options.provenance(),
        "format": output_format,
        "sources": [(s.path, s.sha256) for s in run.scan.sources],
        "names": run.names,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _record(run: PlannedRun, item: Rendered, seed: int) -> dict:
    job = run.jobs[item.index]
    src = run.scan.sources[job.source]
    return {
        "name": run.names[item.index],
        "split": run.split_of_job[item.index],
        "class": src.class_name,
        "label": src.label,
        "source": src.path,
        "source_sha256": src.sha256,
        "group": src.group,
        "copy": job.copy,
        "transform": job.transform,
        "params": item.params,
        "seed": seed,
        "sha256": item.sha256,
        "fold": "" if run.fold_of_source is None else run.fold_of_source[job.source],
    }


def _source_rows(run: PlannedRun) -> list[dict]:
    return [
        {
            "path": s.path,
            "sha256": s.sha256,
            "class": s.class_name,
            "label": s.label,
            "group": s.group,
            "split": run.split_of_source[i],
            "fold": "" if run.fold_of_source is None else run.fold_of_source[i],
        }
        for i, s in enumerate(run.scan.sources)
    ]


def _attributes(
    run: PlannedRun, options: ExpandOptions, output_format: str, command_line: str
) -> dict:
    import cv2
    import numpy as np

    counts = Counter(run.split_of_job)
    versions = {
        "augtool": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    if options.pipeline.uses_albumentations:
        from augtool.pipeline.albu import import_albumentations

        versions["albumentations"] = import_albumentations().__version__
    fold_counts: dict[str, int] = {}
    if run.fold_of_source is not None:
        per_fold = Counter(run.fold_of_source[j.source] for j in run.jobs)
        fold_counts = {str(k): per_fold[k] for k in range(options.folds)}
    return {
        "schema_version": SCHEMA_VERSION,
        "class_names": list(run.scan.classes),
        "seed": options.seed,
        "size": options.size,
        "tool_version": __version__,
        "command_line": command_line,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "format": output_format,
        "split_by": options.split_by,
        "recipe": options.provenance(),
        "counts": dict(sorted(counts.items())),
        "folds": options.folds,
        "fold_counts": fold_counts,
        "skipped": [{"path": p, "reason": why} for p, why in run.scan.skipped],
        "duplicates": run.scan.duplicates,
        "versions": versions,
    }
