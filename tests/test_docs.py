"""Quoted outputs and pictures in docs/ are what the code prints and draws today.

Every block marked ``<!-- output ... -->`` in docs/*.md (see docs/regenerate.py)
that is not marked ``slow`` is re-run here, in a fresh folder; its output must
equal the quote once timings are normalised, and every picture it keeps must
have the committed picture's pixels. Blocks on the real data are skipped when
``../shared/data`` is absent. ``python docs/regenerate.py`` rewrites them all;
``python docs/regenerate.py --list`` says which blocks only it re-runs (``slow``).

A ``$ command``, ``Error:`` or ``warning:`` quoted in docs/*.md outside a
marked block fails the suite, so no hand-typed message can drift from the tool.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.warm_cli import SOCKET_VARIABLE

DOCS = Path(__file__).resolve().parents[1] / "docs"
WARM_CLIENT = Path(__file__).resolve().parent / "warm_cli.py"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("docs_regenerate", DOCS / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


regen = _load_regenerate()
BLOCKS = [block for page in regen.pages() for block in regen.parse_page(page)]
CHEAP = [block for block in BLOCKS if not block.slow]


def test_the_pages_have_marked_blocks_and_their_pictures_exist() -> None:
    pages = {block.page.name for block in BLOCKS}
    assert {"expand.md", "preview.md", "synth.md", "verify.md", "train.md"} <= pages
    assert len(CHEAP) >= 10
    for block in BLOCKS:
        for _, dest in block.keep:
            assert (DOCS / dest).is_file(), f"{block.where}: {dest} is not committed"


@pytest.fixture(scope="module")
def warm_augtool() -> Iterator[dict[str, str]]:
    """An ``augtool`` whose every call is a process forked from one that has imported the
    command line (tests/warm_cli.py): the same output, without half a CPU-second of
    imports per call. Yields the script body for :func:`regen.run_block`."""
    with tempfile.TemporaryDirectory(prefix="augtool-warm-") as tmp:
        socket_path = str(Path(tmp) / "augtool.sock")
        env = regen._environment(Path(tmp))  # the blocks' environment (but PATH)
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, tests.warm_cli as w; w.serve(sys.argv[1])",
                socket_path,
            ],
            env=env,
            cwd=regen.REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        try:
            while not Path(socket_path).exists():  # bound and listening once it exists
                assert server.poll() is None, "the warm augtool server failed to start"
                time.sleep(0.02)
            yield {
                "augtool": f'{SOCKET_VARIABLE}="{socket_path}" '
                f'exec "$AUGTOOL_PYTHON" -S "{WARM_CLIENT}" "$@"\n'
            }
        finally:
            server.terminate()  # it waits for its calls, then exits
            server.wait(timeout=60)


def outside_the_lock() -> str:
    """A sentence naming the libraries whose versions differ from the lock, or nothing."""
    differ = regen._differences(regen.locked_picture_versions(), regen.running_picture_versions())
    if not differ:
        return ""
    return (
        f". The pages were made under the lock, and this environment differs ({differ}): "
        "the difference may be the libraries'; install with `-c constraints.txt` and run again "
        "before you change a page"
    )


def test_a_failed_quote_outside_the_lock_names_the_versions(monkeypatch) -> None:
    monkeypatch.setattr(
        regen,
        "running_picture_versions",
        lambda: {**regen.locked_picture_versions(), "numpy": "1.0"},
    )
    assert "numpy" in outside_the_lock() and "constraints.txt" in outside_the_lock()
    monkeypatch.setattr(regen, "running_picture_versions", regen.locked_picture_versions)
    assert outside_the_lock() == ""


@pytest.mark.parametrize("block", CHEAP, ids=[block.where for block in CHEAP])
def test_quoted_output_and_pictures_match_the_code(
    block, tmp_path: Path, warm_augtool: dict[str, str]
) -> None:
    if not block.runnable:
        pytest.skip(f"needs the real cells in {regen.REAL_CELLS}")
    printed = regen.run_block(block, tmp_path, commands=warm_augtool)
    assert regen.normalise(printed) == regen.normalise(block.quoted), (
        f"{block.where}: augtool no longer prints what the page quotes; if a change to "
        f"augtool meant this, the page is remade by `python docs/regenerate.py {block.page.name}`"
        + outside_the_lock()
    )
    if block.keep and (reason := regen.picture_version_mismatch(block)):
        pytest.skip(reason)
    stale = regen.stale_pictures(block, tmp_path)
    assert not stale, (
        f"{stale}: augtool draws other pixels than the picture it committed, under the same "
        f"library versions; if a change to augtool meant this, the page is remade by "
        f"`python docs/regenerate.py {block.page.name}`"
    )


def test_every_kept_picture_records_the_versions_that_drew_it() -> None:
    recorded = regen.recorded_picture_versions()
    kept = {dest for block in BLOCKS for _, dest in block.keep}
    assert sorted(kept - recorded.keys()) == []
    for dest in kept:
        assert set(recorded[dest]) == set(regen.PICTURE_LIBRARIES)
        assert recorded[dest]["opencv"] and recorded[dest]["numpy"]


def test_pictures_under_other_versions_are_skipped_with_the_versions_named(monkeypatch) -> None:
    (block,) = [b for b in BLOCKS if "img/preview_real_cell.png" in dict(b.keep).values()]
    here = regen.running_picture_versions()
    made = {**here, "opencv": "4.9.0.80"}
    monkeypatch.setattr(
        regen, "recorded_picture_versions", lambda: {"img/preview_real_cell.png": made}
    )
    reason = regen.picture_version_mismatch(block)
    assert reason.startswith("img/preview_real_cell.png was drawn under other library versions")
    assert f"(opencv 4.9.0.80, here {here['opencv']}):" in reason
    assert "regenerate" not in reason  # it never asks anyone to rewrite tracked files
    monkeypatch.setattr(
        regen, "recorded_picture_versions", lambda: {"img/preview_real_cell.png": here}
    )
    assert regen.picture_version_mismatch(block) is None


def test_regenerate_refuses_to_draw_pictures_outside_the_lock(monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        regen,
        "running_picture_versions",
        lambda: {**regen.locked_picture_versions(), "numpy": "1.0"},
    )
    assert regen.main(["preview.md"]) == 2
    err = capsys.readouterr().err
    assert "numpy" in err and ", here 1.0)" in err and "--unlocked" in err


def test_the_warm_augtool_prints_what_a_fresh_one_prints(
    tmp_path: Path, warm_augtool: dict[str, str]
) -> None:
    """Output, stdout/stderr order, exit statuses and files: the same with either script."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- output data=none -->\n"
        "    $ augtool --version\n"
        '    $ augtool expand nothere out --size 3; echo "exit $?"\n'
        '    $ augtool synth demo --per-class ALL=1 --size 64 -q; echo "exit $?"\n'
        '    $ augtool preview demo/ALL/ALL_000.jpg --out s.png --size 32; echo "exit $?"\n'
        '    $ augtool preview demo/ALL/ALL_000.jpg s.png; echo "exit $?"\n'
        "<!-- /output -->\n"
    )
    (block,) = regen.parse_page(page)
    printed = {}
    for name, commands in (("fresh", None), ("warm", warm_augtool)):
        (tmp_path / name).mkdir()
        printed[name] = regen.run_block(block, tmp_path / name, commands=commands)
    assert printed["warm"] == printed["fresh"]
    assert "warning: --out is deprecated" in "\n".join(printed["warm"])  # stderr, then stdout
    assert [line for line in printed["warm"] if line.startswith("exit")] == [
        "exit 2", "exit 0", "exit 0", "exit 2",
    ]  # fmt: skip
    pictures = [(tmp_path / name / "s.png").read_bytes() for name in ("fresh", "warm")]
    assert pictures[0] == pictures[1]


def test_a_stale_quote_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- output data=none setup: printf 'a\\nb\\n' > f.txt -->\n"
        "    $ cat f.txt\n    a\n    c\n\n    $ echo done in 3.7 s\n    done in 9.9 s\n"
        "<!-- /output -->\n"
    )
    (block,) = regen.parse_page(page)
    assert block.commands == ["cat f.txt", "echo done in 3.7 s"] and block.gaps == [False, True]
    run = tmp_path / "run"
    run.mkdir()
    printed = regen.run_block(block, run)
    assert printed == ["$ cat f.txt", "a", "b", "", "$ echo done in 3.7 s", "done in 3.7 s"]
    assert regen.normalise(printed) != regen.normalise(block.quoted)  # "c" is not "b"
    fixed = ["b" if line == "c" else line for line in block.quoted]
    assert regen.normalise(printed) == regen.normalise(fixed)  # the timing does not count


def test_normalise_hides_timings_only() -> None:
    lines = ["wrote 1492 images (PNG 227x227) to out in 6.0 s (249 images/s)", "took 12 ms", ""]
    assert regen.normalise(lines) == [
        "wrote 1492 images (PNG 227x227) to out in <T> s (<R> images/s)",
        "took <T> ms",
    ]


def test_malformed_markers_are_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- output data=none -->\n    $ echo x\n    x\n")
    with pytest.raises(ValueError, match="never closed"):
        regen.parse_page(page)
    page.write_text("<!-- output colour=red -->\n    $ echo x\n<!-- /output -->\n")
    with pytest.raises(ValueError, match="unknown attribute"):
        regen.parse_page(page)
    page.write_text("<!-- output data=none -->\n    x\n<!-- /output -->\n")
    with pytest.raises(ValueError, match="without a"):
        regen.parse_page(page)


def test_a_shared_block_sees_the_shared_data_folder(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- output data=shared -->\n"
        "    $ test -d ../shared/data && echo present; pwd | grep -c /work$\n"
        "    present\n    1\n"
        "<!-- /output -->\n"
    )
    (block,) = regen.parse_page(page)
    assert block.data == "shared" and block.runnable == (regen.SHARED / "data").is_dir()
    if not block.runnable:
        pytest.skip(f"needs {regen.SHARED / 'data'}")
    run = tmp_path / "run"
    run.mkdir()
    assert regen.run_block(block, run) == [block.quoted[0], "present", "1"]
    assert (run / "shared").resolve() == regen.SHARED.resolve()


def _unmarked(lines: list[str]) -> list[tuple[int, str]]:
    """Indented lines outside marked blocks that look like a quoted transcript."""
    quoted = re.compile(r"^ {4,}(\$ |Error: |warning: )")
    found, inside = [], False
    for number, line in enumerate(lines, 1):
        if regen._OPEN.match(line):
            inside = True
        elif line == regen._CLOSE:
            inside = False
        elif not inside and quoted.match(line):
            found.append((number, line.strip()))
    return found


def test_every_quoted_command_and_message_in_docs_is_a_marked_block() -> None:
    """A ``$ command``, ``Error:`` or ``warning:`` quoted outside a marked block is never re-run."""
    unmarked = [
        f"{page.name}:{number}: {text}"
        for page in regen.pages()
        for number, text in _unmarked(page.read_text(encoding="utf-8").splitlines())
    ]
    assert not unmarked, "mark these as <!-- output --> blocks:\n" + "\n".join(unmarked)


def test_the_unmarked_check_catches_a_hand_written_quote() -> None:
    lines = [
        "<!-- output data=none -->",
        "    $ augtool expand raw out",
        "    Error: marked, so fine",
        "<!-- /output -->",
        "",
        "    $ augtool preview x.jpg --out s.png",
        "    Error: x.jpg: typed by hand",
        "    augtool train data.h5 --out run/   # a command to copy, not a quote",
    ]
    assert [number for number, _ in _unmarked(lines)] == [6, 7]


def test_expand_and_preview_quote_a_truncated_jpeg_in_the_same_words() -> None:
    """The cut JPEG of expand.md and preview.md: one wording (augtool.store.decode.truncation)."""
    from augtool.store.decode import truncation

    jpeg = b"\xff\xd8\xff\xe0" + b"\xff\xda" + b"scan data cut short"
    words = truncation(jpeg)
    for name in ("expand.md", "preview.md"):
        lines = [line for block in BLOCKS if block.page.name == name for line in block.quoted]
        about = [line for line in lines if "truncated.jpg: " in line]
        assert about and all(line.endswith(f"truncated.jpg: {words}") for line in about), about


def test_progress_lines_of_a_log_are_left_out_of_quotes(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- output data=none -->\n"
        "    $ printf 'expand: 10/20 (50 %%), 3/s, elapsed 6 s, ETA 3 s\\nwrote 20 images\\n'\n"
        "<!-- /output -->\n"
    )
    (block,) = regen.parse_page(page)
    printed = regen.run_block(block, tmp_path)
    assert printed[1:] == ["wrote 20 images"]


def _load_cli_reference():
    spec = importlib.util.spec_from_file_location("docs_cli_reference", DOCS / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_what_the_commands_define() -> None:
    reference = _load_cli_reference()
    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    rendered = reference.render()
    diff = "".join(
        list(difflib.unified_diff(page.splitlines(True), rendered.splitlines(True), n=1))[:20]
    )
    assert page == rendered, (
        "docs/cli-reference.md differs from the commands' definitions; if a change to an "
        f"option meant this, the page is remade by `python docs/cli_reference.py`:\n{diff}"
    )
    from cli import main

    sections = {part.split("\n", 1)[0]: part for part in page.split("\n## augtool ")[1:]}
    for name, command in main.commands.items():
        rows = [line for line in sections[name].splitlines() if line.startswith("| `")]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert any(param.opts[-1] in row.split("|")[1] for row in rows), param.opts
