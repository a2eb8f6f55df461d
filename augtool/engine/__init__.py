"""The engine of ``expand``: scan, groups, split, plan, render, backends, expand, verify.

* ``scan`` and ``groups``: RAW's sources (paths, classes, hashes, sizes) and
  the groups (smear, patient) that must stay together;
* ``split``: sources into train/val/test or folds, by group;
* ``options`` and ``plan``: the run's options, checked, and every output laid
  out before any pixel moves (pure);
* ``render``: a worker's side, one source through the pipeline;
* ``backends``, ``dask_backend`` and ``pool``: where the workers run;
* ``expand`` and ``dry_run``: the run, and the same scan and plan printed;
* ``detection``: annotated images as sources, and the boxes written back;
* ``verify``: an output checked against its records, or replayed.
"""
