"""Detection datasets: expand with boxes, in VOC, COCO and YOLO, verified."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augtool.annotations import Box, ImageBoxes, read_annotations
from augtool.annotations.write import write_annotations
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions, options_from_values
from augtool.engine.verify import verify
from augtool.errors import InputError, OptionError
from augtool.pipeline.builtins import Ranges
from augtool.pipeline.recipe_spec import paper_recipe
from cli import main
from tests.conftest import write_image

CLASSES = ["RBC", "WBC"]
SIZE = 160
#: (image, rectangle, class): one filled white rectangle per black image.
IMAGES = [
    ("smearA_1.png", (40, 30, 110, 80), "RBC"),
    ("smearA_2.png", (5, 50, 60, 118), "WBC"),
    ("smearB_1.png", (100, 10, 158, 60), "RBC"),
    ("smearB_2.png", (60, 40, 100, 90), "WBC"),
    ("smearC_1.png", (20, 20, 70, 100), "RBC"),
]


def make_detection_raw(tmp_path: Path, fmt: str) -> tuple[Path, Path]:
    """RAW of 160x120 images with one box each, annotated in ``fmt`` by the writers."""
    raw = tmp_path / "raw"
    items = []
    for name, (x0, y0, x1, y1), label in IMAGES:
        image = np.zeros((120, 160, 3), np.uint8)
        image[y0:y1, x0:x1] = 255
        write_image(raw / name, image)
        items.append(ImageBoxes(name, 160, 120, (Box(x0, y0, x1, y1, label, 0, "object 0"),), name))
    ann = tmp_path / "ann"
    write_annotations(fmt, ann, items, CLASSES)
    location = ann / "annotations.json" if fmt == "coco" else ann
    return raw, location


def options(fmt: str, location: Path, **extra) -> ExpandOptions:
    values = {
        "size": SIZE,
        "target": None,
        "factor": 4,
        "split": "0.6",
        "workers": 1,
        "annotations": str(location),
        "annotation_format": fmt,
        "group_regex": r"smear[A-Z]",
    }
    values.update(extra)
    return ExpandOptions(**values)


def bright_box(path: Path) -> tuple[int, int, int, int] | None:
    image = cv2.imread(str(path))
    ys, xs = np.nonzero(image.max(axis=2) > 127)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_expand_writes_boxes_that_follow_the_pixels(tmp_path: Path, fmt: str) -> None:
    raw, location = make_detection_raw(tmp_path, fmt)
    out = tmp_path / "out"
    summary = expand(raw, out, options(fmt, location))
    assert summary.total == 20
    assert summary.boxes is not None and summary.boxes["boxes_in"] == 20
    assert verify(out).ok
    label_of = {name.rsplit(".", 1)[0]: label for name, _, label in IMAGES}
    seen = 0
    for split in ("train", "test"):
        folder = out / split
        ann = {"voc": "annotations", "coco": "annotations.json", "yolo": "labels"}[fmt]
        back = read_annotations(fmt, folder / ann, folder / "images")
        assert back.problems == [] and back.warnings == [] and back.unannotated == []
        for item in back.images:
            seen += 1
            source = item.image.split("__")[0]
            found = bright_box(folder / "images" / item.image)
            if found is None:
                assert item.boxes == ()
                continue
            assert len(item.boxes) == 1, item.image
            b = item.boxes[0]
            assert b.label == label_of[source]
            np.testing.assert_allclose(
                [b.x0, b.y0, b.x1, b.y1], found, atol=2.5, err_msg=item.image
            )
    assert seen == 20
    # Groups: all images of one smear sit in one split.
    rows = (out / "manifest.csv").read_text().splitlines()[1:]
    sides: dict[str, set[str]] = {}
    for row in rows:
        name = row.split(",")[0]
        sides.setdefault(name.split("/")[-1][:6], set()).add(name.split("/")[0])
    assert all(len(s) == 1 for s in sides.values())


def test_width_by_height_output_keeps_boxes_on_the_pixels(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "coco")
    out = tmp_path / "out"
    summary = expand(raw, out, options("coco", location, size=200, height=150, split="none"))
    assert summary.total == 20 and verify(out).ok
    back = read_annotations("coco", out / "annotations.json", out / "images")
    assert back.problems == [] and len(back.images) == 20
    for item in back.images:
        assert (item.width, item.height) == (200, 150)
        found = bright_box(out / "images" / item.image)
        if found is not None:
            b = item.boxes[0]
            np.testing.assert_allclose([b.x0, b.y0, b.x1, b.y1], found, atol=2.0)
    report = verify(out, regenerate_raw=raw)
    assert report.ok and report.regenerated


def test_letterboxed_output_keeps_boxes_on_the_pixels(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "out"
    summary = expand(raw, out, options("voc", location, letterbox=True, split="none"))
    assert summary.total == 20 and verify(out).ok
    back = read_annotations("voc", out / "annotations", out / "images")
    assert back.problems == [] and len(back.images) == 20
    for item in back.images:
        image = cv2.imread(str(out / "images" / item.image))
        assert image.shape == (SIZE, SIZE, 3)
        if "original" in item.image:  # 160x120 in 160x160: bars of 20 px above and below
            assert not image[:20].any() and not image[-20:].any()
        found = bright_box(out / "images" / item.image)
        if found is not None:
            b = item.boxes[0]
            np.testing.assert_allclose([b.x0, b.y0, b.x1, b.y1], found, atol=2.5)
    assert "letterbox" not in ExpandOptions().provenance()


def test_square_recipe_has_no_height_and_hdf5_refuses_it(tmp_path: Path) -> None:
    assert "height" not in ExpandOptions().provenance()
    with pytest.raises(OptionError, match="height"):
        ExpandOptions(height=100, output_format="hdf5").validate()


def test_same_recipe_same_annotation_bytes_and_regenerate(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "yolo")
    expand(raw, tmp_path / "a", options("yolo", location))
    expand(raw, tmp_path / "b", options("yolo", location, workers=2))
    a = json.loads((tmp_path / "a" / "augtool.json").read_text())["annotations"]
    b = json.loads((tmp_path / "b" / "augtool.json").read_text())["annotations"]
    assert a["files"] == b["files"] and len(a["files"]) == 22  # 20 labels + 2 classes.txt
    report = verify(tmp_path / "a", regenerate_raw=raw)
    assert report.ok and report.regenerated


def test_verify_catches_an_edited_or_missing_annotation(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "out"
    expand(raw, out, options("voc", location))
    xml = sorted((out / "train" / "annotations").glob("*.xml"))
    xml[0].write_text(xml[0].read_text().replace("<name>", "<name>x"))
    xml[1].unlink()
    problems = verify(out).problems
    assert any("content differs" in p and xml[0].name in p for p in problems)
    assert any(p.startswith("missing:") and xml[1].name in p for p in problems)


def test_min_visibility_drops_boxes_shifted_out(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "coco")
    # Translation by 50 px moves smearB_1's box (x 100..158) mostly out of a 160 px image.
    opts = options(
        "coco",
        location,
        pipeline=paper_recipe(Ranges(translate_range=(50.0, 50.0)), ("translate",)),
        min_visibility=0.99,
        split="none",
    )
    summary = expand(raw, tmp_path / "out", opts)
    assert summary.boxes is not None
    assert summary.boxes["boxes_out"] < summary.boxes["boxes_in"]
    loose = expand(raw, tmp_path / "out0", replace(opts, min_visibility=0.0))
    assert loose.boxes is not None and loose.boxes["boxes_out"] > summary.boxes["boxes_out"]


def test_faulty_annotations_are_listed_and_nothing_written(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "yolo")
    (location / "smearA_1.txt").write_text("0 0.5 0.5 0 0.2\n")
    with pytest.raises(InputError, match="no area"):
        expand(raw, tmp_path / "out", options("yolo", location))
    assert not (tmp_path / "out").exists()
    summary = expand(raw, tmp_path / "out", options("yolo", location, skip_invalid=True))
    assert summary.boxes is not None and summary.boxes["boxes_in"] == 16


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        ({"annotations": None}, "annotation_format"),
        ({"output_format": "hdf5"}, "output_format"),
        ({"min_visibility": 1.5}, "min_visibility"),
        ({"annotation_format": "kitti"}, "annotation_format"),
    ],
)
def test_detection_options_are_checked(tmp_path: Path, extra: dict, option: str) -> None:
    with pytest.raises(OptionError) as err:
        options("voc", tmp_path, **extra).validate()
    assert err.value.option == option


def test_classification_recipe_has_no_detection_keys() -> None:
    assert "annotations" not in ExpandOptions().provenance()


def test_cli_expand_with_annotations(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "out"
    args = [
        "expand",
        raw,
        out,
        "--annotations",
        location,
        "--annotation-format",
        "voc",
        "--factor",
        "2",
    ]
    args += ["--size", "200", "--workers", "1"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "boxes: 10 written in voc" in result.output
    assert verify(out).ok
    result = CliRunner().invoke(
        main, ["expand", str(raw), str(tmp_path / "x"), "--annotation-format", "voc"]
    )
    assert result.exit_code != 0 and "--annotations" in result.output
    result = CliRunner().invoke(main, ["expand", str(raw), str(tmp_path / "y"), "--size", "6x4x"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output


def test_train_and_evaluate_refuse_a_detection_output_by_what_it_is(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "out"
    expand(raw, out, options("voc", location))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(out), str(run), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    said = f"{out}: a detection or segmentation output (augtool expand --annotations)"
    assert said in result.output and "augtool cells" in result.output, result.output
    assert "num_classes" not in result.output and not run.exists()
    from tests.h5data import make_blob_h5

    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6], size=SIZE, seed=1)
    args = ["train", str(data), str(run), "--epochs", "1", "--device", "cpu", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["evaluate", str(run), str(out), "--subset", "all"])
    assert result.exit_code == 2 and said in result.output, result.output


def test_train_and_evaluate_name_non_square_images(make_raw, tmp_path: Path) -> None:
    from tests.h5data import make_blob_h5

    raw = make_raw({"A": 3, "B": 3})
    wide = tmp_path / "wide"
    expand(raw, wide, ExpandOptions(size=40, height=24, target=12, workers=1))
    result = CliRunner().invoke(main, ["train", str(wide), str(tmp_path / "r"), "--epochs", "1"])
    said = f"{wide}: images are 40x24, and a classifier takes square images"
    assert result.exit_code == 2 and said in result.output, result.output
    assert "augtool expand --size" in result.output
    data = make_blob_h5(tmp_path / "d.h5", per_class=[6, 6], size=24, seed=1)
    run = tmp_path / "run"
    args = ["train", str(data), str(run), "--epochs", "1", "--device", "cpu", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["evaluate", str(run), str(wide), "--subset", "all"])
    assert result.exit_code == 2 and said in result.output, result.output


def test_train_names_a_single_class_as_the_problem(tmp_path: Path) -> None:
    from tests.h5data import make_blob_h5

    data = make_blob_h5(tmp_path / "d.h5", per_class=[6], size=SIZE, seed=1, class_names=["ALL"])
    result = CliRunner().invoke(main, ["train", str(data), str(tmp_path / "run"), "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert "classes: ALL; a classifier needs images of at least 2 classes" in result.output
    assert "num_classes" not in result.output


def test_cli_expand_width_by_height(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "yolo")
    out = tmp_path / "out"
    args = [
        "expand",
        raw,
        out,
        "--annotations",
        location,
        "--annotation-format",
        "yolo",
        "--factor",
        "1",
    ]
    args += ["--size", "120x90", "--workers", "1", "--split", "none"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "(PNG 120x90)" in result.output
    image = cv2.imread(str(next((out / "images").glob("*.png"))))
    assert image.shape == (90, 120, 3)
    boxed = tmp_path / "boxed"
    args[2] = boxed
    args[args.index("120x90")] = "120"
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--letterbox"]])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(boxed / "images" / "smearA_1__00_original.png"))
    assert image.shape == (120, 120, 3) and not image[:15].any() and not image[-15:].any()


def test_preview_draws_the_boxes_of_each_tile(tmp_path: Path) -> None:
    from augtool.drawing import class_rgb
    from augtool.tools.preview import preview
    from augtool.tools.tiles import GAP, LEGEND_HEIGHT, TITLE_HEIGHT

    raw, location = make_detection_raw(tmp_path, "voc")
    image = raw / "smearA_1.png"
    plain, boxed = tmp_path / "plain.png", tmp_path / "boxed.png"
    preview(image, plain, size=64, columns=13)
    preview(image, boxed, size=64, columns=13, annotations=location, annotation_format="voc")
    a = cv2.cvtColor(cv2.imread(str(plain)), cv2.COLOR_BGR2RGB)
    b = cv2.cvtColor(cv2.imread(str(boxed)), cv2.COLOR_BGR2RGB)
    assert b.shape == (a.shape[0] + LEGEND_HEIGHT, *a.shape[1:])  # the legend of the colours
    # The first tile is the original: box (40, 30, 110, 80) of 160x120 at 64x64 is x 16..44.
    top = TITLE_HEIGHT + LEGEND_HEIGHT + GAP
    tile = b[top : top + 64, GAP : GAP + 64]
    red = np.all(tile == class_rgb(0), axis=2)
    ys, xs = np.nonzero(red)
    # Lines 2 px wide along the edges x 16 / 44, y 16 / 42.7 (outermost pixels 15..44).
    np.testing.assert_allclose(
        [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [16, 16, 44, 43], atol=1
    )
    assert not np.any(np.all(a == class_rgb(0), axis=2))


def test_preview_annotation_options_are_checked(tmp_path: Path) -> None:
    from augtool.tools.preview import preview

    raw, location = make_detection_raw(tmp_path, "voc")
    with pytest.raises(OptionError, match="format"):
        preview(raw / "smearA_1.png", tmp_path / "p.png", annotation_format="voc")
    with pytest.raises(OptionError, match="format"):
        preview(raw / "smearA_1.png", tmp_path / "p.png", annotations=location)
    code = CliRunner().invoke(
        main,
        [
            "preview", str(raw / "smearA_1.png"), str(tmp_path / "p.png"), "--recipe", "curator",
            "--annotations", str(location), "--annotation-format", "voc",
        ],
    )  # fmt: skip
    assert code.exit_code == 2, code.output
    assert "--annotations: boxes and masks are drawn on the paper's transforms" in code.output
    assert "leave out --recipe to see them" in code.output
    (location / "smearB_2.xml").unlink()
    with pytest.raises(InputError, match=r"no usable boxes of smearB_2\.png"):
        preview(
            raw / "smearB_2.png", tmp_path / "p.png", annotations=location, annotation_format="voc"
        )


def test_images_sharing_a_stem_get_distinct_outputs(tmp_path: Path) -> None:
    raw, location = make_detection_raw(tmp_path, "yolo")
    image = cv2.imread(str(raw / "smearA_1.png"))
    cv2.imwrite(str(raw / "smearA_1.jpg"), image)
    with pytest.raises(InputError, match="keep one"):
        expand(raw, tmp_path / "out", options("yolo", location))
    from augtool.engine.scan import output_stems

    assert output_stems(["a.png", "a.jpg", "s/b.png"]) == {
        "a.png": "a_png",
        "a.jpg": "a_jpg",
        "s/b.png": "s__b",
    }


def test_dataset_grid_of_a_width_by_height_output(tmp_path: Path) -> None:
    from augtool.tools.dataset_grid import dataset_grid
    from augtool.tools.tiles import GAP, GROUP_GAP, ROW_LABEL_WIDTH

    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "out"
    expand(raw, out, options("voc", location, size=100, height=60, factor=1))
    grid, tiles = dataset_grid(out, per_cell=2)
    assert tiles == 4
    assert grid.shape[1] == ROW_LABEL_WIDTH + 2 * (2 * 100 + GAP) + GROUP_GAP + 2 * GAP


# --- every step kind carries boxes: recipes with curator, albumentations, plug-in steps ------


def recipe_file(tmp_path: Path, steps: str, preprocess: str = "") -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text('name = "boxes"\n' + preprocess + steps, encoding="utf-8")
    return path


def albumentations_steps() -> str:
    """An albumentations Affine at the output size, a flip on the working image, and hue."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    A = pytest.importorskip("albumentations")
    affine = A.Affine(rotate=(-25, 25), scale=(0.85, 1.1), translate_percent=(-0.08, 0.08), p=1)
    flip = A.HorizontalFlip(p=1.0)
    affine_text, flip_text = json.dumps(A.to_dict(affine)), json.dumps(A.to_dict(flip))
    return (
        f"[[transform]]\nname = \"affine\"\nalbumentations = '''{affine_text}'''\n"
        f"[[transform]]\nname = \"flip\"\nalbumentations = '''{flip_text}'''\n"
        'at = "work"\n[[transform]]\nname = "hue"\n'
    )


def boxes_against_pixels(out: Path, fmt: str) -> tuple[int, int]:
    """Every written box against the white rectangle found in its image's pixels.

    Returns:
        How many images showed the rectangle, and how many boxes matched it
        within 2.5 px. A box that does not match must be cut by the image's edge
        and hold the rectangle: a turned box's corner outside the image still
        widens its bounding box (albumentations and augtool alike).
    """
    folder = {"voc": "annotations", "coco": "annotations.json", "yolo": "labels"}[fmt]
    back = read_annotations(fmt, out / folder, out / "images")
    assert back.problems == [] and back.unannotated == []
    label_of = {name.rsplit(".", 1)[0]: label for name, _, label in IMAGES}
    shown = exact = 0
    for item in back.images:
        found = bright_box(out / "images" / item.image)
        if found is None:
            assert item.boxes == (), item.image
            continue
        shown += 1
        assert len(item.boxes) == 1, item.image
        b = item.boxes[0]
        assert b.label == label_of[item.image.split("__")[0]]
        box = np.array([b.x0, b.y0, b.x1, b.y1])
        if np.allclose(box, found, atol=2.5):
            exact += 1
            continue
        cut = box[0] <= 0 or box[1] <= 0 or box[2] >= item.width or box[3] >= item.height
        assert cut, (item.image, box, found)
        assert box[0] - 2.5 <= found[0] and box[1] - 2.5 <= found[1], (item.image, box, found)
        assert found[2] <= box[2] + 2.5 and found[3] <= box[3] + 2.5, (item.image, box, found)
    return shown, exact


def test_albumentations_steps_write_boxes_that_follow_the_pixels(tmp_path: Path) -> None:
    """The issue's check: a detection run with an albumentations step, its boxes on the pixels."""
    raw, location = make_detection_raw(tmp_path, "coco")
    recipe = recipe_file(tmp_path, albumentations_steps())
    values = {"factor": 6, "size": SIZE, "split": "none", "workers": 1, "recipe": recipe}
    values.update(annotations=str(location), annotation_format="coco", min_visibility=0.0)
    out = tmp_path / "out"
    summary = expand(raw, out, options_from_values(values))
    assert summary.total == 30 and verify(out).ok
    transforms = {r.split(",")[8] for r in (out / "manifest.csv").read_text().splitlines()[1:]}
    assert {"affine", "flip", "hue", "original"} <= transforms
    shown, exact = boxes_against_pixels(out, "coco")
    assert shown >= 25 and exact >= shown - 3, (shown, exact)
    report = verify(out, regenerate_raw=raw)
    assert report.ok and report.regenerated, report.problems


@pytest.mark.parametrize("policy", ["crop", "pad"])
def test_a_shape_policy_moves_the_boxes_with_the_pixels(tmp_path: Path, policy: str) -> None:
    """Fixed: with resize = crop or pad, boxes went where the source's were, not the pixels."""
    raw, location = make_detection_raw(tmp_path, "coco")
    steps = '[[transform]]\nname = "gray"\n[[transform]]\nname = "rotate"\n'
    steps += '[[transform]]\nname = "zoom"\n[[transform]]\nname = "brightness"\n'
    recipe = recipe_file(tmp_path, steps, f'[preprocess]\nresize = "{policy}"\n')
    values = {"factor": 5, "size": SIZE, "split": "none", "workers": 1, "recipe": recipe}
    values.update(annotations=str(location), annotation_format="coco", min_visibility=0.0)
    out = tmp_path / "out"
    expand(raw, out, options_from_values(values))
    shown, exact = boxes_against_pixels(out, "coco")
    assert shown >= 20 and exact == shown


def test_letterbox_with_a_crop_recipe_keeps_the_squares_aspect(tmp_path: Path) -> None:
    """Fixed: the letterbox took the source's 4:3 aspect for the cropped square's."""
    raw, location = make_detection_raw(tmp_path, "coco")
    steps = '[[transform]]\nname = "gray"\n[[transform]]\nname = "flip_y"\n'
    recipe = recipe_file(tmp_path, steps, '[preprocess]\nresize = "crop"\n')
    values = {"factor": 2, "size": SIZE, "split": "none", "workers": 1, "recipe": recipe}
    values.update(annotations=str(location), annotation_format="coco", letterbox=True)
    out = tmp_path / "out"
    expand(raw, out, options_from_values(values))
    # 160x120 cropped to its centred 120x120 square, which fills the 160x160 output: no bars,
    # every length scaled by 160/120 on both axes.
    image = cv2.imread(str(out / "images" / "smearA_1__00_original.png"))
    assert image.shape == (SIZE, SIZE, 3)
    x0, y0, x1, y1 = (40 - 20, 30, 110 - 20, 80)  # the rectangle in the square
    scale = SIZE / 120
    found = bright_box(out / "images" / "smearA_1__00_original.png")
    np.testing.assert_allclose(found, [x0 * scale, y0 * scale, x1 * scale, y1 * scale], atol=1.5)
    shown, exact = boxes_against_pixels(out, "coco")
    assert shown == 10 and exact == shown


PLUGIN_STEPS = """
import numpy as np

from augtool import StepType


def transpose(params, width, height):
    return np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), (height, width)


TRANSPOSE = StepType(
    "transpose", "swap the axes", apply=lambda image, p: np.ascontiguousarray(image.swapaxes(0, 1)),
    at="work", moves_pixels=True, geometry=transpose,
)
SILENT = StepType("silent", "moves pixels, says nothing", apply=lambda image, p: image[::-1])
"""


def test_declared_plugin_steps_carry_boxes_and_undeclared_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "detect_plugin_steps.py").write_text(PLUGIN_STEPS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    raw, location = make_detection_raw(tmp_path, "voc")
    recipe = recipe_file(tmp_path, '[[transform]]\nname = "t"\nplugin = "transpose"\n')
    values = {"factor": 2, "size": SIZE, "split": "none", "workers": 1, "recipe": recipe}
    values.update(annotations=str(location), annotation_format="voc")
    values["plugins"] = ("detect_plugin_steps",)
    out = tmp_path / "out"
    expand(raw, out, options_from_values(values))
    assert boxes_against_pixels(out, "voc") == (10, 10)
    silent = recipe_file(tmp_path, '[[transform]]\nname = "s"\nplugin = "silent"\n')
    with pytest.raises(OptionError, match=r"recipe: boxes \(annotations\) cannot follow s:"):
        options_from_values({**values, "recipe": silent})
    # Without boxes the same step runs.
    without = {k: v for k, v in values.items() if k not in ("annotations", "annotation_format")}
    assert options_from_values({**without, "recipe": silent}).pipeline.names == ("s",)
