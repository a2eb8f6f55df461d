"""Steps and pipelines: what a recipe names, resolved, applied to an image and its targets.

* ``steps``: :class:`~augtool.pipeline.steps.StepType`, what every step is
  (settings, sampling, pixels, and where its targets go), and the key of every
  output's generator;
* ``builtins`` and ``curator_steps``: the one table of built-in steps;
* ``settings``: a step's recipe settings, typed and bounded;
* ``plugins``: steps of the user's own modules, loaded by the user's word only;
* ``albu``: albumentations steps, boxes carried by albumentations;
* ``recipe_spec`` and ``recipe_toml``: recipes as data, and recipe files;
* ``core``: :class:`~augtool.pipeline.core.Pipeline`, which applies a step to
  one image and its targets with the bytes ``expand`` writes.

The public names (``Pipeline``, ``StepType``, ``load_recipe``) are
``augtool``'s own.
"""
