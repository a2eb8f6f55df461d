"""``augtool cells``: annotation readers, every bad-annotation case, geometry, caps, groups."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.annotations import read_annotations
from augtool.annotations.base import Box
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.scan import scan
from augtool.errors import InputError, OptionError
from augtool.tools.cell_plan import plan_cells, square_around, window_around
from augtool.tools.cells import CellOptions, cut_cells
from tests.child_process import run_cli
from tests.conftest import smear_like, write_image

W, H = 160, 120
#: (image stem, class, (x0, y0, x1, y1) pixel edges, truncated)
OBJECTS = [
    ("s1", "WBC", (10.0, 20.0, 50.0, 60.0), False),
    ("s1", "RBC", (100.0, 70.0, 130.0, 100.0), False),
    ("s1", "RBC", (130.0, 90.0, 160.0, 120.0), True),
    ("s2", "Platelets", (60.0, 40.0, 70.0, 50.0), False),
    ("s2", "RBC", (5.0, 5.0, 35.0, 35.0), False),
]
CLASSES = ["Platelets", "RBC", "WBC"]


def make_smears(root: Path, stems: list[str], size: tuple[int, int] = (W, H)) -> Path:
    for i, stem in enumerate(stems):
        write_image(root / f"{stem}.png", smear_like(np.random.default_rng(i), *size))
    return root


def voc_xml(image: str, objects: list[tuple], size: tuple[int, int] = (W, H)) -> str:
    parts = [
        f"<annotation><filename>{image}</filename>",
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>",
    ]
    for label, corners, truncated in objects:
        xmin, ymin, xmax, ymax = corners
        parts.append(
            f"<object><name>{label}</name><truncated>{int(truncated)}</truncated><bndbox>"
            f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
            "</bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


def write_voc(root: Path, objects: list[tuple] = OBJECTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    by_image: dict[str, list[tuple]] = {}
    for stem, label, (x0, y0, x1, y1), truncated in objects:
        # VOC is 1-based and inclusive: pixel edge x0 is xmin - 1.
        by_image.setdefault(stem, []).append((label, (x0 + 1, y0 + 1, x1, y1), truncated))
    for stem, objs in by_image.items():
        (root / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", objs))
    return root


def coco_dict(objects: list[tuple] = OBJECTS) -> dict:
    stems = sorted({o[0] for o in objects})
    images = [
        {"id": i + 1, "file_name": f"{s}.png", "width": W, "height": H} for i, s in enumerate(stems)
    ]
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    annotations = []
    for k, (stem, label, (x0, y0, x1, y1), _) in enumerate(objects):
        annotations.append(
            {
                "id": k + 1,
                "image_id": stems.index(stem) + 1,
                "category_id": CLASSES.index(label) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
            }
        )
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(path: Path, data: dict | None = None) -> Path:
    path.write_text(json.dumps(coco_dict() if data is None else data))
    return path


def write_yolo(root: Path, objects: list[tuple] = OBJECTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    lines: dict[str, list[str]] = {}
    for stem, label, (x0, y0, x1, y1), _ in objects:
        cx, cy = (x0 + x1) / 2 / W, (y0 + y1) / 2 / H
        w, h = (x1 - x0) / W, (y1 - y0) / H
        lines.setdefault(stem, []).append(f"{CLASSES.index(label)} {cx} {cy} {w} {h}")
    for stem, ls in lines.items():
        (root / f"{stem}.txt").write_text("\n".join(ls) + "\n")
    return root


@pytest.fixture
def smears(tmp_path: Path) -> Path:
    return make_smears(tmp_path / "smears", ["s1", "s2"])


def annotations_in(fmt: str, tmp_path: Path, objects: list[tuple] = OBJECTS) -> Path:
    if fmt == "voc":
        return write_voc(tmp_path / "voc", objects)
    if fmt == "coco":
        return write_coco(tmp_path / "coco.json", coco_dict(objects))
    return write_yolo(tmp_path / "yolo", objects)


# --- readers ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_readers_give_the_same_boxes(fmt: str, smears: Path, tmp_path: Path) -> None:
    found = read_annotations(fmt, annotations_in(fmt, tmp_path), smears)
    assert found.problems == [] and found.warnings == []
    assert found.classes == CLASSES
    got = [
        (item.image, b.label, (b.x0, b.y0, b.x1, b.y1)) for item in found.images for b in item.boxes
    ]
    want = [(f"{s}.png", lab, corners) for s, lab, corners, _ in OBJECTS]
    assert len(got) == len(want)
    for (gi, gl, gc), (wi, wl, wc) in zip(sorted(got), sorted(want), strict=True):
        assert (gi, gl) == (wi, wl)
        assert np.allclose(gc, wc, atol=1e-6)
    assert all((i.width, i.height) == (W, H) for i in found.images)


def test_voc_truncated_flag(smears: Path, tmp_path: Path) -> None:
    found = read_annotations("voc", write_voc(tmp_path / "voc"), smears)
    flags = [b.truncated for i in found.images for b in i.boxes]
    assert flags == [False, False, True, False, False]


def test_unannotated_images_are_listed(tmp_path: Path) -> None:
    smears = make_smears(tmp_path / "smears", ["s1", "s2", "s3"])
    found = read_annotations("voc", write_voc(tmp_path / "voc"), smears)
    assert found.unannotated == ["s3.png"]


def one_problem(fmt: str, found: object) -> str:
    assert len(found.problems) == 1, [str(p) for p in found.problems]
    return str(found.problems[0])


VOC_BAD = {
    "missing image": (
        voc_xml("nope.png", [("RBC", (1, 1, 10, 10), False)]),
        "names image 'nope.png', which is not in",
    ),
    "no area": (voc_xml("s1.png", [("RBC", (20, 20, 20, 40), False)]), "has no area"),
    "swapped": (voc_xml("s1.png", [("RBC", (40, 20, 20, 40), False)]), "corners swapped"),
    "wholly outside": (voc_xml("s1.png", [("RBC", (200, 20, 240, 40), False)]), "wholly outside"),
    "not a number": (voc_xml("s1.png", [("RBC", ("1O", 20, 30, 40), False)]), "not a number"),
    "malformed": ("<annotation><filename>s1.png</filename>", "malformed XML"),
    "empty": ("", "empty XML file"),
    "wrong size": (
        voc_xml("s1.png", [("RBC", (1, 1, 10, 10), False)], size=(640, 480)),
        "states the size of s1.png as 640x480, but the file is 160x120",
    ),
}


@pytest.mark.parametrize("case", sorted(VOC_BAD))
def test_voc_bad_annotations(case: str, smears: Path, tmp_path: Path) -> None:
    text, message = VOC_BAD[case]
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "s1.xml").write_text(text)
    found = read_annotations("voc", folder, smears)
    line = one_problem("voc", found)
    assert message in line
    assert line.startswith(str(folder / "s1.xml"))
    if case in ("no area", "swapped", "wholly outside", "not a number"):
        assert ", object 1:" in line


def test_voc_partly_outside_is_clipped_with_a_warning(smears: Path, tmp_path: Path) -> None:
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "s1.xml").write_text(voc_xml("s1.png", [("RBC", (-5, 100, 30, 140), False)]))
    found = read_annotations("voc", folder, smears)
    assert found.problems == []
    (box,) = found.images[0].boxes
    assert (box.x0, box.y0, box.x1, box.y1) == (0, 99, 30, 120) and box.clipped
    (warning,) = found.warnings
    assert str(folder / "s1.xml") in warning and "object 1" in warning and "clipped" in warning


def test_all_problems_listed_at_once(smears: Path, tmp_path: Path) -> None:
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "s1.xml").write_text(
        voc_xml(
            "s1.png",
            [
                ("RBC", (20, 20, 20, 40), False),
                ("RBC", (10, 10, 30, 30), False),
                ("WBC", (40, 20, 20, 40), False),
                ("WBC", (1, 1, "x", 9), False),
            ],
        )
    )
    (folder / "s2.xml").write_text("<annotation>")
    (folder / "s3.xml").write_text(voc_xml("s3.png", []))
    found = read_annotations("voc", folder, smears)
    lines = [str(p) for p in found.problems]
    assert len(lines) == 5, lines
    assert any("s1.xml, object 1:" in s for s in lines)
    assert any("s1.xml, object 3:" in s for s in lines)
    assert any("s1.xml, object 4:" in s for s in lines)
    assert any("s2.xml" in s and "malformed" in s for s in lines)
    assert any("s3.xml" in s and "'s3.png'" in s for s in lines)
    assert [b.where for b in found.images[0].boxes] == ["object 2"]


def test_repeated_box_is_a_problem(smears: Path, tmp_path: Path) -> None:
    objects = [*OBJECTS, OBJECTS[1]]
    found = read_annotations("voc", write_voc(tmp_path / "voc", objects), smears)
    line = one_problem("voc", found)
    assert "s1.xml, object 4:" in line and "repeats object 2" in line
    assert len(found.images[0].boxes) == 3


def coco_with(change: str) -> dict:
    data = coco_dict()
    if change == "undeclared category":
        data["annotations"][0]["category_id"] = 9
    elif change == "missing image":
        data["images"][0]["file_name"] = "gone.png"
    elif change == "not a number":
        data["annotations"][0]["bbox"] = [1, "two", 3, 4]
    elif change == "negative width":
        data["annotations"][0]["bbox"] = [50, 20, -40, 40]
    elif change == "no area":
        data["annotations"][0]["bbox"] = [50, 20, 0, 40]
    elif change == "wholly outside":
        data["annotations"][0]["bbox"] = [170, 20, 10, 10]
    elif change == "unknown image id":
        data["annotations"][0]["image_id"] = 77
    return data


COCO_BAD = {
    "undeclared category": "category_id 9 is not declared",
    "missing image": "names image 'gone.png', which is not in",
    "not a number": "is not four numbers",
    "negative width": "negative width or height (corners swapped)",
    "no area": "has no area",
    "wholly outside": "wholly outside",
    "unknown image id": "image_id 77 is not declared in 'images'",
}


@pytest.mark.parametrize("case", sorted(COCO_BAD))
def test_coco_bad_annotations(case: str, smears: Path, tmp_path: Path) -> None:
    path = write_coco(tmp_path / "coco.json", coco_with(case))
    line = one_problem("coco", read_annotations("coco", path, smears))
    assert line.startswith(str(path)) and COCO_BAD[case] in line
    where = "images[0]" if case == "missing image" else "annotation id 1"
    assert f", {where}:" in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty JSON file"),
        ('{"images": [', "malformed JSON"),
        ('{"images": []}', "not a COCO file (no 'annotations', 'categories')"),
        ("[1, 2]", "not a COCO file"),
    ],
)
def test_coco_bad_files(text: str, message: str, smears: Path, tmp_path: Path) -> None:
    path = tmp_path / "coco.json"
    path.write_text(text)
    assert message in one_problem("coco", read_annotations("coco", path, smears))


def test_coco_partly_outside_is_clipped(smears: Path, tmp_path: Path) -> None:
    data = coco_dict()
    data["annotations"][0]["bbox"] = [150, 100, 20, 30]
    found = read_annotations("coco", write_coco(tmp_path / "c.json", data), smears)
    assert found.problems == []
    assert "annotation id 1" in found.warnings[0] and "clipped" in found.warnings[0]


YOLO_BAD = {
    "missing image": ("s9.txt", "0 0.5 0.5 0.1 0.1\n", "names image s9.*, which is not in"),
    "class out of range": ("s1.txt", "3 0.5 0.5 0.1 0.1\n", "class '3' is not a line number"),
    "not a number": ("s1.txt", "0 0.5 half 0.1 0.1\n", "not a number: 'half'"),
    "field count": ("s1.txt", "0 0.5 0.5 0.1\n", "expected 5 fields"),
    "no area": ("s1.txt", "1 0.5 0.5 0 0.1\n", "has no area"),
    "negative": ("s1.txt", "1 0.5 0.5 -0.1 0.1\n", "negative width or height"),
    "wholly outside": ("s1.txt", "1 1.5 0.5 0.1 0.1\n", "wholly outside"),
}


@pytest.mark.parametrize("case", sorted(YOLO_BAD))
def test_yolo_bad_annotations(case: str, smears: Path, tmp_path: Path) -> None:
    name, text, message = YOLO_BAD[case]
    folder = tmp_path / "yolo"
    folder.mkdir()
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (folder / name).write_text(text)
    line = one_problem("yolo", read_annotations("yolo", folder, smears))
    assert line.startswith(str(folder / name)) and message in line
    if case != "missing image":
        assert ", line 1:" in line


def test_yolo_empty_label_file_means_no_objects(smears: Path, tmp_path: Path) -> None:
    folder = write_yolo(tmp_path / "yolo")
    (folder / "s2.txt").write_text("")
    found = read_annotations("yolo", folder, smears)
    assert found.problems == []
    assert [len(i.boxes) for i in found.images] == [3, 0]


def test_yolo_empty_names_file(smears: Path, tmp_path: Path) -> None:
    folder = write_yolo(tmp_path / "yolo")
    (folder / "classes.txt").write_text("\n")
    found = read_annotations("yolo", folder, smears)
    assert any("classes.txt: empty class names file" in str(p) for p in found.problems)


def test_yolo_names_file_required(smears: Path, tmp_path: Path) -> None:
    folder = write_yolo(tmp_path / "yolo")
    (folder / "classes.txt").unlink()
    with pytest.raises(InputError, match="names"):
        read_annotations("yolo", folder, smears)
    (tmp_path / "n.names").write_text("\n".join(CLASSES))
    found = read_annotations("yolo", folder, smears, names=tmp_path / "n.names")
    assert found.problems == [] and len(found.images) == 2


def test_names_only_for_yolo(smears: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="names"):
        read_annotations("voc", write_voc(tmp_path / "voc"), smears, names=tmp_path / "x")


# --- geometry --------------------------------------------------------------------------


def box(x0: float, y0: float, x1: float, y1: float, label: str = "RBC", index: int = 0) -> Box:
    return Box(x0, y0, x1, y1, label=label, index=index, where=f"object {index + 1}")


def test_window_centred_and_shifted_inward() -> None:
    assert window_around(box(70, 50, 90, 70), 40, W, H) == (60, 40, 100, 80)
    assert window_around(box(0, 0, 10, 10), 40, W, H) == (0, 0, 40, 40)
    assert window_around(box(150, 110, 160, 120), 40, W, H) == (120, 80, 160, 120)
    assert window_around(box(0, 0, 160, 120), 120, W, H) == (20, 0, 140, 120)


def test_square_box_with_margin() -> None:
    # 20 x 10 box, margin 0.1 of the longer side each side: a 24 px square on the centre.
    assert square_around(box(70, 50, 90, 60), 0.1, W, H) == (68, 43, 92, 67)
    # At the border the square keeps its size and moves inward.
    assert square_around(box(0, 0, 20, 10), 0.5, W, H) == (0, 0, 40, 40)
    # Never larger than the image's shorter side.
    assert square_around(box(0, 0, 160, 100), 0.1, W, H) == (20, 0, 140, 120)


@pytest.mark.parametrize("crop", ["window", "box"])
def test_written_pixels_are_the_window(crop: str, smears: Path, tmp_path: Path) -> None:
    ann = write_voc(tmp_path / "voc")
    options = CellOptions(format="voc", crop=crop, window=64, margin=0.25, size=None)
    out = tmp_path / "out"
    summary = cut_cells(smears, ann, out, options)
    assert summary.total == 5
    with open(out / "cells.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        rgb = cv2.cvtColor(cv2.imread(str(smears / row["smear"])), cv2.COLOR_BGR2RGB)
        x0, y0, x1, y1 = (int(row[k]) for k in ("window_x0", "window_y0", "window_x1", "window_y1"))
        cell = cv2.cvtColor(cv2.imread(str(out / row["file"])), cv2.COLOR_BGR2RGB)
        if crop == "window":
            assert (x1 - x0, y1 - y0) == (64, 64)
            assert np.array_equal(cell, rgb[y0:y1, x0:x1])
        else:
            assert x1 - x0 == y1 - y0
            assert cell.shape == (256, 256, 3)
            want = cv2.resize(rgb[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_LINEAR)
            assert np.array_equal(cell, want)
        stem = Path(row["smear"]).stem
        assert Path(row["file"]).name.startswith(f"{stem}_")
        assert row["file"].startswith(f"{row['class']}/")


# --- selection -------------------------------------------------------------------------


def many_objects(n_smears: int = 6, per_smear: int = 8) -> list[tuple]:
    objects = []
    for s in range(n_smears):
        for k in range(per_smear):
            x = 4 + 18 * k
            objects.append((f"m{s}", "RBC", (float(x), 10.0, float(x + 14), 24.0), False))
        objects.append((f"m{s}", "WBC", (60.0, 80.0, 90.0, 110.0), False))
    return objects


def test_caps_are_seeded_and_deterministic(tmp_path: Path) -> None:
    objects = many_objects()
    smears = make_smears(tmp_path / "smears", sorted({o[0] for o in objects}))
    found = read_annotations("voc", write_voc(tmp_path / "voc", objects), smears)

    def picked(**kw: object) -> list[str]:
        cells, _ = plan_cells(found, CellOptions(window=16, **kw))  # type: ignore[arg-type]
        return [c.name for c in cells]

    a = picked(max_per_smear=3, seed=0)
    assert a == picked(max_per_smear=3, seed=0)
    per = Counter((n.split("/")[0], n.split("/")[1][:2]) for n in a)
    assert per[("RBC", "m0")] == 3 and per[("WBC", "m0")] == 1
    assert a != picked(max_per_smear=3, seed=1)
    capped = picked(max_per_smear=3, max_per_class=10, seed=0)
    assert Counter(n.split("/")[0] for n in capped) == {"RBC": 10, "WBC": 6}
    assert set(capped) <= set(a)
    # The choice in one smear does not depend on the others being there.
    fewer = read_annotations("voc", write_voc(tmp_path / "voc2", objects[:9]), smears)
    cells, _ = plan_cells(fewer, CellOptions(window=16, max_per_smear=3, seed=0))
    assert [c.name for c in cells if c.smear == "m0.png"] == [n for n in a if "/m0_" in n]


def test_caps_through_the_cli_are_deterministic(tmp_path: Path) -> None:
    objects = many_objects()
    smears = make_smears(tmp_path / "smears", sorted({o[0] for o in objects}))
    ann = write_voc(tmp_path / "voc", objects)
    for name in ("a", "b"):
        code, out = run_cli(
            "cells", smears, ann, tmp_path / name, "--annotation-format", "voc", "--window", "16",
            "--max-per-class", "7", "--seed", "3",
        )  # fmt: skip
        assert code == 0, out
        table = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:4]}
        assert table == {"RBC": "7", "WBC": "6"}
    a, b = ((tmp_path / n / "cells.csv").read_text() for n in ("a", "b"))
    assert a == b


def test_overlap_exclusion(smears: Path, tmp_path: Path) -> None:
    objects = [
        ("s1", "WBC", (60.0, 40.0, 100.0, 80.0), False),
        ("s1", "RBC", (100.0, 40.0, 120.0, 60.0), False),  # its 40 px window reaches the WBC
        ("s1", "RBC", (5.0, 80.0, 25.0, 100.0), False),  # far away
        ("s1", "RBC", (10.0, 10.0, 30.0, 30.0), False),
    ]
    found = read_annotations("voc", write_voc(tmp_path / "voc", objects), smears)
    cells, dropped = plan_cells(found, CellOptions(window=40, exclude_overlap=("WBC",)))
    assert sorted(c.name for c in cells) == [
        "RBC/s1_003_RBC.png",
        "RBC/s1_004_RBC.png",
        "WBC/s1_001_WBC.png",
    ]
    assert dropped == {"window overlaps another class": 1}
    cells, _ = plan_cells(found, CellOptions(window=48, exclude_overlap=("WBC",)))
    assert "WBC/s1_001_WBC.png" in [c.name for c in cells]
    cells, _ = plan_cells(found, CellOptions(window=48, exclude_overlap=("all",)))
    assert sorted(c.name for c in cells) == ["RBC/s1_003_RBC.png", "RBC/s1_004_RBC.png"]
    cells, _ = plan_cells(found, CellOptions(window=40))
    assert len(cells) == 4


def test_border_policy_and_min_size(smears: Path, tmp_path: Path) -> None:
    found = read_annotations("voc", write_voc(tmp_path / "voc"), smears)

    def names(**kw: object) -> set[str]:
        cells, _ = plan_cells(found, CellOptions(window=32, **kw))  # type: ignore[arg-type]
        return {c.name for c in cells}

    everything = names()
    assert len(everything) == 5
    assert everything - names(border="drop-truncated") == {"RBC/s1_003_RBC.png"}
    # Touching: the truncated one (at the corner) and none of the others.
    assert everything - names(border="drop-touching") == {"RBC/s1_003_RBC.png"}
    assert everything - names(min_size=12) == {"Platelets/s2_001_Platelets.png"}


def test_border_touching_without_flag(smears: Path, tmp_path: Path) -> None:
    objects = [("s1", "RBC", (0.0, 30.0, 20.0, 50.0), False), OBJECTS[1]]
    found = read_annotations("voc", write_voc(tmp_path / "voc", objects), smears)
    cells, _ = plan_cells(found, CellOptions(window=32, border="drop-touching"))
    assert [c.name for c in cells] == ["RBC/s1_002_RBC.png"]
    cells, _ = plan_cells(found, CellOptions(window=32, border="drop-truncated"))
    assert len(cells) == 2


def test_shared_corner_window(smears: Path, tmp_path: Path) -> None:
    objects = [
        ("s1", "RBC", (140.0, 100.0, 160.0, 120.0), False),
        ("s1", "RBC", (130.0, 95.0, 150.0, 115.0), False),
        ("s2", "RBC", (140.0, 100.0, 160.0, 120.0), False),
        ("s2", "Platelets", (130.0, 95.0, 150.0, 115.0), False),
    ]
    found = read_annotations("voc", write_voc(tmp_path / "voc", objects), smears)
    cells, dropped = plan_cells(found, CellOptions(window=64))
    assert [c.name for c in cells] == ["RBC/s1_001_RBC.png"]
    assert dropped == {
        "same window as another cell of its class": 1,
        "same window as a cell of another class": 2,
    }


def test_classes_and_rename(smears: Path, tmp_path: Path) -> None:
    ann = write_voc(tmp_path / "voc")
    code, out = run_cli(
        "cells", smears, ann, tmp_path / "o", "--annotation-format", "voc", "--window", "32",
        "--classes", "WBC,Platelets", "--rename", "Platelets=PLT",
    )  # fmt: skip
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["PLT", "WBC", "cells.csv"]
    assert (tmp_path / "o" / "PLT" / "s2_001_PLT.png").is_file()
    # Two classes renamed to one: merged.
    code, out = run_cli(
        "cells", smears, ann, tmp_path / "m", "--annotation-format", "voc", "--window", "32",
        "--rename", "WBC=cell,Platelets=cell",
    )  # fmt: skip
    assert code == 0, out
    assert len(list((tmp_path / "m" / "cell").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--classes", "WBC,Monocyte"], "--classes"),
        (["--rename", "Monocyte=M"], "--rename"),
        (["--exclude-overlap", "Monocyte"], "--exclude-overlap"),
        (["--max-per-class", "0"], "--max-per-class"),
        (["--window", "4"], "--window"),
        (["--margin", "-1"], "--margin"),
        (["--rename", "WBC=../x"], "--rename"),
    ],
)
def test_bad_options_name_the_option(
    args: list[str], option: str, smears: Path, tmp_path: Path
) -> None:
    ann = write_voc(tmp_path / "voc")
    code, out = run_cli("cells", smears, ann, tmp_path / "o", "--annotation-format", "voc", *args)
    assert code == 2 and option in out, out
    assert not (tmp_path / "o").exists()


# --- the command: refusal, skip, atomic output -------------------------------------------


def test_bad_annotations_exit_2_and_write_nothing(smears: Path, tmp_path: Path) -> None:
    folder = write_voc(tmp_path / "voc")
    (folder / "s2.xml").write_text(
        voc_xml("s2.png", [("RBC", (20, 20, 20, 40), False), ("RBC", (5, 5, 30, 30), False)])
    )
    (folder / "s3.xml").write_text("not xml")
    out = tmp_path / "o"
    code, text = run_cli(
        "cells", smears, folder, out, "--annotation-format", "voc", "--window", "32"
    )
    assert code == 2
    assert "2 problem(s)" in text and "s2.xml, object 1" in text and "s3.xml" in text
    assert not out.exists() and list(tmp_path.glob(".o*")) == []
    code, text = run_cli(
        "cells",
        smears,
        folder,
        out,
        "--annotation-format",
        "voc",
        "--window",
        "32",
        "--skip-invalid",
    )
    assert code == 0, text
    assert "left out 2 faulty item(s)" in text
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert names == [
        "RBC/s1_002_RBC.png",
        "RBC/s1_003_RBC.png",
        "RBC/s2_002_RBC.png",
        "WBC/s1_001_WBC.png",
    ]


def test_image_that_does_not_decode(smears: Path, tmp_path: Path) -> None:
    (smears / "s2.png").write_bytes((smears / "s2.png").read_bytes()[:200])
    code, text = run_cli(
        "cells", smears, write_voc(tmp_path / "voc"), tmp_path / "o", "--annotation-format", "voc",
        "--window", "32",
    )  # fmt: skip
    assert code == 2 and "s2.png" in text and not (tmp_path / "o").exists()


def test_window_larger_than_smear(smears: Path, tmp_path: Path) -> None:
    code, text = run_cli(
        "cells", smears, write_voc(tmp_path / "voc"), tmp_path / "o", "--annotation-format", "voc"
    )
    assert code == 2 and "smaller than the window (--window 256)" in text


def test_existing_output_needs_overwrite(smears: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = [
        "cells",
        smears,
        write_voc(tmp_path / "voc"),
        out,
        "--annotation-format",
        "voc",
        "--window",
        "32",
    ]
    code, text = run_cli(*args)
    assert code == 2 and "--overwrite" in text and (out / "keep.txt").exists()
    code, text = run_cli(*args, "--overwrite")
    assert code == 0 and not (out / "keep.txt").exists()


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_counts_printed(fmt: str, smears: Path, tmp_path: Path) -> None:
    code, out = run_cli(
        "cells", smears, annotations_in(fmt, tmp_path), tmp_path / "o", "--annotation-format", fmt,
        "--window", "32",
    )  # fmt: skip
    assert code == 0, out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:5]}
    assert table == {"Platelets": ["1", "1"], "RBC": ["3", "2"], "WBC": ["1", "1"]}


# --- expand groups by smear --------------------------------------------------------------


def test_expand_groups_cells_by_smear(tmp_path: Path) -> None:
    objects = many_objects(n_smears=10, per_smear=4)
    smears = make_smears(tmp_path / "smears", sorted({o[0] for o in objects}))
    raw = tmp_path / "cells"
    cut_cells(smears, write_voc(tmp_path / "voc", objects), raw, CellOptions(window=16))
    scanned = scan(raw)
    assert scanned.grouped_by == "smear (cells.csv)"
    assert {s.group for s in scanned.sources} == {f"m{i}.png" for i in range(10)}
    for seed in range(4):
        out = tmp_path / f"x{seed}"
        expand(raw, out, ExpandOptions(size=16, target=None, factor=2, seed=seed, workers=1))
        with open(out / "manifest.csv", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        sides: dict[str, set[str]] = {}
        for row in rows:
            sides.setdefault(row["group"], set()).add(row["split"])
        assert all(len(s) == 1 for s in sides.values()), sides
        assert {sp for s in sides.values() for sp in s} == {"train", "test"}
    # A --group-regex wins over cells.csv.
    assert scan(raw, group_regex=r"_0\d\d_").grouped_by == ""


def test_expand_cli_says_it_groups_by_smear(tmp_path: Path) -> None:
    objects = many_objects(n_smears=4, per_smear=2)
    smears = make_smears(tmp_path / "smears", sorted({o[0] for o in objects}))
    raw = tmp_path / "cells"
    cut_cells(smears, write_voc(tmp_path / "voc", objects), raw, CellOptions(window=16))
    code, out = run_cli("expand", raw, tmp_path / "o", "--dry-run", "--size", "16")
    assert code == 0, out
    assert "split grouped by smear (cells.csv): 4 groups" in out


def test_bad_cells_csv(tmp_path: Path) -> None:
    objects = many_objects(n_smears=2, per_smear=2)
    smears = make_smears(tmp_path / "smears", sorted({o[0] for o in objects}))
    raw = tmp_path / "cells"
    cut_cells(smears, write_voc(tmp_path / "voc", objects), raw, CellOptions(window=16))
    (raw / "cells.csv").write_text("name,where\nx,y\n")
    with pytest.raises(InputError, match=r"cells\.csv: no 'file' and 'smear' columns"):
        scan(raw)


def test_clipped_box_warns_through_the_cli(smears: Path, tmp_path: Path) -> None:
    folder = tmp_path / "voc"
    folder.mkdir()
    (folder / "s1.xml").write_text(voc_xml("s1.png", [("RBC", (140, 100, 175, 125), False)]))
    code, out = run_cli(
        "cells", smears, folder, tmp_path / "o", "--annotation-format", "voc", "--window", "32"
    )
    assert code == 0, out
    assert f"warning: {folder / 's1.xml'}, object 1: RBC box" in out and "clipped" in out
    with open(tmp_path / "o" / "cells.csv", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["box_x1"], row["box_y1"], row["clipped"]) == ("160", "120", "1")
    code, out = run_cli(
        "cells",
        smears,
        folder,
        tmp_path / "q",
        "--annotation-format",
        "voc",
        "--window",
        "32",
        "-q",
    )
    assert code == 0 and "wrote" not in out and "clipped" in out


def test_class_without_cells_is_reported(smears: Path, tmp_path: Path) -> None:
    code, out = run_cli(
        "cells", smears, write_voc(tmp_path / "voc"), tmp_path / "o", "--annotation-format", "voc",
        "--window", "32", "--min-size", "12",
    )  # fmt: skip
    assert code == 0, out
    assert "class Platelets: no cells left after the options" in out
