"""The options of ``expand``, checked before any work, and their record in the output.

:class:`ExpandOptions` holds every option, the one pipeline among them;
:func:`options_from_values` builds it from flat values as a command line or a
config file gives them; :meth:`ExpandOptions.provenance` is what an output
records of them (``augtool.json``'s ``recipe``), and
:meth:`ExpandOptions.from_provenance` reads that back (``verify --regenerate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augtool import defaults
from augtool.engine.split import SplitSpec, check_folds, parse_split
from augtool.errors import (
    InputError,
    OptionError,
    literal,
)
from augtool.ops.pca import MODES as PCA_MODES
from augtool.ops.pca import SCALES as PCA_SCALES
from augtool.pipeline.builtins import PAPER, PcaSettings, Ranges, parse_step_list
from augtool.pipeline.core import as_recipe
from augtool.pipeline.plugins import user_plugins
from augtool.pipeline.recipe_spec import Recipe, paper_recipe
from augtool.pipeline.recipe_toml import recipe_from_dict
from augtool.store.dataset import is_hdf5_path

MASK_BOXES = defaults.MASK_BOXES

if TYPE_CHECKING:
    pass


SPLIT_BY = defaults.SPLIT_BY


#: ``ExpandOptions.split``'s default; the only split value ``folds`` accepts besides ``none``.
DEFAULT_SPLIT = defaults.DEFAULT_SPLIT


COMPRESSIONS = defaults.COMPRESSIONS


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
        segmentation: Segmentation runs: ``annotations`` are masks, in one of
            :data:`~augtool.defaults.MASK_FORMATS`
            (``annotation_format``); they are carried through every step and
            written in the same format. An instance is dropped when less than
            ``min_visibility`` of its area stays inside the output.
        mask_boxes: Segmentation: each output instance's box (COCO's ``bbox``)
            is the tight box of its mapped mask (``tight``), or its source box
            mapped as a box (``hull``, what detection runs write).
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
    segmentation: bool = False
    mask_boxes: str = defaults.DEFAULT_MASK_BOXES

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
        for name in ("size", "height", "target", "seed", "pca_count", "folds", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
                raise OptionError(name, f"a whole number, got {value!r}")
            if value is not None:  # numpy integers too, as plain ints (recorded in JSON)
                object.__setattr__(self, name, int(value))
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
        if self.mask_boxes not in MASK_BOXES:
            raise OptionError(
                "mask_boxes",
                f"one of {literal(', '.join(MASK_BOXES))}; got {literal(repr(self.mask_boxes))}",
            )
        if self.annotations is None:
            if self.segmentation:
                raise OptionError(
                    "segmentation", "needs {annotations}: the masks' file or folder", refs=True
                )
            if self.annotation_format is not None:
                raise OptionError(
                    "annotation_format",
                    f"{literal(self.annotation_format)} needs {{annotations}}",
                    refs=True,
                )
            if self.names is not None:
                raise OptionError("names", "needs {annotations} (YOLO)", refs=True)
            return
        if self.segmentation:
            self._validate_masks(fmt)
            return
        if self.mask_boxes != defaults.DEFAULT_MASK_BOXES:
            raise OptionError("mask_boxes", "needs {segmentation}", refs=True)
        if (
            self.annotation_format in defaults.MASK_FORMATS
            and self.annotation_format not in defaults.ANNOTATION_FORMATS
        ):
            raise OptionError(
                "annotation_format",
                f"{literal(self.annotation_format)} is a mask format: add {{segmentation}}",
                refs=True,
            )
        if self.annotation_format not in defaults.ANNOTATION_FORMATS:
            raise OptionError(
                "annotation_format",
                f"with {{annotations}}, one of {literal(', '.join(defaults.ANNOTATION_FORMATS))}; "
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

    def _validate_masks(self, fmt: str | None) -> None:
        """Segmentation runs: a mask format, names only where a format has them."""
        if self.annotation_format not in defaults.MASK_FORMATS:
            raise OptionError(
                "annotation_format",
                f"with {{segmentation}}, one of {literal(', '.join(defaults.MASK_FORMATS))}; "
                f"got {literal(repr(self.annotation_format))}",
                refs=True,
            )
        if self.names is not None and self.annotation_format in ("coco", "png-instances"):
            raise OptionError(
                "names", f"{literal(self.annotation_format)} masks name their own classes"
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
            if self.segmentation:  # detection records stay as they were
                d["segmentation"] = True
                d["mask_boxes"] = self.mask_boxes
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
        pipeline = as_recipe(recipe, plugins)
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


def resolve_output_format(out: Path, options: ExpandOptions) -> str:
    """``hdf5`` for ``--format hdf5`` or an ``.h5``/``.hdf5`` OUT, else ``folder``."""
    if options.output_format is not None:
        return options.output_format
    return "hdf5" if is_hdf5_path(out) else "folder"
