"""VOC / COCO / YOLO writers: round trips through the readers and the published conventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augtool.annotations import Box, ImageBoxes, read_annotations
from augtool.annotations.write import annotation_files, voc_corners, write_annotations
from augtool.errors import OptionError
from tests.conftest import write_image

CLASSES = ["Platelets", "RBC", "WBC"]


def box(x0: float, y0: float, x1: float, y1: float, label: str, index: int) -> Box:
    return Box(x0, y0, x1, y1, label=label, index=index, where=f"object {index}")


@pytest.fixture
def items(tmp_path: Path) -> tuple[Path, list[ImageBoxes]]:
    images = tmp_path / "images"
    write_image(images / "a.png", np.zeros((48, 64, 3), np.uint8))
    write_image(images / "sub" / "b.png", np.zeros((60, 80, 3), np.uint8))
    write_image(images / "c.png", np.zeros((30, 40, 3), np.uint8))
    found = [
        ImageBoxes(
            "a.png",
            64,
            48,
            (box(3.2, 4.7, 20.6, 30.1, "RBC", 0), box(0.0, 10.0, 64.0, 48.0, "WBC", 1)),
            "",
        ),
        ImageBoxes("c.png", 40, 30, (), ""),
        ImageBoxes("sub/b.png", 80, 60, (box(10.25, 11.5, 12.75, 40.0, "Platelets", 0),), ""),
    ]
    return images, found


@pytest.mark.parametrize(("fmt", "tolerance"), [("voc", 0.5), ("coco", 0.005), ("yolo", 1e-4)])
def test_round_trip_through_the_readers(items, tmp_path: Path, fmt: str, tolerance: float) -> None:
    images, found = items
    folder = tmp_path / "ann"
    write_annotations(fmt, folder, found, CLASSES)
    back = read_annotations(fmt, folder, images)
    assert back.problems == [] and back.warnings == []
    assert [i.image for i in back.images] == [i.image for i in found]
    for mine, theirs in zip(found, back.images, strict=True):
        assert (theirs.width, theirs.height) == (mine.width, mine.height)
        assert [b.label for b in theirs.boxes] == [b.label for b in mine.boxes]
        for a, b in zip(mine.boxes, theirs.boxes, strict=True):
            np.testing.assert_allclose(
                [b.x0, b.y0, b.x1, b.y1], [a.x0, a.y0, a.x1, a.y1], atol=tolerance
            )


def test_yolo_is_class_and_normalized_centre_and_size(items) -> None:
    _, found = items
    files = annotation_files("yolo", found, CLASSES)
    assert files["classes.txt"] == "Platelets\nRBC\nWBC\n"
    assert files["c.txt"] == ""
    first, second = files["a.txt"].splitlines()
    cls, cx, cy, w, h = first.split()
    assert cls == "1"
    np.testing.assert_allclose(
        [float(cx), float(cy), float(w), float(h)],
        [11.9 / 64, 17.4 / 48, 17.4 / 64, 25.4 / 48],
        atol=1e-6,
    )
    # 38/48 = 0.7916667 would reach 1.0000005: narrowed by a millionth to stay inside.
    assert second.split() == ["2", "0.500000", "0.604167", "1.000000", "0.791666"]


def test_coco_is_xywh_with_declared_category_ids(items) -> None:
    _, found = items
    doc = json.loads(annotation_files("coco", found, CLASSES)["annotations.json"])
    assert doc["categories"] == [
        {"id": 1, "name": "Platelets"},
        {"id": 2, "name": "RBC"},
        {"id": 3, "name": "WBC"},
    ]
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in doc["images"]] == [
        (1, "a.png", 64, 48),
        (2, "c.png", 40, 30),
        (3, "sub/b.png", 80, 60),
    ]
    first = doc["annotations"][0]
    assert first["image_id"] == 1 and first["category_id"] == 2
    np.testing.assert_allclose(first["bbox"], [3.2, 4.7, 17.4, 25.4])
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3]


def test_voc_corners_are_one_based_and_inclusive() -> None:
    assert voc_corners(box(0, 0, 10, 5, "RBC", 0)) == (1, 1, 10, 5)
    with pytest.raises(ValueError, match="under 2 px"):
        voc_corners(box(10.0, 0, 11.0, 5, "RBC", 0))


def test_voc_xml_names_the_image_and_size(items) -> None:
    _, found = items
    xml = annotation_files("voc", found, CLASSES)["sub/b.xml"]
    assert "<filename>sub/b.png</filename>" in xml
    assert "<width>80</width>" in xml and "<height>60</height>" in xml
    assert "<xmin>11</xmin>" in xml and "<xmax>13</xmax>" in xml


def test_unknown_class_and_format_are_refused(items) -> None:
    _, found = items
    with pytest.raises(ValueError, match="WBC"):
        annotation_files("yolo", found, ["RBC", "Platelets"])
    with pytest.raises(ValueError, match="WBC"):
        annotation_files("coco", found, ["RBC", "Platelets"])
    with pytest.raises(OptionError, match="format"):
        annotation_files("kitti", found, CLASSES)
