"""Pure functions of an image, its targets and parameters: same inputs, same bytes.

Nothing here reads files, the clock or global random state, and nothing here
knows of recipes, plans or writers: the layers above (``augtool.pipeline``,
the engine) call these functions with parameters drawn from explicit
generators.
"""
