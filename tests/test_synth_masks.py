"""``augtool synth --masks``: every generated cell's exact mask, in COCO and PNG form."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.annotations import read_segmentation
from augtool.annotations.masks import to_bitmap
from augtool.store.decode import decode_rgb
from augtool.tools.smear.cell_models import cell_masks
from augtool.tools.smear.draw import edge_width
from augtool.tools.synth import (
    CELL_CLASSES,
    CLASSES,
    SEMANTIC_CLASSES,
    image_rng,
    sample_scene,
    synthesize,
)
from tests.child_process import run_cli

PER_CLASS = {"ALL": 1, "AML": 1, "normal": 2}
SIZE = (640, 480)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    synthesize(root / "out", PER_CLASS, SIZE, seed=0, masks=root / "masks")
    return root / "out", root / "masks"


def scenes() -> dict[str, object]:
    """Each written image's scene, drawn again from its own generator."""
    found = {}
    for cls, n in PER_CLASS.items():
        for i in range(n):
            rng = image_rng(0, CLASSES.index(cls), i)
            found[f"{cls}/{cls}_{i:03d}.jpg"] = sample_scene(cls, rng, SIZE)
    return found


def generator_masks(scene) -> list[tuple[str, np.ndarray]]:
    """Every cell's pixels (coverage >= 1/2) computed on the whole image grid, as drawn."""
    width, height = scene.size
    xs = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    edge = edge_width(scene)
    cells = [("red cell", c.shape.field(xs, ys, edge)[0]) for c in scene.red_cells]
    cells += [("platelet", p.field(xs, ys, edge)[0]) for p in scene.platelets]
    cells += [(w.kind, cell_masks(w, xs, ys, edge)[0]) for w in scene.white_cells]
    return [(label, alpha >= 0.5) for label, alpha in cells if (alpha >= 0.5).any()]


def test_images_are_the_same_bytes_without_masks(written, tmp_path: Path) -> None:
    out, _ = written
    synthesize(tmp_path / "plain", {"normal": 2}, SIZE, seed=0)
    for name in ("normal_000.jpg", "normal_001.jpg"):
        assert (tmp_path / "plain" / "normal" / name).read_bytes() == (
            out / "normal" / name
        ).read_bytes()


def test_coco_masks_are_the_generators_own_rasterisation(written) -> None:
    out, masks = written
    found = read_segmentation("coco", masks / "annotations.json", out)
    assert found.problems == [] and found.warnings == [] and found.unannotated == []
    assert found.classes == sorted(CELL_CLASSES)
    by_image = {item.image: item for item in found.images}
    for image in ("ALL/ALL_000.jpg", "normal/normal_001.jpg"):  # a blast, a normal cell
        scene = scenes()[image]
        item = by_image[image]
        expected = generator_masks(scene)
        assert [i.label for i in item.instances] == [label for label, _ in expected]
        for instance, (_, mask) in zip(item.instances, expected, strict=True):
            np.testing.assert_array_equal(to_bitmap(instance.shape, *SIZE), mask)


def test_png_maps_agree_with_the_coco_file(written) -> None:
    out, masks = written
    coco = {i.image: i for i in read_segmentation("coco", masks / "annotations.json", out).images}
    ids = read_segmentation("png-instances", masks / "instances", out)
    semantic = read_segmentation("png", masks / "semantic", out)
    assert ids.problems == [] and semantic.problems == []
    assert semantic.classes == sorted(SEMANTIC_CLASSES)
    for item, classes in zip(ids.images, semantic.images, strict=True):
        whole = coco[item.image]
        shown = np.zeros((SIZE[1], SIZE[0]), bool)
        for instance in item.instances:  # what shows of a cell lies within its outline
            mask = to_bitmap(instance.shape, *SIZE)
            cell = whole.instances[int(instance.where.removeprefix("id ")) - 1]  # ids: 1, 2, ...
            assert cell.label == instance.label
            assert not (mask & ~to_bitmap(cell.shape, *SIZE)).any()
            shown |= mask
        union = np.zeros_like(shown)
        for instance in whole.instances:
            union |= to_bitmap(instance.shape, *SIZE)
        np.testing.assert_array_equal(shown, union)  # every covered pixel has its cell
        labels = classes.semantic.labels
        np.testing.assert_array_equal(labels > 0, union)
        nucleus = labels == SEMANTIC_CLASSES.index("nucleus")
        assert nucleus.any() and set(np.unique(labels)) <= set(range(len(SEMANTIC_CLASSES)))


def _filled(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return (padded != 2)[1:-1, 1:-1]


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def test_masks_cover_the_cells_seen_in_the_pixels(written) -> None:
    """Each cell standing apart, found in the JPEG by its stain, matches its mask.

    The stain is the optical density summed over the channels; a cell's pixels
    are those darker than halfway between its rim (just inside the mask) and
    the glass around it, holes (a red cell's pale centre) filled.
    """
    out, masks = written
    items = read_segmentation("coco", masks / "annotations.json", out).images
    scores: list[tuple[str, float]] = []
    for item in items:
        rgb = decode_rgb((out / item.image).read_bytes()).astype(np.float32)
        density = cv2.GaussianBlur(-np.log((rgb + 0.5) / 255.0).sum(axis=2), (0, 0), 1.0)
        cells = [to_bitmap(i.shape, *SIZE) for i in item.instances]
        cover = np.sum(cells, axis=0)
        for instance, mask in zip(item.instances, cells, strict=True):
            m8 = mask.astype(np.uint8)
            near = cv2.dilate(m8, _disc(12)).astype(bool)
            border = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
            crowded = ((cover > 0) & near & ~mask).any() or (cover[mask] > 1).any()
            if mask.sum() < 200 or border or crowded:
                continue
            rim = (
                mask & ~cv2.erode(m8, _disc(6)).astype(bool) & cv2.erode(m8, _disc(2)).astype(bool)
            )
            glass = near & ~cv2.dilate(m8, _disc(6)).astype(bool)
            threshold = (np.median(density[rim]) + np.median(density[glass])) / 2
            seen = _filled((density > threshold) & cv2.dilate(m8, _disc(4)).astype(bool))
            scores.append((instance.label, (seen & mask).sum() / (seen | mask).sum()))
    values = [s for _, s in scores]
    assert len(values) >= 8 and any(label not in ("red cell", "platelet") for label, _ in scores)
    assert min(values) >= 0.85 and np.mean(values) >= 0.95, scores


def test_masks_inside_out_are_refused(tmp_path: Path) -> None:
    code, text = run_cli(
        "synth", tmp_path / "out", "--per-class", "ALL=1", "--masks", tmp_path / "out" / "m"
    )
    assert code == 2 and "--masks: must be a folder outside OUT" in text, text
    assert not (tmp_path / "out").exists()
    code, text = run_cli(
        "synth", tmp_path / "o2", "--per-class", "ALL=1", "--size", "64", "--masks", tmp_path / "m2"
    )
    assert code == 0, text
    assert (tmp_path / "m2" / "annotations.json").is_file()
    assert (tmp_path / "m2" / "semantic" / "classes.txt").read_text().splitlines() == list(
        SEMANTIC_CLASSES
    )
    assert (tmp_path / "m2" / "instances" / "ALL" / "ALL_000.png").is_file()


def test_failure_midway_leaves_neither_folder(tmp_path: Path, monkeypatch) -> None:
    import augtool.tools.synth as synth

    calls = []

    def failing(scene) -> np.ndarray:
        calls.append(scene.cls)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return np.zeros((scene.size[1], scene.size[0], 3), np.uint8)

    monkeypatch.setattr(synth, "draw_scene", failing)
    with pytest.raises(RuntimeError, match="boom"):
        synthesize(tmp_path / "out", {"ALL": 3}, (64, 64), masks=tmp_path / "masks")
    assert list(tmp_path.iterdir()) == []
