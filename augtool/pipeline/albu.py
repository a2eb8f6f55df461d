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
from types import ModuleType
from typing import Any

import numpy as np

from augtool.errors import OptionError
from augtool.ops.targets import Targets
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
        A.from_dict(normalized)
    except Exception as err:  # albumentations raises many kinds for a bad dict
        raise OptionError(
            f"{where}.transform", f"albumentations cannot build it: {type(err).__name__}: {err}"
        ) from err
    return normalized


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
        built[serialized] = A.from_dict(json.loads(serialized))
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


def _with_boxes(text: str, min_visibility: float) -> Any:
    """The serialized transform inside a Compose that carries pascal_voc boxes, once per thread."""
    built = getattr(_BUILT, "boxes", None)
    if built is None:
        built = _BUILT.boxes = {}
    key = (text, min_visibility)
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
        built[key] = A.Compose([A.from_dict(json.loads(text))], bbox_params=params, p=1.0)
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
        transform = _with_boxes(text, min_visibility)
        transform.set_random_seed(params["seed"])
        result = transform(
            image=np.ascontiguousarray(image),
            bboxes=targets.boxes.reshape(-1, 4),
            **{IDS: [int(i) for i in targets.ids]},
        )
        out = result["image"]
        boxes = np.asarray(result["bboxes"], dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(result[IDS], dtype=np.float64).astype(np.int64).reshape(-1)
        return out, Targets((float(out.shape[1]), float(out.shape[0])), boxes, ids)

    return dataclasses.replace(make_entry(name, serialized, at), apply_targets=apply_targets)
