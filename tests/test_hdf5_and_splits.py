"""HDF5 layout and the split options of ``expand``, end to end."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import h5py
import numpy as np
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.store.dataset import open_dataset
from cli import main


def test_hdf5_layout(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    out = tmp_path / "d.h5"
    expand(raw, out, ExpandOptions(target=30, size=40, workers=1, split="0.7,0.15,0.15", seed=5))
    with h5py.File(out, "r") as fh:
        assert fh["images"].shape == (30, 40, 40, 3) and fh["images"].dtype == np.uint8
        # Random access reads one image's bytes, no more: image i is exactly one stored chunk.
        images = fh["images"]
        assert images.compression is None and images.id.get_num_chunks() == 30
        for i in (0, 17, 29):
            _, raw_chunk = images.id.read_direct_chunk((i, 0, 0, 0))
            np.testing.assert_array_equal(np.frombuffer(raw_chunk, np.uint8), images[i].ravel())
        assert [s.decode() if isinstance(s, bytes) else s for s in fh["split"].attrs["names"]] == [
            "train",
            "val",
            "test",
        ]
        assert fh["sources/path"].shape == (12,)
        assert fh.attrs["schema_version"] == 1 and fh.attrs["seed"] == 5 and fh.attrs["size"] == 40
        assert json.loads(fh.attrs["recipe"])["split"] == "0.7,0.15,0.15"
        for key in ("tool_version", "command_line", "created_utc"):
            assert key in fh.attrs
        params = json.loads(fh["params"][3])
        assert isinstance(params, dict)
        assert "partial" not in fh.attrs


def test_hdf5_compression(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(raw, tmp_path / "a.h5", ExpandOptions(target=20, size=40, workers=1, compression="lzf"))
    with h5py.File(tmp_path / "a.h5", "r") as fh:
        assert fh["images"].compression == "lzf"
    plain = open_dataset(tmp_path / "a.h5")
    expand(raw, tmp_path / "b.h5", ExpandOptions(target=20, size=40, workers=1))
    np.testing.assert_array_equal(plain.images, open_dataset(tmp_path / "b.h5").images)


def test_split_by_source_keeps_groups_together(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"a": 12, "b": 12}, size=(40, 30))
    # Rename so that pairs of files share a patient id.
    for cls in ("a", "b"):
        for i, f in enumerate(sorted((raw / cls).iterdir())):
            f.rename(f.with_name(f"patient{i // 2:02d}_{cls}{i}.jpg"))
    out = tmp_path / "out"
    expand(raw, out, ExpandOptions(target=100, size=32, workers=1, group_regex=r"patient\d+"))
    data = open_dataset(out)
    sides = defaultdict(set)
    for g, s in zip(data.groups, data.splits, strict=True):
        sides[g].add(s)
    assert all(len(v) == 1 for v in sides.values())
    assert {s for v in sides.values() for s in v} == {"train", "test"}


def test_split_by_image_warns_about_the_leak(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    result = CliRunner().invoke(
        main,
        [
            "expand",
            str(raw),
            str(tmp_path / "o"),
            "--split-by",
            "image",
            "--target",
            "40",
            "--size",
            "32",
            "-j",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "leaks" in result.output and "near-duplicates" in result.output
    data = open_dataset(tmp_path / "o")
    by_source = defaultdict(set)
    for name, split in zip(data.names, data.splits, strict=True):
        by_source[name.split("__")[0].split("/")[-1]].add(split)
    assert any(len(v) > 1 for v in by_source.values())


def test_no_augment_test_keeps_only_originals_outside_train(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(
        raw,
        tmp_path / "o",
        ExpandOptions(target=60, size=32, workers=1, no_augment_test=True, pca_count=0),
    )
    data = open_dataset(tmp_path / "o")
    assert len(data) == 60
    for t, s in zip(data.transforms, data.splits, strict=True):
        if s != "train":
            assert t == "original"
    assert sum(1 for s in data.splits if s == "train") > 40


def test_duplicates_are_reported_and_kept_in_one_split(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"a": 10, "b": 10}, size=(40, 30))
    img = (raw / "a" / "a_000.jpg").read_bytes()
    for i in range(1, 6):
        (raw / "a" / f"copy{i}.jpg").write_bytes(img)
    result = CliRunner().invoke(
        main, ["expand", str(raw), str(tmp_path / "o"), "--target", "60", "--size", "32", "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "identical files" in result.output and "copy3.jpg" in result.output
    data = open_dataset(tmp_path / "o")
    splits = {
        s for n, s in zip(data.names, data.splits, strict=True) if "a_000" in n or "copy" in n
    }
    assert len(splits) == 1


def test_summary_prints_counts_per_split_and_class(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    result = CliRunner().invoke(
        main,
        [
            "expand",
            str(raw),
            str(tmp_path / "o.h5"),
            "--target",
            "48",
            "--size",
            "32",
            "--split",
            "0.5,0.25,0.25",
            "-j",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("wrote 48 images (HDF5 32x32)")
    assert [ln.split()[0] for ln in lines[2:]] == ["train", "val", "test", "total"]
    assert lines[-1].split()[-1] == "48"


def test_open_dataset_split_subset(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    expand(raw, tmp_path / "o.h5", ExpandOptions(target=40, size=32, workers=1))
    full = open_dataset(tmp_path / "o.h5")
    test = open_dataset(tmp_path / "o.h5", split="test")
    mask = full.splits == "test"
    np.testing.assert_array_equal(full.images[mask], test.images)
    np.testing.assert_array_equal(full.subset("test").labels, test.labels)


def test_grey_rgba_and_16_bit_sources_are_converted(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "a").mkdir(parents=True)
    (raw / "b").mkdir()
    cv2.imwrite(str(raw / "a" / "g8.png"), np.full((30, 40), 77, np.uint8))
    cv2.imwrite(str(raw / "a" / "rgb.png"), np.full((30, 40, 3), 5, np.uint8))
    cv2.imwrite(str(raw / "b" / "t.png"), np.zeros((30, 40, 4), np.uint8))  # transparent
    cv2.imwrite(str(raw / "b" / "w16.png"), np.full((30, 40, 3), 65535, np.uint16))
    expand(raw, tmp_path / "o", ExpandOptions(target=4, size=16, workers=1, split="none"))
    data = open_dataset(tmp_path / "o")
    by_name = {
        n.split("/")[-1].split("__")[0]: img for n, img in zip(data.names, data.images, strict=True)
    }
    assert (by_name["g8"] == 77).all()
    assert (by_name["t"] == 255).all()  # composited over white
    assert (by_name["w16"] == 255).all()
