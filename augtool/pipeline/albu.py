"""Albumentations transforms and pipelines as recipe steps, with augtool's guarantees.

A recipe step gives a transform or a pipeline in albumentations' own
serialized form (``A.to_dict(t)``: ``{"__version__": ..., "transform": ...}``).
Each output draws one integer seed from its own generator
(``augtool.pipeline.steps.output_rng(seed, source, copy)``); the step's pipeline is rebuilt once
per process (``A.from_dict``) and reseeded with ``set_random_seed(seed)``
before every image, so an output's bytes depend on its seed alone: not on the
worker, the order, or what the process rendered before.

With targets, the same transform is wrapped in ``A.Compose(...,
bbox_params=A.BboxParams(format="pascal_voc", ...))`` and reseeded with the
same seed: ``Compose.set_random_seed`` hands its seed to every child, so the
child draws what it draws alone and the pixels are the bytes of the step
without boxes (``tests/test_pipeline.py`` checks it), while albumentations
moves, clips and drops the boxes with them. A box is dropped when less than
``min_visibility`` of its area stays in the image, as
``augtool.ops.targets.map_boxes`` does.

Masks go through albumentations' own mask support in the same call: each
instance as one of its ``masks`` (a polygon rasterised at the step's image
first, so it comes back a bitmap, outlined again where a format wants
polygons), a class-index map as its ``mask``. albumentations warps masks at
nearest neighbour, as augtool does. An instance is kept when its box is (the
tight box of its mask at the step's input, albumentations' ``min_visibility``)
and some of its mask is left; its box is then the tight box of the mask that
came back, or albumentations' box when ``tight`` is off.

albumentations is an optional extra (``pip install -e '.[albumentations]'``,
the MIT 2.0.x line). This module is imported only when a recipe names an
albumentations step, and it switches off albumentations' update check (a
network request at import) before importing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from augtool.errors import OptionError
from augtool.ops.mask_geometry import Patch, rasterize_polygons
from augtool.ops.targets import Shape, Targets
from augtool.pipeline.steps import Params, StepType

#: How to install the extra, quoted in errors.
EXTRA = "pip install -e '.[albumentations]'  (or pip install 'albumentations>=2.0,<2.1')"
#: The albumentations line augtool supports (major, minor).
SUPPORTED = (2, 0)


def import_albumentations(where: str = "recipe") -> ModuleType:
    """Import albumentations with its update check off, or refuse naming the extra.

    Raises:
        OptionError: If albumentations is missing or not of the 2.0 line.
    """
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    try:
        import albumentations
    except ImportError as err:
        raise OptionError(
            where,
            f"this recipe uses albumentations, which is not installed here: {EXTRA}",
        ) from err
    if _major_minor(albumentations.__version__) != SUPPORTED:
        raise OptionError(
            where,
            f"albumentations {albumentations.__version__} is installed; augtool supports "
            f"{SUPPORTED[0]}.{SUPPORTED[1]}.x: {EXTRA}",
        )
    return albumentations


def installed_version() -> str | None:
    """The installed albumentations version, or None (imports it)."""
    try:
        return import_albumentations().__version__
    except OptionError:
        return None


def _major_minor(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else -1)
    return tuple(parts)


def check_serialized(data: Any, where: str) -> dict:
    """Validate a serialized albumentations transform (``A.to_dict`` form).

    Args:
        data: A dict, or its JSON text.
        where: Prefix of error messages (file, line, key).

    Returns:
        The normalized dict (JSON round trip).

    Raises:
        OptionError: For malformed data, a version of another line than the
            installed one, or a transform albumentations cannot build.
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            raise OptionError(where, f"not valid JSON: {err}") from err
    if not isinstance(data, dict) or "transform" not in data:
        raise OptionError(
            where, "expected albumentations' serialized form {__version__ = ..., transform = ...}"
        )
    version = data.get("__version__")
    if not isinstance(version, str):
        raise OptionError(f"{where}.__version__", "missing: give the version A.to_dict wrote")
    A = import_albumentations(where)
    if _major_minor(version) != _major_minor(A.__version__):
        raise OptionError(
            f"{where}.__version__",
            f"serialized by albumentations {version}, but {A.__version__} is installed; "
            f"install albumentations {version} or re-serialize the transform with "
            f"{A.__version__} (A.to_dict)",
        )
    normalized = json.loads(json.dumps(data, sort_keys=True))
    _check_classes(normalized["transform"], f"{where}.transform", A)
    try:
        built = build(A, normalized)
    except Exception as err:  # albumentations raises many kinds for a bad dict
        raise OptionError(
            f"{where}.transform", f"albumentations cannot build it: {type(err).__name__}: {err}"
        ) from err
    ignored = ignored_arguments(built, A)
    if ignored:
        name, arguments = ignored[0]
        raise OptionError(
            f"{where}.transform",
            f"{name} has no argument(s) {', '.join(map(repr, arguments))}, which albumentations "
            "would ignore; correct or remove them",
        )
    return normalized


#: albumentations' warning for arguments a transform does not take (it builds it without them).
_INVALID_ARGUMENTS = r"Argument\(s\) '.*' are not valid for transform"


def build(A: ModuleType, serialized: dict) -> Any:
    """``A.from_dict(serialized)`` without albumentations' warning about arguments it ignores.

    :func:`check_serialized` has refused every such argument but those
    albumentations' own ``A.to_dict`` writes for the transform (``SafeRotate``
    writes the arguments of ``Affine``, which it then does not take).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _INVALID_ARGUMENTS, UserWarning)
        return A.from_dict(serialized)


def ignored_arguments(built: Any, A: ModuleType) -> list[tuple[str, list[str]]]:
    """``(class name, arguments)`` of each transform in ``built`` that albumentations ignored.

    Arguments that albumentations' own ``A.to_dict`` writes for that transform
    do not count: its serialized form, read back, must build without complaint.
    """
    found = []
    stack = [built]
    while stack:
        transform = stack.pop()
        stack.extend(getattr(transform, "transforms", None) or ())
        invalid = getattr(transform, "invalid_args", None) or ()
        if invalid:
            written = A.to_dict(transform)["transform"]
            ignored = [name for name in invalid if name not in written]
            if ignored:
                found.append((type(transform).__name__, ignored))
    return found


def _check_classes(transform: Any, where: str, A: ModuleType) -> None:
    """Every ``__class_fullname__`` in the tree names a class albumentations itself defines.

    albumentations looks names up in its registry of serializable classes
    (it imports nothing by name); a class some other imported module
    registered there, a lambda (non-serializable) transform, or a dotted path
    of another package is refused here, before ``A.from_dict`` sees it.

    Raises:
        OptionError: Naming ``where`` and the class.
    """
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY, shorten_class_name

    stack = [(transform, where)]
    while stack:
        node, at = stack.pop()
        if not isinstance(node, dict):
            raise OptionError(at, "expected a serialized transform (a table)")
        name = node.get("__class_fullname__")
        if not isinstance(name, str):
            raise OptionError(at, "missing __class_fullname__")
        cls = SERIALIZABLE_REGISTRY.get(shorten_class_name(name))
        module = getattr(cls, "__module__", "")
        if cls is None or not (module == "albumentations" or module.startswith("albumentations.")):
            raise OptionError(
                f"{at}.__class_fullname__",
                f"{name!r} is not a transform of albumentations {A.__version__}",
            )
        inner = node.get("transforms")
        if inner is not None:
            if not isinstance(inner, list):
                raise OptionError(f"{at}.transforms", "expected a list of transforms")
            stack.extend((t, f"{at}.transforms[{i}]") for i, t in enumerate(inner))


#: Built pipelines of this thread: reseeding and calling one object from two
#: threads at once (a Dask worker with several threads) would mix their draws.
_BUILT = threading.local()


def _pipeline(serialized: str) -> Any:
    """Build a serialized transform once per thread."""
    built = getattr(_BUILT, "pipelines", None)
    if built is None:
        built = _BUILT.pipelines = {}
    if serialized not in built:
        A = import_albumentations()
        built[serialized] = build(A, json.loads(serialized))
    return built[serialized]


def make_entry(name: str, serialized: dict, at: str) -> StepType:
    """A step that runs a serialized albumentations transform, seeded per output.

    Args:
        name: The step's name.
        serialized: ``A.to_dict`` form (checked by :func:`check_serialized`).
        at: ``output`` or ``work``.
    """
    text = json.dumps(serialized, sort_keys=True)
    A = import_albumentations()
    version = A.__version__

    def sample(rng: np.random.Generator, settings: Any) -> dict[str, Any]:
        return {"seed": int(rng.integers(0, 2**32 - 1)), "albumentations": version}

    def apply(image: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        transform = _pipeline(text)
        transform.set_random_seed(params["seed"])
        return transform(image=np.ascontiguousarray(image))["image"]

    return StepType(
        name,
        "albumentations: " + describe(serialized),
        sample=sample,
        apply=apply,
        at=at,
        moves_pixels=True,
    )


def describe(serialized: dict) -> str:
    """Short name of a serialized transform, e.g. ``Compose(HueSaturationValue, GaussNoise)``."""

    def name_of(t: dict) -> str:
        cls = str(t.get("__class_fullname__", "?")).rsplit(".", 1)[-1]
        inner = t.get("transforms")
        if isinstance(inner, list):
            return f"{cls}({', '.join(name_of(x) for x in inner if isinstance(x, dict))})"
        return cls

    transform = serialized.get("transform")
    return name_of(transform) if isinstance(transform, dict) else "?"


# --- with boxes ------------------------------------------------------------------------------


#: The label field that carries each box's id through albumentations.
IDS = "augtool_ids"


#: OpenCV's nearest neighbour (albumentations' default ``mask_interpolation``): it samples
#: pixel ``floor(x * scale)``, half a source pixel off the centres the image is resized by.
_CV_NEAREST = 0
#: OpenCV's nearest neighbour on pixel centres, as the image's own resize aligns them.
_CV_NEAREST_EXACT = 6


def _centred_masks(node: Any, A: ModuleType) -> Any:
    """A serialized transform whose masks are resized at nearest neighbour on pixel centres.

    albumentations resizes masks with ``cv2.INTER_NEAREST`` by default, which
    shifts a mask zoomed by a crop by up to half a source pixel against its
    image (an IoU of 0.94 for a 6,000-pixel shape zoomed 1.4 times);
    ``cv2.INTER_NEAREST_EXACT`` samples the pixel under each centre. Only
    transforms that accept it (those that resize: crops, ``Resize``...) get it;
    the warps' nearest neighbour is already centred. The image and the draws
    are those of the transform as written.
    """
    if isinstance(node, list):
        return [_centred_masks(value, A) for value in node]
    if not isinstance(node, dict):
        return node
    result = {key: _centred_masks(value, A) for key, value in node.items()}
    if result.get("mask_interpolation") == _CV_NEAREST and "transforms" not in result:
        exact = {**result, "mask_interpolation": _CV_NEAREST_EXACT}
        try:
            build(A, {"transform": exact})
        except Exception:  # this transform's schema does not take it: keep its own
            return result
        return exact
    return result


#: albumentations' warning for a Compose with boxes whose transforms never move them.
_NO_BOX_TRANSFORM = "Got processor for bboxes, but no transform to process it"


def _with_boxes(text: str, min_visibility: float, masks: bool = False) -> Any:
    """The serialized transform inside a Compose that carries pascal_voc boxes, once per thread.

    With ``masks``, its masks are resized on pixel centres (:func:`_centred_masks`).
    """
    built = getattr(_BUILT, "boxes", None)
    if built is None:
        built = _BUILT.boxes = {}
    key = (text, min_visibility, masks)
    if key not in built:
        A = import_albumentations()
        params = A.BboxParams(
            format="pascal_voc",
            label_fields=[IDS],
            min_visibility=min_visibility,
            min_area=0.0,
            min_width=0.0,
            min_height=0.0,
        )
        serialized = json.loads(text)
        if masks:
            serialized = _centred_masks(serialized, A)
        with warnings.catch_warnings():
            # A pixel-level transform leaves boxes where they are, as it should; albumentations
            # says so on stderr for every Compose it builds, once per worker and output kind.
            warnings.filterwarnings("ignore", _NO_BOX_TRANSFORM, UserWarning)
            built[key] = A.Compose([build(A, serialized)], bbox_params=params, p=1.0)
    return built[key]


def albumentations_step(name: str, serialized: dict, at: str) -> StepType:
    """A step running a serialized albumentations transform, seeded per output, boxes and all.

    Args:
        name: The step's name.
        serialized: ``A.to_dict`` form (checked by :func:`augtool.pipeline.albu.check_serialized`).
        at: ``output`` or ``work``.
    """
    text = json.dumps(serialized, sort_keys=True)

    def apply_targets(
        image: np.ndarray, params: Params, targets: Targets, min_visibility: float
    ) -> tuple[np.ndarray, Targets]:
        masks = targets.shapes is not None or targets.semantic is not None
        transform = _with_boxes(text, min_visibility, masks)
        transform.set_random_seed(params["seed"])
        data: dict[str, Any] = {
            "image": np.ascontiguousarray(image),
            "bboxes": targets.boxes.reshape(-1, 4),
            IDS: [int(i) for i in targets.ids],
        }
        height, width = image.shape[:2]
        if targets.shapes:
            data["masks"] = np.stack([_bitmap(s, width, height) for s in targets.shapes])
        if targets.semantic is not None:
            data["mask"] = np.ascontiguousarray(targets.semantic)
        result = transform(**data)
        out = result["image"]
        size = (float(out.shape[1]), float(out.shape[0]))
        boxes = np.asarray(result["bboxes"], dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(result[IDS], dtype=np.float64).astype(np.int64).reshape(-1)
        if targets.shapes is None and targets.semantic is None:
            return out, Targets(size, boxes, ids)
        semantic = None if targets.semantic is None else np.asarray(result["mask"])
        if targets.shapes is None:
            return out, Targets(size, boxes, ids, semantic=semantic)
        return out, _instances_back(targets, result.get("masks", ()), boxes, ids, size, semantic)

    return dataclasses.replace(make_entry(name, serialized, at), apply_targets=apply_targets)


def _bitmap(shape: Shape, width: int, height: int) -> np.ndarray:
    """An instance as a uint8 ``(height, width)`` mask (1: the instance) for albumentations."""
    if isinstance(shape, Patch):
        return shape.full(width, height).view(np.uint8)
    return rasterize_polygons(shape, width, height).view(np.uint8)


def _instances_back(
    targets: Targets,
    masks: Any,
    boxes: np.ndarray,
    ids: np.ndarray,
    size: tuple[float, float],
    semantic: np.ndarray | None,
) -> Targets:
    """The instances whose boxes albumentations kept and whose masks are not empty."""
    position = {int(i): k for k, i in enumerate(targets.ids)}
    kept_shapes: list[Shape] = []
    kept_boxes, kept_ids = [], []
    for box, i in zip(boxes, ids, strict=True):
        patch = Patch.of(np.asarray(masks[position[int(i)]]) > 0)
        found = patch.box()
        if found is None:
            continue
        kept_shapes.append(patch)
        kept_boxes.append(found if targets.tight else tuple(box))
        kept_ids.append(i)
    return Targets(
        size,
        np.asarray(kept_boxes, np.float64).reshape(-1, 4),
        np.asarray(kept_ids, np.int64),
        shapes=tuple(kept_shapes),
        semantic=semantic,
        tight=targets.tight,
    )
