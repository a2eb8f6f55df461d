"""Steps and pipelines: what a recipe names, resolved, applied to an image and its targets.

* ``steps``: :class:`StepType`, what every step is (settings, sampling,
  pixels, and where its targets go);
* ``builtins``: the one table of built-in steps;
* ``albu_boxes``: albumentations steps, boxes carried by albumentations;
* ``core``: :class:`Pipeline` and :func:`load_recipe`.

The names below are imported when first used, so importing a module of this
package never imports the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Pipeline", "PipelineStep", "Sample", "StepType", "load_recipe"]

#: Where each name of ``__all__`` is defined.
_HOME = {
    "Pipeline": "augtool.pipeline.core",
    "PipelineStep": "augtool.pipeline.core",
    "Sample": "augtool.pipeline.core",
    "load_recipe": "augtool.pipeline.core",
    "StepType": "augtool.pipeline.steps",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from augtool.pipeline.core import Pipeline, PipelineStep, Sample, load_recipe
    from augtool.pipeline.steps import StepType
