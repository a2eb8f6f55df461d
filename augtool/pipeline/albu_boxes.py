"""Albumentations steps that carry boxes, through albumentations' own box support.

An albumentations step (``augtool.albu``) draws one seed per output and
reseeds its transform with it. With targets, the same transform is wrapped in
``A.Compose(..., bbox_params=A.BboxParams(format="pascal_voc", ...))`` and
reseeded with the same seed: ``Compose.set_random_seed`` hands its seed to
every child, so the child draws what it draws alone and the pixels are the
bytes of the step without boxes (``tests/test_pipeline.py`` checks it), while
albumentations moves, clips and drops the boxes with them. A box is dropped
when less than ``min_visibility`` of its area stays in the image, as
``augtool.ops.targets.map_boxes`` does.

albumentations is imported only when such a step is built.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import numpy as np

from augtool.albu import import_albumentations, make_entry
from augtool.ops.targets import Targets
from augtool.pipeline.steps import Params, StepType

#: The label field that carries each box's id through albumentations.
IDS = "augtool_ids"

#: Built box pipelines of this thread, by (serialized transform, min_visibility); see
#: ``augtool.albu`` for why per thread.
_BUILT = threading.local()


def _with_boxes(text: str, min_visibility: float) -> Any:
    """The serialized transform inside a Compose that carries pascal_voc boxes, once per thread."""
    built = getattr(_BUILT, "pipelines", None)
    if built is None:
        built = _BUILT.pipelines = {}
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
        serialized: ``A.to_dict`` form (checked by :func:`augtool.albu.check_serialized`).
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
