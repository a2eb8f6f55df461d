"""Generated demo smears: determinism, layout, atomic output, CLI, and class cues."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import augtool.tools.synth as synth
from augtool.errors import OptionError, OutputError
from augtool.tools.smear.cell_models import cell_masks
from augtool.tools.synth import (
    CLASSES,
    draw_scene,
    image_rng,
    nucleus_fraction,
    render_smear,
    sample_scene,
    synthesize,
)
from cli import main

SMALL = (160, 120)


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


# --- determinism -------------------------------------------------------------------------------


def test_render_is_a_function_of_the_generator_state() -> None:
    a = render_smear("AML", np.random.default_rng(5), SMALL)
    b = render_smear("AML", np.random.default_rng(5), SMALL)
    c = render_smear("AML", np.random.default_rng(6), SMALL)
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_draw_scene_is_pure() -> None:
    scene = sample_scene("ALL", np.random.default_rng(1), SMALL)
    assert np.array_equal(draw_scene(scene), draw_scene(scene))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    counts = {"ALL": 2, "AML": 2, "normal": 2}
    synthesize(tmp_path / "a", counts, size=SMALL, seed=3)
    synthesize(tmp_path / "b", counts, size=SMALL, seed=3)
    synthesize(tmp_path / "c", counts, size=SMALL, seed=4)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a)


def test_changing_one_class_count_leaves_other_images_unchanged(tmp_path: Path) -> None:
    synthesize(tmp_path / "few", {"ALL": 2, "AML": 1}, size=SMALL, seed=0)
    synthesize(tmp_path / "more", {"ALL": 2, "AML": 3, "normal": 1}, size=SMALL, seed=0)
    few, more = tree(tmp_path / "few"), tree(tmp_path / "more")
    assert set(few) < set(more)
    for name, data in few.items():
        assert more[name] == data, name


# --- layout ------------------------------------------------------------------------------------


def test_counts_names_and_sizes(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "demo"
    summary = synthesize(out, {"normal": 3, "ALL": 2, "AML": 0}, size=(200, 150), seed=1)
    assert summary.counts == {"ALL": 2, "normal": 3}
    assert summary.size == (200, 150)
    assert sorted(tree(out)) == [
        "ALL/ALL_000.jpg",
        "ALL/ALL_001.jpg",
        "normal/normal_000.jpg",
        "normal/normal_001.jpg",
        "normal/normal_002.jpg",
    ]
    for path in out.rglob("*.jpg"):
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (150, 200, 3)
    assert [p.name for p in out.parent.iterdir()] == ["demo"]  # no temporary folder left
    assert "5 images" in summary.line() and "ALL 2" in summary.line()


def test_default_counts_are_the_papers() -> None:
    assert synth.DEFAULT_PER_CLASS == {"ALL": 49, "AML": 33, "normal": 59}


def test_names_widen_past_999_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blank = np.zeros((64, 64, 3), np.uint8)
    monkeypatch.setattr(synth, "draw_scene", lambda scene: blank)
    monkeypatch.setattr(synth, "sample_scene", lambda cls, rng, size: None)
    synthesize(tmp_path / "o", {"AML": 1001}, size=(64, 64))
    names = sorted(p.name for p in (tmp_path / "o" / "AML").iterdir())
    assert names[0] == "AML_0000.jpg" and names[-1] == "AML_1000.jpg"


# --- atomic output -----------------------------------------------------------------------------


def test_refuses_non_empty_out_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        synthesize(out, {"ALL": 1}, size=SMALL)
    assert tree(out) == {"keep.txt": b"mine"}
    synthesize(out, {"ALL": 1}, size=SMALL, overwrite=True)
    assert sorted(tree(out)) == ["ALL/ALL_000.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_accepts_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    synthesize(tmp_path / "demo", {"AML": 1}, size=SMALL)
    assert sorted(tree(tmp_path / "demo")) == ["AML/AML_000.jpg"]


def test_refuses_a_file_as_out(tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        synthesize(tmp_path / "demo", {"ALL": 1}, size=SMALL, overwrite=True)


def test_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing(scene: synth.Scene) -> np.ndarray:
        calls.append(scene.cls)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return np.zeros((scene.size[1], scene.size[0], 3), np.uint8)

    monkeypatch.setattr(synth, "draw_scene", failing)
    with pytest.raises(RuntimeError, match="boom"):
        synthesize(tmp_path / "demo", {"ALL": 5}, size=SMALL)
    assert list(tmp_path.iterdir()) == []


# --- argument checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"per_class": {"CLL": 3}}, "per_class"),
        ({"per_class": {"ALL": -1}}, "per_class"),
        ({"per_class": {"ALL": 1.5}}, "per_class"),
        ({"per_class": {"ALL": 0}}, "per_class"),
        ({"per_class": {}}, "per_class"),
        ({"size": (10, 480)}, "size"),
        ({"size": (640.5, 480)}, "size"),
        ({"size": "640x480"}, "size"),
        ({"seed": -1}, "seed"),
        ({"jpeg_quality_range": (95, 75)}, "jpeg_quality_range"),
        ({"jpeg_quality_range": (0, 101)}, "jpeg_quality_range"),
    ],
)
def test_bad_arguments_name_the_option(tmp_path: Path, kwargs: dict, option: str) -> None:
    with pytest.raises(OptionError) as err:
        synthesize(tmp_path / "demo", **kwargs)
    assert err.value.option == option
    assert not (tmp_path / "demo").exists()


def test_unknown_class_in_render_names_cls() -> None:
    with pytest.raises(OptionError, match="cls: unknown class 'CLL'"):
        render_smear("CLL", np.random.default_rng(0))


# --- command line ------------------------------------------------------------------------------


def test_cli_writes_and_prints_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["synth", str(tmp_path / "d"), "--per-class", "ALL=1,normal=2", "--size", "160x120"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "3 images (ALL 1, normal 2) at 160x120, seed 0" in lines[0]
    assert sorted(tree(tmp_path / "d")) == [
        "ALL/ALL_000.jpg",
        "normal/normal_000.jpg",
        "normal/normal_001.jpg",
    ]


def test_cli_matches_library_bytes_and_quiet(tmp_path: Path) -> None:
    args = ["--per-class", "AML=2", "--size", "160x120", "--seed", "9", "--quiet"]
    result = CliRunner().invoke(main, ["synth", str(tmp_path / "cli"), *args])
    assert result.exit_code == 0 and result.output == ""
    synthesize(tmp_path / "lib", {"AML": 2}, size=SMALL, seed=9)
    assert tree(tmp_path / "cli") == tree(tmp_path / "lib")


@pytest.mark.parametrize(
    ("args", "option", "text"),
    [
        (["--per-class", "ALL=x"], "--per-class", "whole number"),
        (["--per-class", "ALL"], "--per-class", "CLASS=COUNT"),
        (["--per-class", "ALL=1,ALL=2"], "--per-class", "twice"),
        (["--per-class", "CLL=3"], "--per-class", "unknown class 'CLL'"),
        (["--per-class", "ALL=-2"], "--per-class", ">= 0"),
        (["--size", "axb"], "--size", "WIDTHxHEIGHT"),
        (["--size", "10x10"], "--size", "64..8192"),
        (["--seed", "-1"], "--seed", ""),
    ],
)
def test_cli_option_errors(tmp_path: Path, args: list[str], option: str, text: str) -> None:
    result = CliRunner().invoke(main, ["synth", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert option in result.output and text in result.output
    assert not (tmp_path / "d").exists()


def test_cli_size_of_one_side_is_square(tmp_path: Path) -> None:
    """``--size N`` means N x N here as in expand: one meaning of --size everywhere."""
    result = CliRunner().invoke(
        main, ["synth", str(tmp_path / "d"), "--per-class", "ALL=1", "--size", "100", "-q"]
    )
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(tmp_path / "d" / "ALL" / "ALL_000.jpg"))
    assert image.shape[:2] == (100, 100)


def test_cli_non_empty_out_exits_2(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    result = CliRunner().invoke(main, ["synth", str(tmp_path / "d"), "--per-class", "ALL=1"])
    assert result.exit_code == 2
    assert "not empty" in result.output and "--overwrite" in result.output


def test_cli_help_has_an_example() -> None:
    result = CliRunner().invoke(main, ["synth", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "augtool synth demo/ --per-class ALL=10,AML=10,normal=10" in result.output


# --- the class cues: learnable, but not from colour or size alone ------------------------------


def scenes(cls: str, n: int, seed: int = 11) -> list:
    return [sample_scene(cls, image_rng(seed, CLASSES.index(cls), i), (320, 240)) for i in range(n)]


def test_geometry_follows_the_paper() -> None:
    for cls, (lo, hi) in {"ALL": (0.78, 0.92), "AML": (0.48, 0.62)}.items():
        for scene in scenes(cls, 15):
            cell = scene.central_cell
            assert lo <= nucleus_fraction(cell) <= hi, (cls, nucleus_fraction(cell))
            assert 1.65 <= 2 * cell.body.radius / scene.rbc_diameter <= 2.35
            assert (len(cell.rods) >= 1) == (cls == "AML")
            assert 0.13 * 320 <= scene.rbc_diameter <= 0.16 * 320
    for scene in scenes("normal", 15):
        cell = scene.central_cell
        assert 0.85 <= 2 * cell.body.radius / scene.rbc_diameter <= 1.55
        assert cell.kind in {"neutrophil", "lymphocyte", "monocyte"} and not cell.rods


def pixel_nucleus_fraction(scene: synth.Scene) -> float:
    """Share of the central cell's pixels darker than Otsu's threshold in green."""
    image = draw_scene(scene)
    height, width = image.shape[:2]
    xs = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    body, _ = cell_masks(scene.central_cell, xs, ys, 0.5)
    green = image[..., 1][body > 0.99].reshape(-1, 1)
    threshold, _ = cv2.threshold(green, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float((green <= threshold).mean())


def test_pixels_show_the_nucleus_ratio() -> None:
    """Measured on the rendered picture, not the geometry: ALL nuclei fill more of the cell."""
    all_fraction = [pixel_nucleus_fraction(s) for s in scenes("ALL", 12)]
    aml_fraction = [pixel_nucleus_fraction(s) for s in scenes("AML", 12)]
    assert min(all_fraction) > max(aml_fraction)
    assert np.mean(all_fraction) - np.mean(aml_fraction) > 0.15


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Fit on even rows, score on odd rows, features standardised."""
    train = np.arange(len(labels)) % 2 == 0
    z = (features - features[train].mean(0)) / (features[train].std(0) + 1e-9)
    classes = np.unique(labels)
    centroids = np.array([z[train & (labels == k)].mean(0) for k in classes])
    distance = ((z[~train][:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((classes[distance.argmin(1)] == labels[~train]).mean())


def test_mean_colour_and_blast_size_do_not_give_the_class_away() -> None:
    per_class = 30
    mean_rgb, diameter, labels = [], [], []
    for k, cls in enumerate(CLASSES):
        for scene in scenes(cls, per_class, seed=21):
            mean_rgb.append(draw_scene(scene).reshape(-1, 3).mean(0))
            diameter.append([2 * scene.central_cell.body.radius / scene.rbc_diameter])
            labels.append(k)
    mean_rgb, diameter, labels = np.array(mean_rgb), np.array(diameter), np.array(labels)
    assert nearest_centroid_accuracy(mean_rgb, labels) < 0.7  # chance is 1/3
    blasts = labels < 2
    assert nearest_centroid_accuracy(diameter[blasts], labels[blasts]) < 0.7  # chance is 1/2
    # ... while the size does tell normal from leukaemic cells, as in the paper.
    leukaemic = (labels < 2).astype(int)
    assert nearest_centroid_accuracy(diameter, leukaemic) > 0.9
