"""``augtool expand`` end to end: counts, determinism, safe writing, bad input."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from augtool.engine.dry_run import dry_run
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.errors import OutputError
from augtool.store import writers
from augtool.store.dataset import open_dataset
from tests.child_process import run_cli
from tests.conftest import REAL_CELLS, tree_hashes, write_image

SMALL = {"size": 48}


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_paper_counts_49_33_59(make_raw, tmp_path: Path) -> None:
    """The 141 generated sources give the paper's 539 / 363 / 590 and 598 / 429 / 649."""
    raw = make_raw({"ALL": 49, "AML": 33, "normal": 59}, size=(40, 30))
    summary = expand(raw, tmp_path / "out", ExpandOptions(size=32, workers=2))
    per_class = Counter()
    for (_, cls), n in summary.counts.items():
        per_class[cls] += n
    assert per_class == {"ALL": 539, "AML": 363, "normal": 590}
    assert len(list((tmp_path / "out").rglob("*.png"))) == 1492
    # With PCA the plan is counted (dry_run plans with the run's own functions, and a real
    # run reports these counts from that plan): 1,676 more files would show nothing more.
    # PCA copies are rendered and written in test_pca_options_reach_every_copy.
    planned = dry_run(raw, ExpandOptions(size=32, workers=2, pca_count=184))
    per_class = Counter()
    for (_, cls), n in planned.counts.items():
        per_class[cls] += n
    assert per_class == {"ALL": 598, "AML": 429, "normal": 649}
    assert not (tmp_path / "pca").exists()


@pytest.mark.skipif(not REAL_CELLS.is_dir(), reason="real cells not present")
def test_real_cells_counts(tmp_path: Path) -> None:
    code, out = run_cli("expand", REAL_CELLS, tmp_path / "o", "--dry-run", "--pca")
    assert code == 0, out
    total = out.splitlines()[-2]
    assert total.split()[1:] == ["429", "649", "598", "1676"]


def test_layout_and_manifest(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    out = tmp_path / "out"
    expand(raw, out, ExpandOptions(target=30, workers=1, **SMALL))
    rows = manifest(out)
    assert len(rows) == 30
    for row in rows:
        path = out / row["name"]
        assert path.is_file()
        split, cls, fname = row["name"].split("/")
        assert split == row["split"] and cls == row["class"]
        stem = Path(row["source"]).stem
        assert fname == f"{stem}__{int(row['copy']):02d}_{row['transform']}.png"
        json.loads(row["params"])
        assert row["seed"] == "0"
    recipe = json.loads((out / "augtool.json").read_text())
    assert recipe["class_names"] == ["ALL", "AML", "normal"]
    assert recipe["recipe"]["target"] == 30
    assert not writers.partial_path(out).exists()


def test_same_bytes_for_any_worker_count(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    opts = {"target": 40, "pca_count": 0, **SMALL}
    expand(raw, tmp_path / "w1", ExpandOptions(workers=1, **opts))
    expand(raw, tmp_path / "w2", ExpandOptions(workers=2, **opts))
    a, b = tree_hashes(tmp_path / "w1"), tree_hashes(tmp_path / "w2")
    a.pop("augtool.json"), b.pop("augtool.json")  # holds the creation time
    assert a == b


def test_same_bytes_when_files_are_listed_in_another_order(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_raw()
    expand(raw, tmp_path / "a", ExpandOptions(target=30, workers=1, **SMALL))
    real_walk, real_scandir = os.walk, os.scandir

    def reversed_walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            dirnames.reverse()
            yield dirpath, dirnames, list(reversed(filenames))

    def reversed_scandir(path):
        return list(reversed(list(real_scandir(path))))

    fake_os = SimpleNamespace(walk=reversed_walk, scandir=reversed_scandir)
    monkeypatch.setattr("augtool.engine.scan.os", fake_os)
    expand(raw, tmp_path / "b", ExpandOptions(target=30, workers=1, **SMALL))
    a, b = tree_hashes(tmp_path / "a"), tree_hashes(tmp_path / "b")
    a.pop("augtool.json"), b.pop("augtool.json")
    assert a == b


def test_seed_changes_the_bytes(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(raw, tmp_path / "a", ExpandOptions(target=30, workers=1, seed=0, split="none", **SMALL))
    expand(raw, tmp_path / "b", ExpandOptions(target=30, workers=1, seed=1, split="none", **SMALL))
    a, b = tree_hashes(tmp_path / "a"), tree_hashes(tmp_path / "b")
    originals = [k for k in a if "__00_original" in k]
    assert all(a[k] == b[k] for k in originals)
    assert any(a[k] != b[k] for k in a if "rotate" in k or "translate" in k)


def test_hdf5_holds_the_same_images_as_the_folder(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    opts = {"target": 25, "workers": 1, **SMALL}
    expand(raw, tmp_path / "out", ExpandOptions(**opts))
    expand(raw, tmp_path / "out.h5", ExpandOptions(**opts))
    folder, h5 = open_dataset(tmp_path / "out"), open_dataset(tmp_path / "out.h5")
    assert folder.names == h5.names
    np.testing.assert_array_equal(folder.images, h5.images)
    np.testing.assert_array_equal(folder.labels, h5.labels)
    assert list(folder.splits) == list(h5.splits)
    assert h5.attrs["schema_version"] == 1
    assert h5.attrs["class_names"] == ["ALL", "AML", "normal"]


def test_jpeg_output(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(
        raw,
        tmp_path / "out",
        ExpandOptions(target=20, image_format="jpg", jpeg_quality=80, workers=1, **SMALL),
    )
    names = [r["name"] for r in manifest(tmp_path / "out")]
    assert all(n.endswith(".jpg") for n in names)


def test_refuses_non_empty_out_and_overwrite_replaces(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, text = run_cli("expand", raw, out, "--target", "20", "--size", "32", "-j", "1")
    assert code == 2 and "--overwrite" in text
    assert (out / "keep.txt").read_text() == "mine"
    code, text = run_cli(
        "expand", raw, out, "--target", "20", "--size", "32", "-j", "1", "--overwrite"
    )
    assert code == 0, text
    assert not (out / "keep.txt").exists() and (out / "manifest.csv").is_file()


def test_failure_mid_run_leaves_nothing(make_raw, tmp_path: Path, monkeypatch) -> None:
    raw = make_raw()
    before = tree_hashes(raw)
    calls = {"n": 0}
    real_write = writers.FolderWriter.write

    def failing_write(self, index, name, payload):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError(28, "No space left on device")
        real_write(self, index, name, payload)

    monkeypatch.setattr(writers.FolderWriter, "write", failing_write)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"No space left on device \(errno 28\)"):
        expand(raw, out, ExpandOptions(target=30, workers=1, **SMALL))
    assert not out.exists()
    assert not writers.partial_path(out).exists()
    assert tree_hashes(raw) == before


def test_raw_is_never_modified(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    before = tree_hashes(raw)
    expand(raw, tmp_path / "out", ExpandOptions(target=30, workers=2, pca_count=5, **SMALL))
    assert tree_hashes(raw) == before


# --- bad input --------------------------------------------------------------------------


def test_missing_raw(tmp_path: Path) -> None:
    code, text = run_cli("expand", tmp_path / "nope", tmp_path / "out")
    assert code == 2 and "no such folder" in text
    assert not (tmp_path / "out").exists()


def test_no_class_folders(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_image(raw / "a.png", np.zeros((8, 8, 3), np.uint8))
    code, text = run_cli("expand", raw, tmp_path / "out")
    assert code == 2 and "no class folders" in text and "1 images lie directly" in text


def test_empty_class(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    (raw / "empty").mkdir()
    code, text = run_cli("expand", raw, tmp_path / "out")
    assert code == 2 and "empty" in text
    assert not (tmp_path / "out").exists()


def test_all_bad_files_listed_at_once(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    (raw / "ALL" / "text.jpg").write_text("not an image")
    (raw / "AML" / "empty.png").write_bytes(b"")
    good = (raw / "normal" / "normal_000.jpg").read_bytes()
    (raw / "normal" / "cut.jpg").write_bytes(good[: len(good) // 2])
    code, text = run_cli("expand", raw, tmp_path / "out")
    assert code == 2
    for name in ("text.jpg", "empty.png", "cut.jpg"):
        assert name in text
    assert "3 of" in text and "--skip-invalid" in text
    assert not (tmp_path / "out").exists()
    assert not writers.partial_path(tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--target", "3"], "--target"),
        (["--split", "0.5,0.6"], "--split"),
        (["--rotate-range", "30,10"], "--rotate-range"),
        (["--sigma-range", "abc"], "--sigma-range"),
        (["--transforms", "spin"], "--transforms"),
        (["--size", "2"], "--size"),
        (["--group-regex", "("], "--group-regex"),
        (["--pca-k", "5"], "--pca-k"),
        (["--pca", "--pca-mode", "pixels"], "--pca-mode"),
        (["--pca", "--pca-scale", "unit"], "--pca-scale"),
        (["--pca", "--pca-std", "-1"], "--pca-std"),
        (["--no-augment-test", "--split-by", "image"], "--no-augment-test"),
    ],
)
def test_invalid_options_name_the_option(make_raw, tmp_path: Path, args, option) -> None:
    raw = make_raw()
    code, text = run_cli("expand", raw, tmp_path / "out", *args)
    assert code == 2, text
    assert option in text
    assert not (tmp_path / "out").exists()


def test_dry_run_writes_nothing(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    code, text = run_cli("expand", raw, tmp_path / "out", "--target", "40", "--dry-run")
    assert code == 0, text
    assert "plan: 40 images from 12 sources" in text
    assert not (tmp_path / "out").exists()


def test_cli_summary_and_config_file(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    cfg = tmp_path / "aug.toml"
    cfg.write_text("target = 24\nsize = 40\nrotate-range = [-10, 10]\nworkers = 1\n")
    code, text = run_cli("expand", raw, tmp_path / "out", "--config", cfg, "--seed", "3")
    assert code == 0, text
    assert "wrote 24 images (PNG 40x40)" in text
    recipe = json.loads((tmp_path / "out" / "augtool.json").read_text())["recipe"]
    assert recipe["ranges"]["rotate_range"] == [-10.0, 10.0] and recipe["seed"] == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 3\n")
    code, text = run_cli("expand", raw, tmp_path / "o2", "--config", bad)
    assert code == 2 and "unknown keys" in text


def test_help_has_an_example() -> None:
    code, text = run_cli("expand", "--help")
    assert code == 0 and "Examples:" in text and "augtool expand raw/ out/" in text


def test_pca_options_reach_every_copy(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    out = tmp_path / "out"
    args = ["--target", "24", "--pca-count", "6", "--size", "32", "--workers", "1"]
    code, text = run_cli("expand", raw, out, *args, "--pca-mode", "shift", "--pca-std", "0.4")
    assert code == 0, text
    rows = [r for r in _rows(out) if r["transform"] == "pca"]
    assert len(rows) == 6
    for row in rows:
        params = json.loads(row["params"])
        assert (params["mode"], params["scale"], params["std"]) == ("shift", "relative", 0.4)
    code, text = run_cli("expand", raw, tmp_path / "default", *args)
    assert code == 0, text
    defaults = [json.loads(r["params"]) for r in _rows(tmp_path / "default")]
    assert {(p["mode"], p["std"]) for p in defaults if "mode" in p} == {("pixel", 0.5)}


def _rows(out: Path) -> list[dict[str, str]]:
    from augtool.store.dataset import read_manifest

    return read_manifest(out)


@pytest.mark.parametrize(
    ("out", "typed", "said"),
    [
        ("o", ["--compression", "gzip"], "--compression is ignored: it compresses HDF5 output"),
        ("o.h5", ["--image-format", "jpg"], "--image-format is ignored: HDF5 output holds"),
        ("o.h5", ["--jpeg-quality", "50"], "--jpeg-quality is ignored: it applies to JPEG"),
        ("o", ["--jpeg-quality", "50"], "--jpeg-quality is ignored: it applies to JPEG"),
    ],
)
def test_an_option_this_output_does_not_use_is_said_to_be_ignored(
    make_raw, tmp_path: Path, out: str, typed: list[str], said: str
) -> None:
    raw = make_raw({"A": 2, "B": 2})
    args = ["expand", raw, tmp_path / out, "--target", "8", "--size", "16", "-j", "1"]
    code, text = run_cli(*args, *typed)
    assert code == 0, text
    assert f"warning: {said}" in text, text
    code, text = run_cli(*args[:2], tmp_path / f"plain-{out}", *args[3:])
    assert code == 0 and "ignored" not in text, text
    if out == "o":  # the bytes are those of a run without the option
        written = {k: v for k, v in tree_hashes(tmp_path / out).items() if k != "augtool.json"}
        plain = tree_hashes(tmp_path / "plain-o")
        assert written == {k: v for k, v in plain.items() if k != "augtool.json"}


def test_jpeg_quality_with_jpeg_files_is_used_without_a_warning(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2, "B": 2})
    code, text = run_cli(
        "expand", raw, tmp_path / "o", "--target", "8", "--size", "16", "--image-format", "jpg",
        "--jpeg-quality", "50", "--compression", "none",
    )  # fmt: skip
    assert code == 0 and "warning" not in text, text
