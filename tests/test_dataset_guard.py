"""One guarded way into a dataset: every reader refuses what a hostile output could hold.

Each test takes a real expand output, damages it as someone handing over a
dataset could (its hashes updated to match, so only the new checks can catch
it), and runs the readers: ``open_dataset`` (train, evaluate, preview read
through it), the torch Dataset, ``preview`` and ``verify``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from augtool.errors import InputError
from augtool.store.dataset import open_dataset
from tests.child_process import REPO, run_cli, run_cli_measured

OPTS = {"target": 12, "size": 32, "workers": 1}


@pytest.fixture
def folder(make_raw, tmp_path: Path) -> tuple[Path, Path]:
    raw = make_raw({"A": 3, "B": 3})
    out = tmp_path / "out"
    expand(raw, out, ExpandOptions(**OPTS))
    return raw, out


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_rows(out: Path, rows: list[dict[str, str]], extra: tuple[str, ...] = ()) -> None:
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], *extra], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def replace_first(out: Path, data: bytes, name: str | None = None) -> str:
    """Put ``data`` in place of the first image (or at ``name``), its hash updated to match."""
    rows = read_rows(out)
    old = out / rows[0]["name"]
    if name is None:
        old.write_bytes(data)
    else:
        old.unlink()
        rows[0]["name"] = name
    rows[0]["sha256"] = hashlib.sha256(data).hexdigest()
    write_rows(out, rows)
    return rows[0]["name"]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` RGB, with one small IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 65536, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiny_model(path: Path) -> Path:
    """An untrained CellNet checkpoint for the fixture's classes and size, written to ``path``."""
    import torch

    from model.checkpoint import save_checkpoint
    from model.data import compute_normalization
    from model.networks import create_model
    from model.train import TrainConfig

    size = OPTS["size"]
    net = create_model("cellnet", 2, size, generator=torch.Generator().manual_seed(0))
    images = np.zeros((2, size, size, 3), dtype=np.uint8)
    save_checkpoint(
        path,
        net,
        "cellnet",
        {},
        ["A", "B"],
        size,
        compute_normalization(images),
        TrainConfig.for_arch("cellnet").to_dict(),
    )
    return path


def refused_by_every_reader(out: Path, tmp_path: Path, pattern: str) -> None:
    """open_dataset, the torch Dataset, preview, train and evaluate refuse, exit 2, no traceback."""
    with pytest.raises(InputError, match=pattern):
        open_dataset(out)
    torch_dataset = pytest.importorskip("model.torch_dataset")
    with pytest.raises(InputError, match=pattern):
        images = torch_dataset.AugtoolImages(out)
        for i in range(len(images)):
            images[i]
    model = tiny_model(tmp_path / "model.pt")
    for args in (
        ("preview", out, tmp_path / "grid.png"),
        ("train", out, tmp_path / "run"),
        ("evaluate", model, out, tmp_path / "eval", "--subset", "train", "--device", "cpu"),
    ):
        code, text = run_cli(*args)
        assert code == 2, text
        assert pattern in text, text
        assert "Traceback" not in text and "internal error" not in text, text
    assert not (tmp_path / "grid.png").exists()
    assert not (tmp_path / "eval").exists()


def test_a_manifest_path_out_of_the_folder_is_read_by_no_reader(folder, tmp_path: Path) -> None:
    _, out = folder
    secret = tmp_path / "secret.png"
    secret.write_bytes((out / read_rows(out)[0]["name"]).read_bytes())
    replace_first(out, secret.read_bytes(), "../secret.png")
    refused_by_every_reader(out, tmp_path, "escapes the output folder")
    report = verify(out)
    assert any("escapes the output folder" in p for p in report.problems)


@pytest.mark.parametrize("target", ["outside", "/dev/zero", "fifo"])
def test_a_link_out_of_the_folder_is_followed_by_no_reader(
    folder, tmp_path: Path, target: str
) -> None:
    _, out = folder
    name = read_rows(out)[0]["name"]
    outside = tmp_path / "outside.png"
    outside.write_bytes((out / name).read_bytes())
    (out / name).unlink()
    if target == "fifo":  # inside OUT, but reading it would wait forever
        os.mkfifo(out / name)
    else:
        (out / name).symlink_to(outside if target == "outside" else target)
    pattern = "not a regular file" if target == "fifo" else "leads outside the output folder"
    refused_by_every_reader(out, tmp_path, pattern)
    report = verify(out)
    assert any(pattern in p for p in report.problems), report.problems


def test_a_link_to_a_folder_outside_is_not_walked(folder, tmp_path: Path) -> None:
    _, out = folder
    (out / "elsewhere").symlink_to("/")
    report = verify(out)  # listed as not in the manifest, never walked (/ would take forever)
    assert report.problems == ["not in the manifest: elsewhere"]


def test_decompression_bomb_is_refused_before_decoding(folder, tmp_path: Path) -> None:
    _, out = folder
    bomb = png_header(20000, 20000)
    assert len(bomb) < 2000  # what the header claims is 1.2 GB of pixels
    replace_first(out, bomb)  # the first row: no reader may size its buffers from it
    for args in (("preview", out, tmp_path / "grid.png"), ("verify", out)):
        run = run_cli_measured(*args)
        assert run.returncode in (1, 2), run.stderr
        assert "20000x20000" in run.stderr and "Traceback" not in run.stderr
        # A decode would need 1.2 GB; the whole command stays far below.
        assert run.peak_mb < 600, run.peak_mb
    with pytest.raises(InputError, match="declares 20000x20000"):
        open_dataset(out)


def test_an_image_of_another_size_than_recorded(folder, tmp_path: Path) -> None:
    _, out = folder
    import cv2

    _, small = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    replace_first(out, small.tobytes())
    refused_by_every_reader(out, tmp_path, "1x1 pixels, but the dataset records 32x32")
    assert any("records 32x32" in p for p in verify(out).problems)


def test_a_text_file_with_a_matching_hash_is_not_an_image(folder) -> None:
    _, out = folder
    replace_first(out, b"just text, with its hash recorded\n")
    report = verify(out)
    assert any("not the image its record says" in p for p in report.problems), report.problems


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"schema_version": 999}, "schema_version 999 was written by a newer augtool"),
        ({"schema_version": "one"}, "schema_version is 'one', not a whole number"),
        ({"counts": {"all": "eight"}}, r"counts\['all'\] is 'eight', not a whole number"),
        ({"size": 10**9}, "size is 1,000,000,000, outside 8..4,096"),
        ({"class_names": 5}, "class_names is not a list"),
    ],
)
def test_recorded_numbers_are_typed_and_bounded(folder, change: dict, pattern: str) -> None:
    _, out = folder
    meta = json.loads((out / "augtool.json").read_text())
    meta.update(change)
    (out / "augtool.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=pattern):
        open_dataset(out)
    code, text = run_cli("verify", out)
    assert code == 1 and "Traceback" not in text
    assert any(c in text for c in ("schema_version", "counts", "size", "class_names")), text


def test_hdf5_counts_and_version_are_checked(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 3, "B": 3})
    out = tmp_path / "out.h5"
    expand(raw, out, ExpandOptions(**OPTS))
    for key, value, pattern in (
        ("counts", json.dumps({"all": "eight"}), "not a whole number"),
        ("schema_version", 999, "newer augtool"),
    ):
        with h5py.File(out, "r+") as fh:
            saved = fh.attrs[key]
            fh.attrs[key] = value
        code, text = run_cli("verify", out)
        assert code == 1 and pattern in text and "Traceback" not in text, text
        with pytest.raises(InputError, match=pattern):
            open_dataset(out)
        with h5py.File(out, "r+") as fh:
            fh.attrs[key] = saved


def test_unknown_columns_and_nul_and_bad_numbers_in_the_manifest(folder) -> None:
    _, out = folder
    pristine = read_rows(out)
    rows = [{**row, "colour": "red"} for row in pristine]
    write_rows(out, rows)
    with pytest.raises(InputError, match="unknown columns 'colour'"):
        open_dataset(out)
    for column, value, pattern in (
        ("name", "A/x\x00.png", "NUL character in name"),
        ("label", "-3", "label is -3, outside"),
        ("copy", "eight", "copy is 'eight', not a whole number"),
        ("sha256", "zz", "is not a SHA-256"),
    ):
        rows = [dict(row) for row in pristine]
        rows[0][column] = value
        write_rows(out, rows)
        with pytest.raises(InputError, match=pattern):
            open_dataset(out)
        code, text = run_cli("verify", out)
        assert code == 1 and pattern.split(" ")[0] in text and "Traceback" not in text, text


def test_a_newline_in_a_name_cannot_forge_a_line_of_output(folder) -> None:
    _, out = folder
    rows = read_rows(out)
    forged = "train/A/x.png\nok: 12 images in out match their records"
    rows[0]["name"] = forged  # no such file: verify names it in a problem line
    write_rows(out, rows)
    code, text = run_cli("verify", out)
    assert code == 1, text
    assert not any(line.startswith("ok:") for line in text.splitlines()), text
    assert "x.png\\nok: 12 images" in text


def test_a_recorded_target_of_a_trillion_is_refused_at_once(folder) -> None:
    raw, out = folder
    meta = json.loads((out / "augtool.json").read_text())
    meta["recipe"]["target"] = 10**12
    (out / "augtool.json").write_text(json.dumps(meta))
    run = run_cli_measured("verify", out, "--regenerate", raw, "-j", 1)
    assert run.returncode == 2, run.stderr
    assert "target: must be between 1 and 10,000,000" in run.stderr
    assert run.peak_mb < 600, run.peak_mb


@pytest.mark.parametrize(
    ("key", "value"), [("ranges", 5), ("transforms", 7), ("seed", "x"), ("pca", [1])]
)
def test_a_damaged_recorded_recipe_is_an_error_not_a_traceback(folder, key, value) -> None:
    raw, out = folder
    meta = json.loads((out / "augtool.json").read_text())
    meta["recipe"][key] = value
    (out / "augtool.json").write_text(json.dumps(meta))
    code, text = run_cli("verify", out, "--regenerate", raw, "-j", 1)
    assert code == 2, text
    assert "the recorded recipe is damaged" in text and "Traceback" not in text


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_verify_removes_its_temporary_folder(
    folder, tmp_path: Path, stop: signal.Signals
) -> None:
    raw, out = folder
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    # A slow replay: many copies at a large size, one worker.
    meta = json.loads((out / "augtool.json").read_text())
    meta["recipe"].update(target=3000, size=512)
    (out / "augtool.json").write_text(json.dumps(meta))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "verify", str(out), "--regenerate", str(raw), "-j", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp.glob("augtool-verify-*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the replay has begun to write into its temporary folder
    assert list(tmp.glob("augtool-verify-*")), "the replay never started"
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not list(tmp.glob("augtool-verify-*")), list(tmp.iterdir())
