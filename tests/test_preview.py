"""``augtool preview``: contact sheet of one image, grid of an expand output."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.errors import InputError, OptionError, OutputError
from augtool.pipeline.builtins import PAPER
from augtool.store.dataset import open_dataset
from augtool.tools import dataset_grid as dg
from augtool.tools import preview as pv
from augtool.tools import tiles as tl
from cli import main
from tests.conftest import smear_like, write_image

SIZE = 48


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    """One generated 96x72 JPEG source."""
    path = tmp_path / "raw" / "ALL" / "cell.jpg"
    write_image(path, smear_like(np.random.default_rng(3), 96, 72))
    return path


def read_png(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def sheet_shape(columns: int, size: int) -> tuple[int, int, int]:
    rows = math.ceil(13 / columns)
    height = tl.TITLE_HEIGHT + rows * (size + tl.LABEL_HEIGHT) + (rows + 1) * tl.GAP
    return height, columns * size + (columns + 1) * tl.GAP, 3


# --- contact sheet --------------------------------------------------------------------


def test_sheet_has_original_every_transform_and_both_pca_modes(cell: Path) -> None:
    tiles, about = pv.sheet_tiles(cell, size=SIZE)
    assert pv.SHEET_TILES == 13
    assert [t.title for t in tiles] == ["original", *PAPER, "pca pixel", "pca shift"]
    assert all(t.image.shape == (SIZE, SIZE, 3) and t.image.dtype == np.uint8 for t in tiles)
    assert "cell.jpg 96x72" in about


@pytest.mark.parametrize("columns", [1, 4, 5, 13])
def test_sheet_layout_is_exact(cell: Path, columns: int) -> None:
    sheet = pv.contact_sheet(cell, size=SIZE, columns=columns)
    assert sheet.shape == sheet_shape(columns, SIZE)
    tiles, _ = pv.sheet_tiles(cell, size=SIZE)
    for i, tile in enumerate(tiles):
        row, col = divmod(i, columns)
        y = tl.TITLE_HEIGHT + tl.GAP + row * (SIZE + tl.LABEL_HEIGHT + tl.GAP)
        x = tl.GAP + col * (SIZE + tl.GAP)
        assert np.array_equal(sheet[y : y + SIZE, x : x + SIZE], tile.image), tile.title
        label = sheet[y + SIZE : y + SIZE + tl.LABEL_HEIGHT, x : x + SIZE]
        assert (label != tl.BACKGROUND).any(), f"{tile.title} has no label"


def test_tiles_are_what_expand_makes_for_each_copy(cell: Path, tmp_path: Path) -> None:
    # A single source is first in plan order, so copy k gets the k-th transform
    # and its first PCA copy is copy 11: the sheet must show the same pixels.
    raw = cell.parents[1]
    out = tmp_path / "one.h5"
    options = ExpandOptions(size=SIZE, target=11, pca_count=1, split="none", seed=5, workers=1)
    expand(raw, out, options)
    data = open_dataset(out)
    tiles, _ = pv.sheet_tiles(cell, size=SIZE, seed=5)
    assert data.transforms == [t.title for t in tiles[:11]] + ["pca"]
    for k in range(12):
        assert np.array_equal(data.images[k], tiles[k].image), data.transforms[k]


def test_labels_carry_the_sampled_parameters(cell: Path, tmp_path: Path) -> None:
    raw = cell.parents[1]
    out = tmp_path / "one"
    expand(raw, out, ExpandOptions(size=SIZE, target=11, split="none", workers=1))
    rows = {r["transform"]: json.loads(r["params"]) for r in _manifest(out)}
    tiles = {t.title: t.detail for t in pv.sheet_tiles(cell, size=SIZE)[0]}
    assert tiles["blur_rgb"] == f"sigma = {rows['blur_rgb']['sigma']:.1f} px"
    assert tiles["rotate"].startswith(f"{rows['rotate']['angle']:+.1f} deg")
    assert f"dx {rows['translate']['dx']:+.1f}" in tiles["translate"]
    assert tiles["shear_y"] == f"factor {rows['shear_y']['factor']:+.2f}"
    assert tiles["original"] == "96x72 source"
    assert tiles["pca shift"].startswith("shift ")
    assert tiles["pca pixel"].startswith("w ")


def _manifest(out: Path) -> list[dict[str, str]]:
    from augtool.store.dataset import read_manifest

    return read_manifest(out)


def test_pca_tiles_share_the_alphas_and_differ_in_the_mode(cell: Path) -> None:
    from augtool.ops.pca import apply_pca, sample_alphas
    from augtool.pipeline.steps import output_rng

    tiles = {t.title: t for t in pv.sheet_tiles(cell, size=SIZE, seed=3, pca_std=0.5)[0]}
    sha256 = hashlib.sha256(cell.read_bytes()).hexdigest()
    alphas = sample_alphas(output_rng(3, sha256, 11), 1, 3, 0.5)
    original = tiles["original"].image[None]
    for mode in ("pixel", "shift"):
        expected = apply_pca(original, alphas, mode=mode).images[0]
        assert np.array_equal(tiles[f"pca {mode}"].image, expected), mode
    assert not np.array_equal(tiles["pca pixel"].image, tiles["pca shift"].image)


def test_pca_std_zero_leaves_the_original(cell: Path) -> None:
    tiles = pv.sheet_tiles(cell, size=SIZE, pca_std=0.0)[0]
    assert np.array_equal(tiles[-1].image, tiles[0].image)
    assert np.array_equal(tiles[-2].image, tiles[0].image)


def test_same_seed_same_bytes_other_seed_other_bytes(cell: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    pv.preview(cell, a, size=SIZE, seed=1)
    pv.preview(cell, b, size=SIZE, seed=1)
    pv.preview(cell, c, size=SIZE, seed=2)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert read_png(a).shape == sheet_shape(5, SIZE)


def test_ascii_labels_without_opencv5_font(cell: Path, monkeypatch) -> None:
    monkeypatch.setattr(tl, "label_font", lambda: None)
    sheet = pv.contact_sheet(cell, size=SIZE)
    assert sheet.shape == sheet_shape(5, SIZE)
    strip = sheet[tl.TITLE_HEIGHT + tl.GAP + SIZE :][: tl.LABEL_HEIGHT, tl.GAP : tl.GAP + SIZE]
    assert (strip != tl.BACKGROUND).any()


# --- dataset grid ---------------------------------------------------------------------


@pytest.fixture
def expanded(make_raw, tmp_path: Path):
    """A small expand output in both forms (3 classes, train/val/test)."""
    raw = make_raw({"ALL": 4, "AML": 3, "normal": 5})
    options = ExpandOptions(
        size=32, target=48, pca_count=6, split="0.5,0.25,0.25", seed=1, workers=1
    )
    folder, h5 = tmp_path / "out", tmp_path / "out.h5"
    expand(raw, folder, options)
    expand(raw, h5, options)
    return folder, h5


@pytest.mark.parametrize("form", [0, 1], ids=["folder", "hdf5"])
@pytest.mark.parametrize("per_cell", [1, 3])
def test_grid_layout_and_tiles(expanded, form: int, per_cell: int) -> None:
    path = expanded[form]
    data = open_dataset(path)
    grid, tiles = dg.dataset_grid(path, per_cell=per_cell, seed=0)
    side, splits, n_classes = 32, data.split_names, len(data.class_names)
    assert splits == ["train", "val", "test"]
    group_w = per_cell * side + (per_cell - 1) * tl.GAP
    height = (
        tl.TITLE_HEIGHT
        + tl.HEADER_HEIGHT
        + n_classes * (side + tl.GRID_LABEL_HEIGHT)
        + (n_classes + 1) * tl.GAP
    )
    width = tl.ROW_LABEL_WIDTH + 3 * group_w + 2 * tl.GROUP_GAP + 2 * tl.GAP
    assert grid.shape == (height, width, 3)
    expected = 0
    for s, split in enumerate(splits):
        for label in range(n_classes):
            members = np.flatnonzero((data.splits == split) & (data.labels == label))
            expected += min(per_cell, len(members))
            x0 = tl.ROW_LABEL_WIDTH + tl.GAP + s * (group_w + tl.GROUP_GAP)
            y = tl.TITLE_HEIGHT + tl.HEADER_HEIGHT + tl.GAP + label * (side + 22 + tl.GAP)
            for j in range(min(per_cell, len(members))):
                x = x0 + j * (side + tl.GAP)
                shown = grid[y : y + side, x : x + side]
                assert any(np.array_equal(shown, data.images[m]) for m in members)
    assert tiles == expected


def test_grid_same_for_folder_and_hdf5_and_seeded(expanded, tmp_path: Path) -> None:
    folder, h5 = expanded
    a = dg.dataset_grid(folder, per_cell=2, seed=4)[0]
    b = dg.dataset_grid(h5, per_cell=2, seed=4)[0]
    c = dg.dataset_grid(h5, per_cell=2, seed=5)[0]
    # Only the title (file name) differs between the two forms.
    assert np.array_equal(a[tl.TITLE_HEIGHT :], b[tl.TITLE_HEIGHT :])
    assert not np.array_equal(b, c)


def test_grid_marks_empty_cells(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"ALL": 1, "AML": 3})
    out = tmp_path / "out.h5"
    expand(raw, out, ExpandOptions(size=32, target=8, split="0.5", workers=1))
    data = open_dataset(out)
    grid, tiles = dg.dataset_grid(out, per_cell=2)
    cells = {(s, int(lab)) for s, lab in zip(data.splits, data.labels, strict=True)}
    assert tiles == sum(
        min(2, int(np.count_nonzero((data.splits == s) & (data.labels == lab)))) for s, lab in cells
    )
    empty = [(s, lab) for s in data.split_names for lab in (0, 1) if (s, lab) not in cells]
    assert empty, "one split should have no ALL image"
    group_w = 2 * 32 + tl.GAP
    for split, label in empty:
        x = tl.ROW_LABEL_WIDTH + tl.GAP + data.split_names.index(split) * (group_w + tl.GROUP_GAP)
        y = tl.TITLE_HEIGHT + tl.HEADER_HEIGHT + tl.GAP + label * (32 + 22 + tl.GAP)
        region = grid[y : y + 32, x : x + group_w]
        assert (region != tl.BACKGROUND).any()  # the "(none)" mark
        assert not any(np.array_equal(region[:, :32], img) for img in data.images)


# --- inputs, outputs and errors -------------------------------------------------------


def test_detect_kind(cell: Path, expanded) -> None:
    folder, h5 = expanded
    assert pv.detect_kind(cell) == "image"
    assert pv.detect_kind(folder) == "dataset"
    assert pv.detect_kind(h5) == "dataset"
    renamed = h5.with_suffix(".bin")
    renamed.write_bytes(h5.read_bytes())
    assert pv.detect_kind(renamed) == "dataset"


def test_bad_inputs_are_input_errors(cell: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(cell.read_bytes()[:200])
    fake_h5 = tmp_path / "fake.h5"
    fake_h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    cases = {
        tmp_path / "missing.jpg": "no such file",
        cell.parents[1]: "not an `augtool expand` output",
        text: "not an image",
        broken: "broken.jpg",
        fake_h5: "not a readable HDF5",
    }
    for source, words in cases.items():
        with pytest.raises(InputError, match=words):
            pv.preview(source, out)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_options_of_the_other_kind_are_refused(cell: Path, expanded, tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    with pytest.raises(OptionError, match="per_cell"):
        pv.preview(cell, out, per_cell=2)
    for kwargs in ({"size": 64}, {"columns": 3}):
        with pytest.raises(OptionError) as err:
            pv.preview(expanded[1], out, **kwargs)
        assert err.value.option == next(iter(kwargs))
    for kwargs in (
        {"columns": 14},
        {"columns": 0},
        {"size": 4},
        {"pca_std": -1.0},
        {"pca_std": float("nan")},
    ):
        with pytest.raises(OptionError) as err:
            pv.preview(cell, out, **kwargs)
        assert err.value.option == next(iter(kwargs))  # the Python parameter, not a flag
    with pytest.raises(OptionError, match="per_cell"):
        pv.preview(expanded[0], out, per_cell=0)
    assert not out.exists()


def test_output_checks(cell: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="out"):
        pv.preview(cell, tmp_path / "p.jpg")
    png = tmp_path / "cell.png"
    png.write_bytes(cv2.imencode(".png", smear_like(np.random.default_rng(0), 40, 30))[1])
    with pytest.raises(OptionError, match="is the input"):
        pv.preview(png, png, overwrite=True)
    with pytest.raises(OutputError, match="no such folder"):
        pv.preview(cell, tmp_path / "nowhere" / "p.png")
    out = tmp_path / "p.png"
    out.write_bytes(b"keep")
    with pytest.raises(OutputError, match="overwrite"):
        pv.preview(cell, out, size=SIZE)
    assert out.read_bytes() == b"keep"
    pv.preview(cell, out, size=SIZE, overwrite=True)
    assert read_png(out).shape == sheet_shape(5, SIZE)


def test_failed_write_leaves_no_file(cell: Path, tmp_path: Path, monkeypatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    from augtool.store import publish

    monkeypatch.setattr(publish.os, "replace", refuse)
    out = tmp_path / "p.png"
    with pytest.raises(OutputError, match="errno 28"):
        pv.write_png(out, np.zeros((4, 4, 3), np.uint8))
    assert not out.exists()
    assert list(tmp_path.glob(".p.png.*")) == []


# --- command line ---------------------------------------------------------------------


def test_cli_sheet_and_grid(cell: Path, expanded, tmp_path: Path) -> None:
    runner = CliRunner()
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(
        main, ["preview", str(cell), str(sheet), "--size", "40", "--columns", "7"]
    )
    assert result.exit_code == 0, result.output
    assert "contact sheet" in result.output and "13 tiles" in result.output
    assert read_png(sheet).shape == sheet_shape(7, 40)
    grid = tmp_path / "grid.png"
    result = runner.invoke(main, ["preview", str(expanded[1]), str(grid), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert read_png(grid).shape == dg.dataset_grid(expanded[1])[0].shape


def test_cli_errors_and_exit_codes(cell: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "p.png")
    result = runner.invoke(main, ["preview", str(cell.parents[1]), out])
    assert result.exit_code == 2
    assert "not an `augtool expand` output" in result.output
    result = runner.invoke(main, ["preview", str(cell), out, "--per-cell", "3"])
    assert result.exit_code == 2 and "--per-cell" in result.output
    Path(out).write_bytes(b"x")
    result = runner.invoke(main, ["preview", str(cell), out])
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = runner.invoke(main, ["preview", str(cell)])
    assert result.exit_code == 2 and "Missing argument 'OUT'" in result.output


def test_cli_out_option_is_a_deprecated_alias_of_out(cell: Path, tmp_path: Path) -> None:
    """OUT is positional in every command; ``--out``/``-o`` still work and say so on stderr."""
    runner = CliRunner()
    for flag in ("--out", "-o"):
        out = tmp_path / f"sheet{flag}.png"
        result = runner.invoke(main, ["preview", str(cell), flag, str(out), "--size", "40", "-q"])
        assert result.exit_code == 0, result.output
        assert read_png(out).shape == sheet_shape(pv.DEFAULT_COLUMNS, 40)
        assert "--out is deprecated" in result.stderr and result.stdout == ""
    result = runner.invoke(main, ["preview", str(cell), str(tmp_path / "a.png"), "-o", "b.png"])
    assert result.exit_code == 2 and "give OUT once" in result.output
    assert not (tmp_path / "a.png").exists()


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(main, ["preview", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "augtool preview raw/ALL/im001.jpg sheet.png" in result.output
