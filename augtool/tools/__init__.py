"""Features built on the engine: cells, previews, the dataset report, synthetic smears.

* ``cells`` and ``cell_plan``: cut annotated cells out of smears into class folders;
* ``preview`` and ``tiles``: contact sheets of one image, grids of a dataset;
* ``dataset_report`` (with ``report_gather``, ``report_items``,
  ``report_sections``, ``report_boxes``): one HTML page of a dataset;
* ``synth`` and ``smear``: synthetic smears with exact boxes and masks.
"""
