"""``augtool expand --segmentation``: segmentation datasets through the one pipeline, every format.

Synthetic smears with exact masks (``augtool synth --masks``) are expanded in
each mask format. Every split folder is read back by the format's own reader;
each output's masks are those :meth:`augtool.Pipeline.apply_file` gives for
the same seed, source and copy (exact for bitmaps and class maps, IoU >= 0.98
for polygons written to two decimals or normalised); the plan, names, image
bytes and splits are a box run's; ``verify`` covers the mask files.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import augtool
from augtool import Pipeline
from augtool.annotations import read_segmentation
from augtool.annotations.masks import to_bitmap
from augtool.annotations.png_masks import write_files
from augtool.annotations.voc_masks import voc_mask_files
from augtool.annotations.yolo_masks import yolo_mask_files
from augtool.engine.segmented import MASK_LOCATION, OutputMasks, SourceMasks
from augtool.ops.mask_geometry import Patch
from augtool.ops.targets import Targets
from augtool.tools.synth import synthesize
from cli import main

PER_CLASS = {"ALL": 2, "AML": 1, "normal": 1}
SIZE = (320, 240)
TARGET = 24


@pytest.fixture(scope="module")
def smears(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """RAW and the masks of its images in every format: ``{format: (raw, annotations)}``."""
    root = tmp_path_factory.mktemp("smears")
    raw, masks = root / "raw", root / "masks"
    synthesize(raw, PER_CLASS, SIZE, seed=0, masks=masks)
    coco = read_segmentation("coco", masks / "annotations.json", raw)
    semantic = read_segmentation("png", masks / "semantic", raw)
    classes = list(semantic.images[0].semantic.classes)
    yolo = yolo_mask_files(coco.images, coco.classes)
    write_files(root / "yolo", {k: v.encode() for k, v in yolo.items()})
    write_files(root / "voc", voc_mask_files(semantic.images, classes))
    return {
        "coco": (raw, masks / "annotations.json"),
        "png": (raw, masks / "semantic"),
        "png-instances": (raw, masks / "instances"),
        "yolo": (raw, root / "yolo"),
        "voc": (raw, root / "voc"),
    }


def run(raw: Path, out: Path, fmt: str, annotations: Path, **options) -> augtool.ExpandSummary:
    return augtool.expand(
        raw,
        out,
        annotations=annotations,
        annotation_format=fmt,
        segmentation=True,
        target=TARGET,
        workers=1,
        **options,
    )


def manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@pytest.mark.parametrize("fmt", ["coco", "png", "png-instances", "yolo", "voc"])
def test_every_format_carries_the_pipelines_masks(smears, tmp_path: Path, fmt: str) -> None:
    raw, annotations = smears[fmt]
    out = tmp_path / "out"
    summary = run(raw, out, fmt, annotations)
    rows = manifest(out)
    assert len(rows) == summary.total == TARGET
    source = {i.image: i for i in read_segmentation(fmt, annotations, raw).images}
    pipe = Pipeline.paper()
    compared = 0
    for split in sorted({r["split"] for r in rows}):
        folder = out / split
        found = read_segmentation(fmt, folder / MASK_LOCATION[fmt], folder / "images")
        assert found.problems == [] and found.unannotated == []
        names = {f"{split}/images/{i.image}" for i in found.images}
        assert names == {r["name"] for r in rows if r["split"] == split}
        written = {f"{split}/images/{i.image}": i for i in found.images}
        for row in (r for r in rows if r["split"] == split):
            item = source[row["source"]]
            targets = SourceMasks.of(item).targets((item.width, item.height), True)
            expected = pipe.apply_file(
                raw / row["source"], row["transform"], copy=int(row["copy"]), targets=targets
            ).targets
            assert expected is not None
            got = written[row["name"]]
            if item.semantic is not None:
                assert got.semantic is not None
                np.testing.assert_array_equal(got.semantic.labels, expected.semantic)
            if fmt in ("png", "voc"):
                compared += 1
                continue
            shapes = expected.shapes or ()
            masks = [_bitmap(s, got.width, got.height) for s in shapes]
            labels = [item.instances[int(i)].label for i in expected.ids]
            if fmt == "png-instances":  # an instance wholly under later ones is not in the map
                labels = [label for label, m in zip(labels, masks, strict=True) if m.any()]
                masks = [m for m in masks if m.any()]
            assert len(got.instances) == len(masks), row["name"]
            exact = fmt == "png-instances"
            for instance, mask, label in zip(got.instances, masks, labels, strict=True):
                back = to_bitmap(instance.shape, got.width, got.height)
                assert iou(back, mask) >= (1.0 if exact else 0.98), row["name"]
                assert instance.label == label, row["name"]
            compared += 1
    assert compared == TARGET


def _bitmap(shape, width: int, height: int) -> np.ndarray:
    if isinstance(shape, Patch):
        return shape.full(width, height)
    from augtool.ops.mask_geometry import rasterize_polygons

    return rasterize_polygons(shape, width, height)


def test_a_masks_run_is_a_box_runs_plan_and_bytes(smears, tmp_path: Path) -> None:
    """The same COCO file read as boxes and as masks: the same images, names, splits, params."""
    raw, annotations = smears["coco"]
    run(raw, tmp_path / "masks", "coco", annotations)
    augtool.expand(
        raw,
        tmp_path / "boxes",
        annotations=annotations,
        annotation_format="coco",
        target=TARGET,
        workers=1,
    )
    keys = ("name", "split", "source", "copy", "transform", "params", "sha256")
    a, b = manifest(tmp_path / "masks"), manifest(tmp_path / "boxes")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    recorded = json.loads((tmp_path / "masks" / "augtool.json").read_text())
    assert recorded["recipe"]["segmentation"] is True
    assert recorded["annotations"]["masks"] is True
    assert (
        "segmentation"
        not in json.loads((tmp_path / "boxes" / "augtool.json").read_text())["recipe"]
    )


def test_tight_boxes_hug_the_masks_hull_boxes_hold_them(smears, tmp_path: Path) -> None:
    raw, annotations = smears["coco"]
    run(raw, tmp_path / "tight", "coco", annotations, transforms="rotate", seed=3)
    run(raw, tmp_path / "hull", "coco", annotations, transforms="rotate", seed=3, mask_boxes="hull")
    for split in ("train", "test"):
        tight = json.loads((tmp_path / "tight" / split / "annotations.json").read_text())
        hull = json.loads((tmp_path / "hull" / split / "annotations.json").read_text())
        assert [a["segmentation"] for a in tight["annotations"]] == [
            a["segmentation"] for a in hull["annotations"]
        ]
        wider = 0
        for a, b in zip(tight["annotations"], hull["annotations"], strict=True):
            (ax, ay, aw, ah), (bx, by, bw, bh) = a["bbox"], b["bbox"]
            assert bx <= ax + 0.02 and by <= ay + 0.02  # each number rounded to 0.01
            assert bx + bw >= ax + aw - 0.02 and by + bh >= ay + ah - 0.02
            wider += bw * bh > 1.05 * aw * ah
        assert wider > 0


def test_verify_covers_the_mask_files(smears, tmp_path: Path) -> None:
    raw, annotations = smears["png-instances"]
    out = tmp_path / "out"
    run(raw, out, "png-instances", annotations)
    report = augtool.verify(out, regenerate_raw=raw, workers=1)
    assert report.ok and report.regenerated
    mask = sorted((out / "train" / "masks").glob("*.png"))[3]
    mask.write_bytes(mask.read_bytes()[:-8] + b"\0" * 8)
    (out / "train" / "masks" / "stray.png").write_bytes(b"x")
    problems = "\n".join(augtool.verify(out).problems)
    assert f"content differs from augtool.json: train/masks/{mask.name}" in problems
    assert "not in the manifest: train/masks/stray.png" in problems


def test_journal_keeps_an_outputs_masks_exactly() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (30, 40)).astype(np.uint8)
    patch = Patch.of(rng.random((30, 40)) > 0.6, 3, 5)
    square = [np.array([[1.5, 2.25], [9.0, 2.25], [9.0, 8.0], [1.5, 8.0]])]
    targets = Targets.from_masks((60, 50), [patch, square], np.pad(labels, ((0, 20), (0, 20))))
    found = OutputMasks.of(targets)
    back = OutputMasks.from_journal(json.loads(json.dumps(found.to_journal())))
    np.testing.assert_array_equal(back.semantic, found.semantic)
    np.testing.assert_array_equal(back.boxes, found.boxes)
    assert isinstance(back.shapes[0], Patch)
    np.testing.assert_array_equal(back.shapes[0].full(60, 50), patch.full(60, 50))
    np.testing.assert_array_equal(back.shapes[1][0], square[0])


def test_bad_masks_exit_2_listing_every_fault(smears, tmp_path: Path) -> None:
    raw, annotations = smears["coco"]
    data = json.loads(annotations.read_text())
    data["annotations"][0]["segmentation"] = [[1, 1, 5, 5]]
    data["annotations"][1]["segmentation"] = {"size": [3, 3], "counts": [0, 9]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    args = ["expand", str(raw), str(tmp_path / "out"), "--annotations", str(bad)]
    args += ["--annotation-format", "coco", "--segmentation", "--target", "12"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(bad) in result.output and "2 problem(s)" in result.output
    assert "a polygon needs at least 3" in result.output and "--skip-invalid" in result.output
    result = CliRunner().invoke(main, [*args, "--skip-invalid", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "train" / "annotations.json").is_file()


def test_mask_options_are_checked(smears, tmp_path: Path) -> None:
    raw, annotations = smears["png"]
    base = ["expand", str(raw), str(tmp_path / "o"), "--annotations", str(annotations)]
    cases = {
        ("--annotation-format", "png"): "is a mask format: add --segmentation",
        (
            "--annotation-format",
            "coco",
            "--segmentation",
            "--names",
            str(annotations / "classes.txt"),
        ): ("own classes"),
        (
            "--annotation-format",
            "coco",
            "--mask-boxes",
            "hull",
        ): "--mask-boxes: needs --segmentation",
    }
    for extra, message in cases.items():
        result = CliRunner().invoke(main, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["expand", str(raw), str(tmp_path / "p"), "--segmentation"])
    assert result.exit_code == 2 and "--segmentation: needs --annotations" in result.output
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


@pytest.mark.parametrize("fmt", ["coco", "png"])
def test_preview_and_report_draw_the_mask_outlines(smears, tmp_path: Path, fmt: str) -> None:
    from augtool.drawing import colour_of
    from augtool.engine.detection import read_output_boxes
    from augtool.tools.dataset_grid import dataset_grid

    raw, annotations = smears[fmt]
    out = tmp_path / "out"
    run(raw, out, fmt, annotations)
    record = json.loads((out / "augtool.json").read_text())["annotations"]
    names = [r["name"] for r in manifest(out)]
    classes, items, problems = read_output_boxes(out, names, record)
    assert problems == [] and sorted(items) == sorted(names)
    for name in names:
        masks = read_segmentation(fmt, *_location(out, name, fmt))
        item = next(i for i in masks.images if name.endswith("/" + i.image))
        drawn = items[name]
        assert len(drawn.boxes) == len(item.instances)
        regions = 0
        if item.semantic is not None:
            values = set(np.unique(item.semantic.labels).tolist()) - {0, 255}
            regions = len(values)
        assert len(drawn.outlines) == len(item.instances) + regions > 0
    grid, tiles = dataset_grid(out, per_cell=2)
    red = np.array(colour_of("red cell", classes), np.uint8)
    assert tiles == 4 and np.count_nonzero((grid == red).all(axis=2)) > 500
    page = tmp_path / "page.html"
    result = augtool.report(out, page)
    text = page.read_text()
    assert "red cell" in text
    # a segmentation output is called one, its objects instances drawn as mask outlines
    assert result.kind == "segmentation" and "segmentation output of expand" in text
    assert "detection" not in text and "mask classes" in text
    assert "Mask outlines in their class colour." in text and "Instances per split" in text


def _location(out: Path, name: str, fmt: str) -> tuple[Path, Path]:
    split = out / name.split("/")[0]
    return split / MASK_LOCATION[fmt], split / "images"


# --- cells --crop mask -------------------------------------------------------------------------

WHITE = "ALL blast,AML blast"


@pytest.mark.parametrize("background", ["fill", "keep"])
def test_cells_cut_by_their_masks(smears, tmp_path: Path, background: str) -> None:
    raw, annotations = smears["coco"]
    out = tmp_path / "cells"
    summary = augtool.cut_cells(
        raw,
        annotations,
        out,
        annotation_format="coco",
        crop="mask",
        classes=WHITE.split(","),
        mask_background=background,
    )
    with open(out / "cells.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary.total > 0
    source = {i.image: i for i in read_segmentation("coco", annotations, raw).images}
    import cv2

    for row in rows:
        cell = cv2.imread(str(out / row["file"]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(out / row["mask"]), cv2.IMREAD_UNCHANGED)
        assert row["mask"].startswith(".masks/") and cell.shape[:2] == mask.shape == (256, 256)
        assert set(np.unique(mask).tolist()) == {0, 255}
        outside = cell[mask == 0]
        assert (not outside.any()) if background == "fill" else outside.mean() > 60
        assert cell[mask == 255].mean() > 60
        item = source[row["smear"]]
        instance = item.instances[int(row["object"]) - 1]
        x0, y0, x1, y1 = (int(row[f"window_{k}"]) for k in ("x0", "y0", "x1", "y1"))
        whole = to_bitmap(instance.shape, item.width, item.height)[y0:y1, x0:x1]
        resized = cv2.resize(whole.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
        assert iou(resized > 0, mask > 0) > 0.95
    scanned = augtool.dry_run(out, target=len(rows) * 2)  # .masks is not a class of expand
    assert sorted(scanned.run.scan.classes) == sorted(WHITE.split(","))


def test_cells_crop_mask_options_are_checked(smears, tmp_path: Path) -> None:
    raw, annotations = smears["png-instances"]
    base = ["cells", str(raw), str(annotations), str(tmp_path / "c")]
    keep = ["--annotation-format", "yolo", "--mask-background", "keep"]
    result = CliRunner().invoke(main, [*base, *keep])
    assert result.exit_code == 2 and "--mask-background: needs --crop mask" in result.output
    result = CliRunner().invoke(main, [*base, "--annotation-format", "png-instances"])
    assert result.exit_code == 2 and "one of voc, coco, yolo, got 'png-instances'" in result.output
    crop = ["--annotation-format", "png-instances", "--crop", "mask"]
    result = CliRunner().invoke(main, [*base, *crop])
    assert result.exit_code == 0, result.output
    assert any((tmp_path / "c" / ".masks").rglob("*.png"))


# --- HDF5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png-instances", "png"])
def test_hdf5_holds_the_masks_the_folder_writes(smears, tmp_path: Path, fmt: str) -> None:
    import cv2
    import h5py

    raw, annotations = smears[fmt]
    run(raw, tmp_path / "folder", fmt, annotations)
    run(raw, tmp_path / "out.h5", fmt, annotations)
    key = "mask_ids" if fmt == "png-instances" else "class_map"
    with h5py.File(tmp_path / "out.h5") as fh:
        names = [n.decode() if isinstance(n, bytes) else n for n in fh["name"][:]]
        assert names == [r["name"] for r in manifest(tmp_path / "folder")]
        recorded = json.loads(fh.attrs["annotations"])
        assert recorded["masks"] is True and key in recorded["datasets"]
        for i, name in enumerate(names):
            split, _, file = name.split("/")
            png = tmp_path / "folder" / split / "masks" / file
            np.testing.assert_array_equal(fh[key][i], cv2.imread(str(png), cv2.IMREAD_UNCHANGED))
            if fmt == "png-instances":
                table = json.loads(png.with_suffix(".json").read_text())
                listed = json.loads(fh["mask_instances"][i])
                assert {k: listed[int(k) - 1]["class"] for k in table} == table
    from augtool.engine.detection import read_output_boxes

    _, drawn, problems = read_output_boxes(tmp_path / "out.h5", names, recorded)
    assert problems == [] and sorted(drawn) == sorted(names)
    with h5py.File(tmp_path / "out.h5") as fh:
        for i, name in enumerate(names):  # preview and report draw one outline per id or class
            shown = set(np.unique(fh[key][i]).tolist()) - {0}
            assert len(drawn[name].outlines) == len(shown) > 0, name
    assert augtool.verify(tmp_path / "out.h5", regenerate_raw=raw, workers=1).ok
    with h5py.File(tmp_path / "out.h5", "r+") as fh:
        fh[key][2] = fh[key][2] + 1
    problems = augtool.verify(tmp_path / "out.h5").problems
    assert problems == [f"content differs from its hash: dataset '{key}'"]


@pytest.mark.parametrize("kind", ["folder", "hdf5"])
def test_resume_after_an_interrupt_writes_the_same_masks(
    smears, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The outputs done before the interrupt give their masks back from the journal."""
    import augtool.engine.backends as backends

    raw, annotations = smears["png-instances"]
    name = "out.h5" if kind == "hdf5" else "out"
    (tmp_path / "whole").mkdir()
    (tmp_path / "part").mkdir()
    run(raw, tmp_path / "whole" / name, "png-instances", annotations)
    real, calls = backends.render_source, []

    def stopping(task, settings):
        calls.append(task.path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task, settings)

    monkeypatch.setattr(backends, "render_source", stopping)
    with pytest.raises(BaseException, match="resume"):
        run(raw, tmp_path / "part" / name, "png-instances", annotations)
    monkeypatch.setattr(backends, "render_source", real)
    summary = run(raw, tmp_path / "part" / name, "png-instances", annotations, resume=True)
    assert 0 < summary.resumed < TARGET
    whole, part = tmp_path / "whole" / name, tmp_path / "part" / name
    if kind == "hdf5":
        import h5py

        with h5py.File(whole) as a, h5py.File(part) as b:
            np.testing.assert_array_equal(a["mask_ids"][:], b["mask_ids"][:])
            assert list(a["mask_instances"][:]) == list(b["mask_instances"][:])
        return
    files = sorted(p.relative_to(whole) for p in whole.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(part) for p in part.rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "augtool.json":
            assert (whole / rel).read_bytes() == (part / rel).read_bytes(), rel


def test_a_contact_sheet_draws_the_images_masks(smears, tmp_path: Path) -> None:
    import cv2

    from augtool.drawing import colour_of

    raw, annotations = smears["coco"]
    image = sorted(raw.glob("AML/*.jpg"))[0]
    plain, drawn = tmp_path / "plain.png", tmp_path / "masks.png"
    augtool.preview(image, plain, size=96)
    result = augtool.preview(
        image, drawn, size=96, annotations=annotations, annotation_format="coco", segmentation=True
    )
    assert result.tiles == 13
    classes = read_segmentation("coco", annotations, raw).classes
    red = np.array(colour_of("red cell", classes)[::-1], np.uint8)  # BGR, as OpenCV reads
    sheet = cv2.imread(str(drawn))
    assert np.count_nonzero((sheet == red).all(axis=2)) > 1000
    assert np.count_nonzero((cv2.imread(str(plain)) == red).all(axis=2)) == 0
    with pytest.raises(augtool.OptionError, match="segmentation: needs"):
        augtool.preview(image, tmp_path / "x.png", segmentation=True)


def test_a_report_of_masked_smears_counts_and_draws_their_masks(smears, tmp_path: Path) -> None:
    from augtool.tools.report_gather import gather

    raw, annotations = smears["coco"]
    found = read_segmentation("coco", annotations, raw)
    g = gather(raw, annotations, "coco", segmentation=True)
    assert g.kind == "annotated" and g.problems == []
    assert sum(len(b.boxes) for b in g.boxes.values()) == sum(
        len(i.instances) for i in found.images
    )
    assert all(len(b.outlines) == len(b.boxes) > 0 for b in g.boxes.values())
    page = tmp_path / "page.html"
    result = augtool.report(
        raw, page, annotations=annotations, annotation_format="coco", segmentation=True
    )
    text = page.read_text()
    assert "red cell" in text and g.masks and result.kind == "annotated"
    assert "annotated images with masks" in text and "Mask outlines in their class colour." in text
    with pytest.raises(augtool.OptionError, match="segmentation: needs"):
        gather(raw, segmentation=True)
