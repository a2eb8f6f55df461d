"""The command line never shows a traceback, checks recipes fully, and validates the real output.

* an unexpected exception is one line, ``internal error: ...; please report it``,
  exit 70, with the traceback in a file (``augtool --debug`` prints it);
* a recipe's parameters are checked against their domains when it is read;
* an option a recipe replaces is refused when typed, whatever its value;
* what OUT's format cannot hold is refused before anything is rendered;
* ``--letterbox --pca`` jitters the picture, never its black bars.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from augtool.store.writers import Hdf5Writer
from cli import main
from tests.child_process import run_cli
from tests.conftest import tree_hashes


def _boom(*args: object, **kwargs: object) -> None:
    raise ZeroDivisionError("boom\nok: a forged line")


def test_an_unexpected_exception_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import augtool.engine.verify

    monkeypatch.setattr(augtool.engine.verify, "verify", _boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert result.exit_code == 70, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    found = re.fullmatch(
        r"Error: internal error: ZeroDivisionError: boom\\nok: a forged line; please report "
        r"it \(traceback in (\S+); augtool --debug shows it\)",
        lines[0],
    )
    assert found, lines[0]
    saved = Path(found.group(1)).read_text()
    assert saved.startswith("Traceback") and "_boom" in saved


def test_debug_prints_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import augtool.engine.verify

    monkeypatch.setattr(augtool.engine.verify, "verify", _boom)
    result = CliRunner().invoke(main, ["--debug", "verify", str(tmp_path)])
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.output and "_boom" in result.output


def test_library_errors_keep_their_codes(tmp_path: Path) -> None:
    code, out = run_cli("verify", tmp_path / "missing")
    assert code == 2 and "no such file or folder" in out and "internal error" not in out


@pytest.mark.parametrize(
    ("step", "key"),
    [
        ("name = 'noise'\nstd_range = [-5.0, -1.0]", "std_range"),
        ("name = 'cutout'\nside_range = [0.5, 2.0]", "side_range"),
        ("name = 'zoom'\nkeep_range = [0.0, 0.5]", "keep_range"),
        ("name = 'rot90'\nturns = [1, 7]", "turns"),
        ("name = 'blur_rgb'\nsigma_range = [4.0, 1e9]", "sigma_range"),
    ],
)
def test_every_parameter_domain_is_checked_when_the_recipe_is_read(
    make_raw, tmp_path: Path, step: str, key: str
) -> None:
    raw = make_raw({"A": 2})
    (tmp_path / "r.toml").write_text(f"[[transform]]\n{step}\n")
    code, out = run_cli("expand", raw, tmp_path / "out", "--recipe", tmp_path / "r.toml")
    assert code == 2, out
    assert f"line 3, transform[0].{key}:" in out and "outside" in out, out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "typed", [["--rotate-range", "-45,45"], ["--transforms", "all"], ["--sigma-range", "1,2"]]
)
def test_an_option_a_recipe_replaces_is_refused_when_typed(
    make_raw, tmp_path: Path, typed: list[str]
) -> None:
    raw = make_raw({"A": 2})
    code, out = run_cli("expand", raw, tmp_path / "out", "--recipe", "colour", *typed)
    assert code == 2, out
    assert f"drop {typed[0]}" in out, out


def test_the_resolved_output_format_is_validated_first(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2})
    code, out = run_cli("expand", raw, tmp_path / "out.h5", "--size", "64x32")
    assert code == 2, out
    assert "HDF5 output is square" in out and "Traceback" not in out
    ann = tmp_path / "ann"
    ann.mkdir()
    code, out = run_cli(
        "expand", raw / "A", tmp_path / "det.h5", "--annotations", ann,
        "--annotation-format", "voc",
    )  # fmt: skip
    assert code == 2, out
    assert "detection output (--annotations) is a folder" in out
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("raw", "OUT: {raw} is also RAW; choose another OUT"),
        (".", "OUT: {out} holds RAW ({raw}), which replacing {out} would delete"),
        ("raw/A/out.h5", "OUT: {out} is inside RAW ({raw}), where it would be taken for"),
    ],
)
def test_an_output_that_overlaps_raw_is_refused_even_with_overwrite(
    make_raw, tmp_path: Path, where: str, said: str
) -> None:
    raw = make_raw({"A": 2, "B": 2})
    before = tree_hashes(tmp_path)
    out = tmp_path / where
    code, text = run_cli("expand", raw, out, "--target", "8", "--size", "16", "--overwrite")
    assert code == 2, text
    assert said.format(raw=raw, out=out) in text, text
    assert "Traceback" not in text
    assert tree_hashes(tmp_path) == before
    assert sorted(p.name for p in raw.iterdir()) == ["A", "B"]


def test_an_output_inside_an_input_read_by_name_only_is_allowed(tmp_path: Path) -> None:
    from augtool.errors import OptionError
    from augtool.store.publish import check_apart

    smears = tmp_path / "smears"
    smears.mkdir()
    check_apart(smears / "cells", {"smears": smears})  # images are read by annotation names
    with pytest.raises(OptionError, match="is inside smears"):
        check_apart(smears / "cells", {"smears": smears}, scanned=("smears",))
    with pytest.raises(OptionError, match="holds smears"):
        check_apart(tmp_path, {"smears": smears})


def test_cells_and_train_refuse_an_output_that_overlaps_their_input(
    make_raw, tmp_path: Path
) -> None:
    raw = make_raw({"A": 2, "B": 2})
    code, text = run_cli(
        "cells", raw, tmp_path / "ann", raw, "--annotation-format", "voc", "--overwrite"
    )
    assert code == 2 and "OUT: " + str(raw) + " is also SMEARS" in text, text
    ann = tmp_path / "ann"  # VOC and YOLO folders are read with all their subfolders
    code, text = run_cli("cells", raw, ann, ann / "cells", "--annotation-format", "voc")
    assert code == 2 and f"OUT: {ann / 'cells'} is inside ANNOTATIONS" in text, text
    data = tmp_path / "data"
    assert run_cli("expand", raw, data, "--target", "8", "--size", "16")[0] == 0
    before = tree_hashes(data)
    for out, said in (
        (data, "is also DATA"),
        (tmp_path, "holds DATA"),
        (data / "run", "is inside DATA"),
    ):
        code, text = run_cli("train", data, out, "--epochs", "1", "--overwrite")
        assert code == 2 and f"OUT: {out} {said}" in text, text
    assert tree_hashes(data) == before


def test_the_hdf5_writer_refuses_an_index_it_does_not_own(tmp_path: Path) -> None:
    with Hdf5Writer(tmp_path / "o.h5", "f", n=2, size=8) as writer:
        for index in (-1, 2):
            with pytest.raises(IndexError, match="no image row"):
                writer.write(index, "x", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []  # left unfinished: nothing stays


def test_letterbox_pca_jitters_the_picture_not_the_bars(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2}, size=(96, 48))
    out = tmp_path / "out"
    code, text = run_cli(
        "expand", raw, out, "--letterbox", "--pca", "--pca-count", 2, "--target", 2,
        "--size", 48, "--split", "none", "-q",
    )  # fmt: skip
    assert code == 0, text
    pca = sorted(out.rglob("*_pca.png"))
    assert len(pca) == 2
    for path in pca:
        image = cv2.imread(str(path))
        original = cv2.imread(str(path).replace(path.name.split("__")[1], "00_original.png"))
        # A 2:1 source in a square: bars of 12 rows above and below stay exactly black.
        assert not image[:11].any() and not image[-11:].any()
        assert not np.array_equal(image[13:-13], original[13:-13])


def test_bad_raw_is_reported_in_one_round(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"WBC": 2, "RBC": 2})
    (raw / "WBC" / "scan.jpg").write_bytes(b"%PDF-1.4 not an image")
    (raw / "docs").mkdir()
    (raw / "docs" / "manual.pdf").write_bytes(b"%PDF-1.4")
    (raw / "docs" / "notes.png").write_bytes(b"%PDF-1.4")
    code, out = run_cli("expand", raw, tmp_path / "out", "--dry-run")
    assert code == 2, out
    assert "WBC/scan.jpg" in out and "docs/notes.png" in out
    assert "class folder(s) with no usable images: docs" in out  # the same round
    code, out = run_cli("expand", raw, tmp_path / "out", "--dry-run", "--skip-invalid")
    assert code == 2 and "class folder(s) with no usable images: docs" in out, out


def test_a_run_without_resume_says_what_it_does_with_a_partial(make_raw, tmp_path: Path) -> None:
    from augtool.engine.expand import expand
    from augtool.engine.options import ExpandOptions
    from augtool.errors import Interrupted
    from augtool.store import writers
    from tests.test_expand_signals import InterruptAt

    raw = make_raw({"A": 3, "B": 3})
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        expand(raw, out, ExpandOptions(target=30, size=32, workers=1), InterruptAt(3))
    held = writers.Journal(writers.partial_path(out) / writers.JOURNAL_NAME).count()
    assert held > 0
    code, text = run_cli("expand", raw, out, "--target", 30, "--size", 32, "-j", 1, "-q")
    assert code == 0, text
    assert f"holding {held} finished image(s); this run starts over and deletes it" in text
    assert "run the same command with --resume" in text


def test_resume_of_a_finished_output_says_it_is_complete(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 2, "B": 2})
    out = tmp_path / "out"
    args = ("expand", raw, out, "--target", 8, "--size", 16, "-j", 1, "-q")
    assert run_cli(*args)[0] == 0
    before = tree_hashes(out)
    code, text = run_cli(*args, "--resume")
    assert code == 2, text
    assert f"{out} is complete: nothing to resume; pass --overwrite (without --resume)" in text
    assert tree_hashes(out) == before
    code, text = run_cli(*args)  # without --resume: the refusal as before
    assert code == 2 and "exists and is not empty; pass --overwrite to replace it" in text


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``augtool ... | head -1``: the closed pipe is no internal error and no traceback."""
    import subprocess
    import sys

    from augtool.commands.exit_codes import BROKEN_PIPE

    command = [sys.executable, "-m", "cli", "synth", str(tmp_path / "demo"), "--size", "64"]
    command += ["--per-class", "ALL=1,AML=1,normal=1"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    child.stdout.close()  # the reader is gone before the first line is written
    _, err = child.communicate(timeout=120)
    assert child.returncode == BROKEN_PIPE == 141
    assert b"internal error" not in err and b"Traceback" not in err, err
