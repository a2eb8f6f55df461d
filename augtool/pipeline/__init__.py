"""Steps and pipelines: what a recipe names, resolved, applied to an image and its targets.

* ``steps``: :class:`StepType`, what every step is (settings, sampling,
  pixels, and where its targets go);
* ``builtins``: the one table of built-in steps;
* ``albu_boxes``: albumentations steps, boxes carried by albumentations;
* ``core``: :class:`Pipeline` and :func:`load_recipe`.
"""

from augtool.pipeline.core import Pipeline, PipelineStep, Sample, load_recipe
from augtool.pipeline.steps import StepType

__all__ = ["Pipeline", "PipelineStep", "Sample", "StepType", "load_recipe"]
