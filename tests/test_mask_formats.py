"""Segmentation readers and writers: round trips, faults listed at once, hostile files.

COCO (polygons, RLE, crowds), YOLO segmentation, per-image PNG class-index and
instance-id maps, Pascal VOC's palette PNGs. pycocotools and Pillow read what
the writers write, as independent references.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from augtool.annotations import read_segmentation
from augtool.annotations.coco_masks import coco_masks_json
from augtool.annotations.masks import (
    Bitmap,
    Instance,
    LabelMap,
    Polygons,
    encode_rle,
    rasterize_polygons,
    to_bitmap,
)
from augtool.annotations.png_masks import decode_mask, png_mask_files, write_files
from augtool.annotations.segmentation import (
    SEGMENTATION_FORMATS,
    ImageMasks,
    SegmentationSet,
    usable,
)
from augtool.annotations.voc_masks import voc_mask_files, voc_palette
from augtool.annotations.yolo_masks import yolo_mask_files
from augtool.errors import InputError, OptionError
from tests.conftest import write_image

CLASSES = ["background", "platelet", "red cell"]
SIZES = {"a.png": (64, 48), "sub/b.png": (80, 60), "c.png": (40, 30)}
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def disc(cx: float, cy: float, r: float, width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for name, (w, h) in SIZES.items():
        write_image(root / name, np.zeros((h, w, 3), np.uint8))
    return root


def items() -> list[ImageMasks]:
    """Three images: polygons, an RLE, a bitmap and a crowd; two parts; nothing. No overlaps."""
    w, h = SIZES["a.png"]
    poly = np.array([[3.25, 4.5], [20.75, 3.5], [24.5, 20.25], [12.5, 14.75], [4.0, 22.5]])
    blob = disc(40, 12, 7.5, w, h)
    square = np.zeros((h, w), bool)
    square[30:44, 5:19] = True
    crowd = disc(48, 36, 9, w, h)
    a = [
        Instance("red cell", Polygons((poly,)), index=0),
        Instance("platelet", encode_rle(blob), index=1),
        Instance("red cell", Bitmap(square), index=2),
        Instance("red cell", encode_rle(crowd), iscrowd=True, index=3),
    ]
    labels = np.zeros((h, w), np.uint8)
    for instance in a:
        labels[to_bitmap(instance.shape, w, h)] = CLASSES.index(instance.label)
    labels[0, :] = 255  # a band of "no class"
    bw, bh = SIZES["sub/b.png"]
    parts = (
        np.array([[2.0, 2.0], [30.0, 2.0], [30.0, 25.0], [2.0, 25.0]]),
        np.array([[50.0, 30.0], [75.0, 40.0], [55.0, 55.0]]),
    )
    b = [Instance("platelet", Polygons(parts), index=0)]
    b_labels = np.where(rasterize_polygons(parts, bw, bh), 1, 0).astype(np.uint8)
    cw, ch = SIZES["c.png"]
    return [
        ImageMasks("a.png", w, h, tuple(a), LabelMap(labels, tuple(CLASSES)), ""),
        ImageMasks("c.png", cw, ch, (), LabelMap(np.zeros((ch, cw), np.uint8), tuple(CLASSES)), ""),
        ImageMasks("sub/b.png", bw, bh, tuple(b), LabelMap(b_labels, tuple(CLASSES)), ""),
    ]


def write(fmt: str, folder: Path, found: list[ImageMasks]) -> Path:
    """Write a set in a format; return what the reader is given."""
    if fmt == "coco":
        folder.mkdir(parents=True)
        (folder / "annotations.json").write_text(coco_masks_json(found, CLASSES))
        return folder / "annotations.json"
    if fmt == "yolo":
        files = {k: v.encode() for k, v in yolo_mask_files(found, CLASSES).items()}
    elif fmt == "voc":
        files = voc_mask_files(found, CLASSES)
    else:
        files = png_mask_files(found, CLASSES, instances=fmt == "png-instances")
    write_files(folder, files)
    return folder


def same_masks(mine: ImageMasks, theirs: ImageMasks, crowds: bool = True) -> None:
    assert (theirs.image, theirs.width, theirs.height) == (mine.image, mine.width, mine.height)
    assert [i.label for i in theirs.instances] == [i.label for i in mine.instances]
    for a, b in zip(mine.instances, theirs.instances, strict=True):
        np.testing.assert_array_equal(
            to_bitmap(b.shape, theirs.width, theirs.height),
            to_bitmap(a.shape, mine.width, mine.height),
            err_msg=f"{mine.image} {a.label} {a.index}",
        )
        if crowds:
            assert b.iscrowd == a.iscrowd


@pytest.mark.parametrize("fmt", ["coco", "yolo", "png-instances"])
def test_instances_round_trip(images: Path, tmp_path: Path, fmt: str) -> None:
    found = items()
    back = read_segmentation(fmt, write(fmt, tmp_path / fmt, found), images)
    assert back.problems == [] and back.warnings == [] and back.unannotated == []
    assert [i.image for i in back.images] == ["a.png", "c.png", "sub/b.png"]
    for mine, theirs in zip(found, back.images, strict=True):
        same_masks(mine, theirs, crowds=fmt == "coco")


@pytest.mark.parametrize("fmt", ["png", "voc"])
def test_label_maps_round_trip(images: Path, tmp_path: Path, fmt: str) -> None:
    found = items()
    back = read_segmentation(fmt, write(fmt, tmp_path / fmt, found), images)
    assert back.problems == [] and back.warnings == []
    assert back.classes == sorted(CLASSES)
    for mine, theirs in zip(found, back.images, strict=True):
        assert theirs.semantic is not None and theirs.semantic.classes == tuple(CLASSES)
        np.testing.assert_array_equal(theirs.semantic.labels, mine.semantic.labels)
        assert theirs.semantic.ignore == 255
        if fmt == "voc":  # objects from SegmentationObject, classes from SegmentationClass
            same_masks(mine, theirs, crowds=False)


def test_coco_file_is_what_pycocotools_reads(images: Path, tmp_path: Path) -> None:
    found = items()
    path = write("coco", tmp_path / "coco", found)
    coco = COCO(str(path))
    by_image = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    for item in found:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_image[item.image]]))
        assert len(anns) == len(item.instances)
        for ann, instance in zip(anns, item.instances, strict=True):
            ours = to_bitmap(instance.shape, item.width, item.height)
            theirs = coco.annToMask(ann).astype(bool)
            assert ann["iscrowd"] == int(instance.iscrowd)
            assert ann["area"] == ours.sum()
            if isinstance(ann["segmentation"], dict) or not isinstance(instance.shape, Polygons):
                # RLE, and outlines along pixel edges: pycocotools gives the same pixels.
                np.testing.assert_array_equal(theirs, ours)
                x, y, w, h = ann["bbox"]
                ys, xs = np.nonzero(ours)
                assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            else:
                assert np.count_nonzero(ours & theirs) / np.count_nonzero(ours | theirs) > 0.95
    crowd = coco.dataset["annotations"][3]
    assert crowd["iscrowd"] == 1 and isinstance(crowd["segmentation"]["counts"], str)


def test_voc_pngs_are_palette_images_pillow_reads(images: Path, tmp_path: Path) -> None:
    found = items()
    folder = write("voc", tmp_path / "voc", found)
    with Image.open(folder / "SegmentationClass" / "a.png") as picture:
        assert picture.mode == "P"
        np.testing.assert_array_equal(np.asarray(picture), found[0].semantic.labels)
        assert picture.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # VOC's colours
    with Image.open(folder / "SegmentationObject" / "a.png") as picture:
        assert sorted(np.unique(np.asarray(picture))) == [0, 1, 2, 3, 4]
    assert voc_palette()[255].tolist() == [224, 224, 192]


def test_palette_png_from_pillow_reads_as_its_indices() -> None:
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 6, (9, 13)).astype(np.uint8)
    picture = Image.fromarray(indices, mode="P")
    picture.putpalette([0, 0, 0, 10, 20, 30, 0, 0, 0, 200, 1, 2, 3, 3, 3, 99, 99, 0])
    from io import BytesIO

    buffer = BytesIO()
    picture.save(buffer, format="PNG")
    decoded = decode_mask(buffer.getvalue(), (13, 9))
    # Index 2 repeats index 0's colour: read as 0 (a PNG's colours cannot tell them apart).
    np.testing.assert_array_equal(decoded, np.where(indices == 2, 0, indices))


def test_grey_png_of_1_bit_depth_reads_as_0_and_1() -> None:
    rows = b"".join(b"\x00" + bytes([0b10100000]) for _ in range(2))
    data = _png(3, 2, 1, 0, rows)
    np.testing.assert_array_equal(decode_mask(data, (3, 2)), [[1, 0, 1], [1, 0, 1]])


def _png(width: int, height: int, depth: int, colour: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- faults, all at once ------------------------------------------------------------------


def coco_with_faults() -> dict:
    ok = [1, 1, 10, 1, 10, 10]
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "c.png"},
        ],
        "categories": [{"id": 1, "name": "red cell"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [ok]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 5]]},
            {
                "id": 3,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [64, 48], "counts": [3072]},
            },
            {
                "id": 4,
                "image_id": 1,
                "category_id": 1,
                "segmentation": {"size": [48, 64], "counts": [5, 5]},
            },
            {"id": 5, "image_id": 1, "category_id": 9, "segmentation": [ok]},
            {"id": 6, "image_id": 2, "category_id": 1, "segmentation": [[1, 2, 3]]},
            {"id": 7, "image_id": 2, "category_id": 1, "segmentation": [[-50, -5, -9, -5, -9, -1]]},
            {"id": 8, "image_id": 2, "category_id": 1, "segmentation": [[-5, 1, 10, 1, 10, 10]]},
            {
                "id": 9,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": {"size": [48, 64], "counts": "0a!"},
            },
            {"id": 10, "image_id": 1, "category_id": 1},
        ],
    }


def test_every_coco_fault_is_listed_at_once(images: Path, tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps(coco_with_faults()))
    found = read_segmentation("coco", path, images)
    messages = [f"{p.where}: {p.message}" for p in found.problems]
    assert len(messages) == 8
    for expected in [
        "has 2 point(s); a polygon needs at least 3",
        "RLE size is 48x64 (size [64, 48]), its image 64x48",
        "RLE counts cover 10 pixels, not the image's 3072",
        "category_id 9 is not declared",
        "has 3 numbers, not x, y pairs",
        "lies wholly outside the 40x30 image",
        "has no segmentation",
    ]:
        assert sum(expected in m for m in messages) == 1, expected
    assert (
        "annotation id 9: red cell RLE counts are not COCO's compressed string (character '!' "
        "at 2 is not in COCO's RLE code)" in messages
    )
    assert len(found.warnings) == 1 and "annotation id 8" in found.warnings[0]
    assert [len(i.instances) for i in found.images] == [1, 1]
    with pytest.raises(InputError) as refused:
        usable(found, path, skip_invalid=False)
    text = str(refused.value)
    assert refused.value.exit_code == 2
    assert "8 problem(s) in the masks" in text and "pass skip_invalid" in text
    assert all(m.split(": ", 1)[1] in text for m in messages)
    kept = usable(found, path, skip_invalid=True)
    assert len(kept.images) == 2 and len(kept.warnings) == 9 and kept.problems == []


def test_png_faults_are_listed_at_once(images: Path, tmp_path: Path) -> None:
    inst = tmp_path / "inst"
    ids = np.zeros((48, 64), np.uint8)
    ids[2:9, 2:9], ids[20:30, 20:30] = 1, 7
    write_files(
        inst,
        {
            "a.png": _grey(ids),
            "a.json": b'{"1": "red cell", "2": "platelet", "x": "y"}',
            "c.png": _grey(np.zeros((31, 40), np.uint8)),  # one row too many
            "sub/b.png": _grey(np.zeros((60, 80), np.uint8)),  # no class table
        },
    )
    found = read_segmentation("png-instances", inst, images)
    messages = [f"{Path(p.file).name}, {p.where}: {p.message}" for p in found.problems]
    assert messages == [
        "a.json, id 'x': an entry is an id 1 to 65535 and a class name",
        "a.json, id 7: the mask has 100 pixels of id 7, which has no class in this table",
        "a.json, id 2: platelet has no pixels in the mask",
        "c.png, : mask of c.png is 40x31, its image 40x30",
        "b.json, : no class table for the instance ids of sub/b.png",
    ]
    assert [(i.image, len(i.instances)) for i in found.images] == [("a.png", 1)]
    semantic = tmp_path / "semantic"
    write_files(
        semantic,
        {
            "classes.txt": b"background\nred cell\n",
            "a.png": _grey(np.full((48, 64), 7, np.uint8)),
            "c.png": b"GIF89a not a png",
        },
    )
    found = read_segmentation("png", semantic, images)
    assert [p.message for p in found.problems] == [
        "pixel values 7 (3072 pixels) name no class (the class names go from 0 to 1)",
        "mask of c.png not a PNG file",
    ]


def test_voc_objects_take_their_class_from_segmentation_class(images: Path, tmp_path: Path):
    palette = voc_palette()
    from augtool.annotations.png_masks import palette_png

    classes = np.zeros((48, 64), np.uint8)
    objects = np.zeros((48, 64), np.uint8)
    classes[0:10, 0:10], objects[0:10, 0:10] = 2, 1
    classes[10:20, 0:5], classes[10:20, 5:10], objects[10:20, 0:10] = 1, 2, 2  # two classes
    objects[30:40, 30:40] = 3  # background in SegmentationClass
    classes[9, :], objects[9, :] = 255, 255  # boundary band
    write_files(
        tmp_path / "voc",
        {
            "SegmentationClass/a.png": palette_png(classes, palette),
            "SegmentationObject/a.png": palette_png(objects, palette),
            "SegmentationObject/c.png": palette_png(np.zeros((30, 40), np.uint8), palette),
        },
    )
    found = read_segmentation("voc", tmp_path / "voc", images)
    assert [f"{p.where}: {p.message}" for p in found.problems] == [
        "object 2: object id 2 spans classes aeroplane, bicycle in SegmentationClass",
        "object 3: object id 3 has only background or boundary pixels in SegmentationClass",
        ": has no SegmentationClass/c.png to give its objects their classes",
    ]
    (item,) = found.images
    assert [(i.label, i.where) for i in item.instances] == [("bicycle", "object 1")]
    assert to_bitmap(item.instances[0].shape, 64, 48).sum() == 90


def test_yolo_faults_and_clipping(images: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    write_files(
        labels,
        {
            "classes.txt": b"red cell\n",
            "a.txt": b"0 0.1 0.1 0.5 0.1 0.5 0.5\n0 0.1 0.1 0.2 0.2\n3 0.1 0.1 0.2 0.2 0.3 0.3\n"
            b"0 0.1 0.1 0.2 zero 0.3 0.3\n0 -0.5 0.2 0.5 0.2 0.5 0.8\n0 1.5 1.5 2 1.5 2 2\n",
        },
    )
    found = read_segmentation("yolo", labels, images)
    assert [f"{p.where}: {p.message}" for p in found.problems] == [
        "line 2: red cell polygon has 2 point(s); a polygon needs at least 3",
        "line 3: class '3' is not a line number of the 1 class names (0 to 0)",
        "line 4: red cell polygon holds 'zero', not a number",
        "line 6: red cell polygon lies wholly outside the 64x48 image",
    ]
    assert (
        len(found.warnings) == 1 and "line 5: red cell polygon reaches outside" in found.warnings[0]
    )
    (item,) = found.images
    assert [i.where for i in item.instances] == ["line 1", "line 5"]
    assert item.instances[1].shape.parts[0][:, 0].min() == 0.0
    assert found.unannotated == ["c.png", "sub/b.png"]


def test_unknown_format_and_misplaced_names_are_option_errors(images: Path) -> None:
    with pytest.raises(OptionError, match="format"):
        read_segmentation("labelme", images, images)
    with pytest.raises(OptionError, match="names"):
        read_segmentation("coco", images, images, names="x.txt")
    assert set(SEGMENTATION_FORMATS) == {"coco", "yolo", "png", "png-instances", "voc"}


@pytest.mark.parametrize("fmt", ["png", "voc", "yolo"])
def test_missing_folders_and_names_are_input_errors(tmp_path: Path, images: Path, fmt: str):
    with pytest.raises(InputError):
        read_segmentation(fmt, tmp_path / "nowhere", images)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        read_segmentation(fmt, tmp_path / "empty", images)


# --- hostile files ------------------------------------------------------------------------


def test_a_huge_declared_size_is_refused_before_decoding(images: Path, tmp_path: Path) -> None:
    big = _png(50_000, 50_000, 8, 0, b"")[:33]  # a header and nothing else
    (images / "big.png").write_bytes(big + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    write_files(
        tmp_path / "m",
        {
            "classes.txt": b"background\n",
            "big.png": big,
            "a.png": _png(60_000, 60_000, 16, 0, b""),
        },
    )
    found = read_segmentation("png", tmp_path / "m", images)
    messages = sorted(p.message for p in found.problems)
    assert messages == [
        "image big.png is 50000x50000, more than the max_pixels (100000000) pixels a mask may have",
        "mask of a.png is 60000x60000, its image 64x48",
    ]


def test_deep_json_and_huge_numbers_are_problems(images: Path, tmp_path: Path) -> None:
    for text in ["[" * 100_000 + "]" * 100_000, '{"images": ' + "9" * 5000 + "}"]:
        path = tmp_path / "deep.json"
        path.write_text(text)
        found = read_segmentation("coco", path, images)
        assert len(found.problems) == 1 and "malformed JSON" in found.problems[0].message


def _grey(values: np.ndarray) -> bytes:
    from augtool.annotations.png_masks import grey_png

    return grey_png(values)


def _returns_a_set(run) -> None:
    """A reader given anything returns a set, or refuses the location with InputError."""
    try:
        found = run()
    except InputError:
        return
    assert isinstance(found, SegmentationSet)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@FUZZ
@given(data=st.binary(max_size=300), segmentation=JSON, image_id=JSON, size=JSON)
def test_fuzz_coco(images: Path, tmp_path: Path, data, segmentation, image_id, size) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    _returns_a_set(lambda: read_segmentation("coco", path, images))
    doc = coco_with_faults()
    doc["annotations"] += [
        {"id": 11, "image_id": image_id, "category_id": 1, "segmentation": segmentation},
        {
            "id": 12,
            "image_id": 1,
            "category_id": image_id,
            "segmentation": {"size": size, "counts": segmentation},
        },
    ]
    doc["images"].append({"id": image_id, "file_name": "c.png", "width": size, "height": 5})
    path.write_text(json.dumps(doc))
    _returns_a_set(lambda: read_segmentation("coco", path, images))


@FUZZ
@given(text=st.text(alphabet="0123456789 .-e\nx", max_size=200), names=st.binary(max_size=40))
def test_fuzz_yolo(images: Path, tmp_path: Path, text: str, names: bytes) -> None:
    folder = tmp_path / "yolo"
    write_files(folder, {"classes.txt": names, "a.txt": text.encode(), "c.txt": names})
    _returns_a_set(lambda: read_segmentation("yolo", folder, images))


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid mask PNGs (grey and palette) cut, flipped or spliced, and plain bytes."""
    valid = [
        _grey(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) % 3),
        voc_mask_files(items()[:1], CLASSES)["SegmentationClass/a.png"],
    ]
    base = st.sampled_from(valid)
    cut = st.tuples(base, st.integers(0, 400)).map(lambda t: t[0][: t[1]])
    flip = st.tuples(base, st.integers(8, 300), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :]
    )
    return st.one_of(base, cut, flip, st.binary(max_size=200))


@FUZZ
@given(mask=_mutations(), table=st.binary(max_size=60) | JSON.map(lambda v: json.dumps(v).encode()))
def test_fuzz_png_masks(images: Path, tmp_path: Path, mask: bytes, table: bytes) -> None:
    folder = tmp_path / "png"
    write_files(folder, {"classes.txt": b"a\nb\nc\n", "a.png": mask, "a.json": table})
    _returns_a_set(lambda: read_segmentation("png", folder, images))
    _returns_a_set(lambda: read_segmentation("png-instances", folder, images))


@FUZZ
@given(classes=_mutations(), objects=_mutations())
def test_fuzz_voc(images: Path, tmp_path: Path, classes: bytes, objects: bytes) -> None:
    folder = tmp_path / "voc"
    write_files(
        folder,
        {
            "SegmentationClass/a.png": classes,
            "SegmentationObject/a.png": objects,
        },
    )
    _returns_a_set(lambda: read_segmentation("voc", folder, images))


def test_rle_of_pycocotools_reads_back(images: Path, tmp_path: Path) -> None:
    """An RLE written by pycocotools (compressed and as a list) is read as its pixels."""
    mask = disc(30, 20, 11, 64, 48)
    packed = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    listed = encode_rle(mask)
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "cell"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": {"size": [48, 64], "counts": packed["counts"].decode()},
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": {"size": [48, 64], "counts": list(listed.counts)},
            },
        ],
    }
    path = tmp_path / "rle.json"
    path.write_text(json.dumps(doc))
    (item,) = read_segmentation("coco", path, images).images
    for instance in item.instances:
        np.testing.assert_array_equal(to_bitmap(instance.shape, 64, 48), mask)
    assert [i.iscrowd for i in item.instances] == [True, False]
