"""The picture model behind ``augtool synth``: generated stained blood smears.

``shapes`` (soft-edged outlines) -> ``cells`` (red and white cells, sampled per
class) -> ``scene`` (one image's cells, stain and optics, sampled) -> ``draw``
(the pure rendering). The dataset writer and the public entry points live in
:mod:`augtool.tools.synth`. numpy and OpenCV only, never albumentations.
"""
