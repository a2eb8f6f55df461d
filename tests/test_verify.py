"""``augtool verify``: catches every kind of damage, passes untouched outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from cli import main
from tests.child_process import run_cli

OPTS = {"target": 30, "size": 40, "workers": 1}


@pytest.fixture
def folder(make_raw, tmp_path: Path) -> tuple[Path, Path]:
    raw = make_raw()
    out = tmp_path / "out"
    expand(raw, out, ExpandOptions(**OPTS))
    return raw, out


@pytest.fixture
def h5(make_raw, tmp_path: Path) -> tuple[Path, Path]:
    raw = make_raw()
    out = tmp_path / "out.h5"
    expand(raw, out, ExpandOptions(**OPTS))
    return raw, out


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(out: Path, data: list[dict[str, str]]) -> None:
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)


def test_untouched_folder_passes_and_regenerates(folder) -> None:
    raw, out = folder
    report = verify(out, regenerate_raw=raw)
    assert report.ok, report.problems
    assert report.checked == 30 and report.regenerated


def test_untouched_hdf5_passes_and_regenerates(h5) -> None:
    raw, out = h5
    report = verify(out, regenerate_raw=raw)
    assert report.ok, report.problems
    assert report.checked == 30


def test_flipped_byte_in_a_file(folder) -> None:
    _, out = folder
    target = out / rows(out)[3]["name"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify(out)
    assert report.problems == [f"content differs from the manifest: {rows(out)[3]['name']}"]


def test_flipped_byte_in_hdf5(h5) -> None:
    _, out = h5
    with h5py.File(out, "r+") as fh:
        fh["images"][5, 10, 10, 0] ^= 1
    report = verify(out)
    assert len(report.problems) == 1 and "image 5" in report.problems[0]


def test_missing_and_extra_files(folder) -> None:
    _, out = folder
    gone = rows(out)[0]["name"]
    (out / gone).unlink()
    (out / "train" / "stray.png").write_bytes(b"x")
    report = verify(out)
    assert f"missing: {gone}" in report.problems
    assert "not in the manifest: train/stray.png" in report.problems


def test_crossed_group(folder) -> None:
    _, out = folder
    data = rows(out)
    train = next(r for r in data if r["split"] == "train")
    test = next(r for r in data if r["split"] == "test")
    for r in data:
        if r["source"] == test["source"]:
            r["group"] = train["group"]
    write_rows(out, data)
    report = verify(out)
    assert any(p.startswith(f"group {train['group']} appears in splits") for p in report.problems)


def test_manifest_path_escaping_out_is_refused(folder) -> None:
    _, out = folder
    data = rows(out)
    data[0]["name"] = "../../etc/passwd"
    write_rows(out, data)
    report = verify(out)
    assert "manifest path escapes the output folder: '../../etc/passwd'" in report.problems


def test_truncated_hdf5_is_reported_not_raised(h5) -> None:
    _, out = h5
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 3])
    report = verify(out)
    assert not report.ok
    code = CliRunner().invoke(main, ["verify", str(out)])
    assert code.exit_code == 1 and "Traceback" not in code.output


def test_regenerate_detects_a_changed_source(folder) -> None:
    raw, out = folder
    src = sorted((raw / "ALL").glob("*.jpg"))[0]
    img = np.frombuffer(src.read_bytes(), np.uint8)
    src.write_bytes(img.tobytes() + b"\0")  # same pixels, different bytes and hash
    report = verify(out, regenerate_raw=raw)
    assert any(p.startswith("regenerate:") for p in report.problems)


@pytest.mark.parametrize("layout", ["folder", "h5"])
def test_regenerate_names_the_changed_missing_and_new_sources_first(
    request: pytest.FixtureRequest, layout: str
) -> None:
    raw, out = request.getfixturevalue(layout)
    changed, gone = sorted((raw / "ALL").glob("*.jpg"))[:2]
    changed.write_bytes(changed.read_bytes() + b"\0")  # same pixels, other bytes and hash
    gone.rename(raw / "AML" / "new.jpg")
    report = verify(out, regenerate_raw=raw)
    assert report.problems[:3] == [
        f"regenerate: source ALL/{gone.name} is missing from RAW",
        "regenerate: source AML/new.jpg is new in RAW",
        f"regenerate: source ALL/{changed.name} has changed in RAW",
    ]
    assert all(p.startswith("regenerate: ") for p in report.problems)
    after = report.problems[3:]  # then every output that differs, by name
    for kind, stem in (
        ("the recipe no longer produces ", gone.stem),
        ("the recipe now also produces ", "new"),
        ("different bytes for ", changed.stem),
    ):
        assert any(p.startswith("regenerate: " + kind) and stem in p for p in after), kind


def test_cli_exit_codes(folder) -> None:
    _, out = folder
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 0 and "ok: 30 images" in result.output
    (out / rows(out)[1]["name"]).unlink()
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 1 and "missing:" in result.output
    result = CliRunner().invoke(main, ["verify", str(out.parent / "nope")])
    assert result.exit_code == 2


@pytest.mark.parametrize("mode", ["pixel", "shift"])
def test_pca_copies_regenerate_byte_for_byte(make_raw, tmp_path: Path, mode: str) -> None:
    from augtool.pipeline.builtins import PcaSettings
    from augtool.store.dataset import read_manifest, read_recipe

    raw = make_raw()
    out = tmp_path / "out"
    pca = PcaSettings(std=0.5, k=3, mode=mode, scale="relative")
    expand(raw, out, ExpandOptions(**OPTS, pca_count=12, pca=pca))
    assert read_recipe(out)["recipe"]["pca"] == {
        "std": 0.5,
        "k": 3,
        "mode": mode,
        "scale": "relative",
    }
    copies = [r for r in read_manifest(out) if r["transform"] == "pca"]
    assert len(copies) == 12
    assert all(json.loads(r["params"])["mode"] == mode for r in copies)
    report = verify(out, regenerate_raw=raw)
    assert report.ok, report.problems
    assert report.regenerated


def test_recipes_from_before_pca_modes_replay_the_shift() -> None:
    old = {"pca_count": 4, "pca": {"std": 0.1, "k": 3, "scale": "unit"}}
    options = ExpandOptions.from_provenance(old)
    assert options.pca.mode == "shift" and options.pca.scale == "unit"
    new = {"pca_count": 4, "pca": {"std": 0.5, "k": 3, "mode": "pixel", "scale": "relative"}}
    assert ExpandOptions.from_provenance(new).pca.mode == "pixel"


def test_regenerate_says_where_relative_annotations_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--annotations`` is recorded as typed: from another folder, say so instead of 'no file'."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("synth", "sm", "--per-class", "ALL=2,AML=2", "--size", "96x72",
                   "--masks", "m", "-q")[0] == 0  # fmt: skip
    code, text = run_cli(
        "expand", "sm", "seg", "--segmentation", "--annotations", "m/annotations.json",
        "--annotation-format", "coco", "--target", 8, "--size", 48, "-q",
    )  # fmt: skip
    assert code == 0, text
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, text = run_cli("verify", tmp_path / "seg", "--regenerate", tmp_path / "sm")
    assert code == 2, text
    assert (
        "m/annotations.json: the annotations this output was made from are not there; it was "
        "recorded as typed, relative to the folder expand ran in: run verify from there"
    ) in text
    monkeypatch.chdir(tmp_path)
    code, text = run_cli("verify", "seg", "--regenerate", "sm")
    assert code == 0, text
