"""``--group-regex`` cannot fail silently: no match is refused, a partial match is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.plan import plan_run
from augtool.engine.scan import scan
from augtool.errors import OptionError
from cli import main
from tests.reporters import Recorder

OPTIONS = {"target": 40, "size": 32, "workers": 1}


def rename_some(raw: Path, count: int) -> None:
    """Give the first ``count`` files of every class a ``patientNN_`` prefix (two per patient)."""
    for cls in sorted(p for p in raw.iterdir() if p.is_dir()):
        for i, f in enumerate(sorted(cls.iterdir())[:count]):
            f.rename(f.with_name(f"patient{i // 2:02d}_{f.name}"))


def test_regex_matching_no_file_is_refused_by_the_library(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    with pytest.raises(OptionError) as caught:
        scan(raw, group_regex=r"patient_\d+")
    message = str(caught.value)
    assert caught.value.option == "group_regex"
    assert r"'patient_\d+' matches none of the 12 source paths" in message
    assert "ALL/ALL_000.jpg" in message  # an example of a file name it did not match
    out = tmp_path / "out"
    with pytest.raises(OptionError):
        expand(raw, out, ExpandOptions(group_regex=r"patient_\d+", **OPTIONS))
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_regex_matching_no_file_exits_2_before_writing(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    for extra in ([], ["--dry-run"], ["--format", "hdf5"]):
        out = tmp_path / "out"
        result = CliRunner().invoke(
            main, ["expand", str(raw), str(out), "--group-regex", r"patient_\d+", *extra]
        )
        assert result.exit_code == 2, result.output
        assert r"--group-regex: 'patient_\d+' matches none of the 12 source paths" in result.output
        assert "ALL/ALL_000.jpg" in result.output
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_regex_whose_matches_were_all_skipped_is_refused(make_raw) -> None:
    raw = make_raw()
    (raw / "ALL" / "patient01_broken.jpg").write_bytes(b"not an image")
    with pytest.raises(OptionError, match="matches none of the 12 source paths"):
        scan(raw, group_regex=r"patient\d+", skip_invalid=True)


def test_partial_match_is_reported_by_the_library(make_raw, tmp_path: Path) -> None:
    raw = make_raw()  # ALL 4, AML 3, normal 5
    rename_some(raw, 2)  # 6 of 12 sources match
    scanned = scan(raw, group_regex=r"patient\d+")
    assert len(scanned.ungrouped) == 6
    assert all("patient" not in p for p in scanned.ungrouped)
    matched = [s for s in scanned.sources if s.path not in scanned.ungrouped]
    assert {s.group for s in matched} == {"patient00"}
    reporter = Recorder()
    plan_run(scanned, ExpandOptions(group_regex=r"patient\d+", **OPTIONS), reporter)
    notes = [w for w in reporter.warnings if "fell back" in w]
    assert len(notes) == 1
    assert notes[0].startswith(r"group_regex 'patient\d+' matched")  # the parameter, no flag
    assert "matched 6 of 12 sources; the other 6 fell back to their own group" in notes[0]
    assert f"(e.g. {scanned.ungrouped[0]})" in notes[0]
    reporter = Recorder()
    expand(raw, tmp_path / "out", ExpandOptions(group_regex=r"patient\d+", **OPTIONS), reporter)
    assert sum("fell back to their own group" in w for w in reporter.warnings) == 1


def test_partial_match_warns_on_the_command_line(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    rename_some(raw, 1)  # 3 of 12
    args = ["expand", str(raw), str(tmp_path / "out"), "--group-regex", r"patient\d+"]
    small = ["--target", "24", "--size", "16", "-j", "1"]  # the warning needs no big run
    for extra in (["--dry-run"], []):
        result = CliRunner().invoke(main, [*args, *small, *extra])
        assert result.exit_code == 0, result.output
        assert r"warning: --group-regex 'patient\d+' matched 3 of 12 sources" in result.output
        assert "the other 9 fell back to their own group (e.g. ALL/ALL_001.jpg)" in result.output


def test_full_match_and_no_regex_say_nothing(make_raw) -> None:
    raw = make_raw()
    rename_some(raw, 10)
    for regex in (r"patient\d+", None):
        scanned = scan(raw, group_regex=regex)
        assert scanned.ungrouped == []
        reporter = Recorder()
        plan_run(scanned, ExpandOptions(group_regex=regex, **OPTIONS), reporter)
        assert not [w for w in reporter.warnings if "group" in w]
