"""What docs/, README.md and CHANGELOG.md state agrees with the code and the repository.

tests/test_docs.py re-runs the quoted outputs; this file checks the rest of what
the pages state where a test can say it: the tables that describe the schema
are the schema's, links and paths lead to something in the repository, no
page points to a document or a machine that is not there or names a commit,
test names and option flags exist, scripts the pages tell you to run can be
run, installs use the lock, and a table with an interval says which interval.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import click
import h5py
import pytest
from click.testing import CliRunner

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.store import schema
from augtool.tools.cells import CELLS_COLUMNS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), REPO / "README.md", REPO / "CHANGELOG.md"]
#: Pages that other branches are rewriting while this check lands; the lead labels their
#: figures at the merge, then takes them out of this list (see each test for what it skips).
PENDING: set[str] = set()

_OPEN = re.compile(r"^<!-- output\b.*-->$")
_CLOSE = "<!-- /output -->"


def _name(page: Path) -> str:
    return page.name if page.parent == DOCS else page.relative_to(REPO).as_posix()


def _ids(pages: list[Path]) -> list[str]:
    return [_name(page) for page in pages]


def _checked(pages: list[Path] = PAGES) -> list[Path]:
    return [page for page in pages if page.name not in PENDING]


def prose(page: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a page outside its marked output blocks (tool output)."""
    inside = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if _OPEN.match(line):
            inside = True
        elif line == _CLOSE:
            inside = False
        elif not inside:
            yield number, line


def code_lines(page: Path) -> Iterator[tuple[int, str]]:
    """Lines of indented or fenced code blocks, and of every inline code span, in prose."""
    fenced = False
    for number, line in prose(page):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            yield number, line.strip()
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield number, span


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for _, line in prose(page):
        if match := re.match(r"^#{1,6} (.+)$", line):
            base = slug(match[1])
            name, n = base, 0
            while name in found:  # GitHub numbers repeated headings
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


# --- the schema's tables ----------------------------------------------------------------------


def table_after(page: Path, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``, header row excluded."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows[2:]


def code_names(cell: str) -> list[str]:
    """The names in backticks of a table cell (`` `class` / `label` `` gives both)."""
    return re.findall(r"`([^`]+)`", cell)


def test_the_record_table_is_the_manifest_schema() -> None:
    rows = table_after(DOCS / "dataset-format.md", "## Records")
    fields = [name for row in rows for name in code_names(row[0])]
    assert tuple(fields) == schema.MANIFEST_COLUMNS


def test_the_hdf5_dataset_table_is_the_schema() -> None:
    rows = table_after(DOCS / "dataset-format.md", "## HDF5")
    documented = {code_names(row[0])[0]: row[1] for row in rows}
    assert set(documented) == {schema.IMAGES, *schema.COLUMNS, schema.MASK_IDS, schema.CLASS_MAP}
    for key, column in schema.COLUMNS.items():
        dtype = "vlen UTF-8 str" if column.dtype == schema.TEXT else column.dtype
        assert dtype in documented[key], (key, documented[key])


def test_the_root_attribute_table_lists_what_expand_writes(make_raw, tmp_path: Path) -> None:
    lines = (DOCS / "dataset-format.md").read_text(encoding="utf-8").splitlines()
    rows = table_after(DOCS / "dataset-format.md", lines[lines.index("Root attributes:")])
    documented = {code_names(row[0])[0] for row in rows}
    out = tmp_path / "out.h5"
    expand(make_raw(), out, ExpandOptions(target=12, size=16, workers=1))
    with h5py.File(out, "r") as fh:
        written = set(fh.attrs)
    assert documented == written | {"annotations"}  # written by segmentation runs only
    folder = tmp_path / "out"
    expand(make_raw(name="raw2"), folder, ExpandOptions(target=12, size=16, workers=1))
    recorded = json.loads((folder / schema.RECIPE_NAME).read_text(encoding="utf-8"))
    assert set(recorded) == written | {"sources"}  # the page says so under the table


def test_the_cells_csv_table_is_what_cells_writes() -> None:
    rows = table_after(DOCS / "cells.md", "## cells.csv")
    columns = []
    for row in rows:
        for name in code_names(row[0]):
            if " .. " in name:  # box_x0 .. box_y1
                first, last = name.split(" .. ")
                stem = first[:-2]
                columns += [f"{stem}x0", f"{stem}y0", f"{stem}x1", f"{stem}y1"]
                assert columns[-1] == last
            else:
                columns.append(name)
    assert tuple(columns) == CELLS_COLUMNS


def test_expand_md_links_the_manifest_columns_instead_of_listing_them() -> None:
    text = (DOCS / "expand.md").read_text(encoding="utf-8")
    assert "dataset-format.md#records" in text
    assert ",".join(schema.MANIFEST_COLUMNS[:-1]) + "\n" not in text  # no 12-column list


# --- links, paths, references -----------------------------------------------------------------


_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_leads_to_a_file_and_heading_here(page: Path) -> None:
    broken = []
    for number, line in prose(page):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            if REPO.resolve() not in where.parents and where != REPO.resolve():
                broken.append(f"{number}: {target} leaves the repository")
            elif not where.exists():
                broken.append(f"{number}: {target}: no such file")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{number}: {target}: no such heading")
    assert not broken, f"{_name(page)}:\n" + "\n".join(broken)


_REPO_PATH = re.compile(
    r"(?<![\w./-])((?:augtool|model|tests|benchmarks|experiments|examples|docs|tools|checks|\.ci)/[\w./-]*\w/?)"
)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_repository_path_a_page_names_exists(page: Path) -> None:
    missing = []
    for number, text in code_lines(page):
        for path in _REPO_PATH.findall(text):
            if not (REPO / path.rstrip("/")).exists():
                missing.append(f"{number}: {path}")
    assert not missing, f"{_name(page)} names paths that are not in the repository:\n" + "\n".join(
        missing
    )


#: Documents and machines that are not in the repository: a reader has none of them.
_ELSEWHERE = (
    (re.compile(r"\bSPEC\b"), "the project's SPEC, not in the repository"),
    (re.compile(r"\bARCHITECTURE\.md\b"), "a planning document, not in the repository"),
    (re.compile(r"\bissues? ?#?\d+\b|\(#\d+\b", re.IGNORECASE), "an issue of another tracker"),
    (re.compile(r"/work/|/home/|/root/"), "a path on someone's machine"),
    (re.compile(r"/tmp/\w"), "a path on someone's machine"),
)


@pytest.mark.parametrize("page", _checked(), ids=_ids(_checked()))
def test_no_page_refers_to_a_document_or_path_outside_the_repository(page: Path) -> None:
    found = [
        f"{number}: {why}: {line.strip()}"
        for number, line in prose(page)
        for pattern, why in _ELSEWHERE
        if pattern.search(line)
    ]
    assert not found, f"{_name(page)}:\n" + "\n".join(found)


_HEX = re.compile(r"(?<![\w/.-])[0-9a-f]{7,40}(?![\w/-])")


def commit_like(text: str) -> list[str]:
    """Hex words that could be commit hashes: 7 to 40 hex digits, letters and digits both."""
    return [
        word
        for word in _HEX.findall(text)
        if re.search(r"[0-9]", word) and re.search(r"[a-f]", word)
    ]


@pytest.mark.parametrize("page", _checked(), ids=_ids(_checked()))
def test_no_page_names_a_commit(page: Path) -> None:
    """A reader's clone may not hold a commit; figures name their code by date instead."""
    found = [f"{number}: {commit_like(line)}" for number, line in prose(page) if commit_like(line)]
    assert not found, f"{_name(page)}:\n" + "\n".join(found)


def test_the_commit_check_catches_a_hash_and_passes_a_date() -> None:
    assert commit_like("measured before commit 37496a5 (e2eccd9: loky)") == ["37496a5", "e2eccd9"]
    assert commit_like("2026-12-01, 1,676 images, deadbeef, 1234567, abc-1234def") == []


def test_the_reference_check_catches_what_the_audit_found() -> None:
    lines = ["(SPEC §8)", "Criteria (issue #11)", "log /work/logs/x.log", "--workdir /tmp/w"]
    for line in lines:
        assert any(pattern.search(line) for pattern, _ in _ELSEWHERE), line
    assert not any(p.search("the paper's §1, a folder in `/tmp`") for p, _ in _ELSEWHERE)


# --- names of tests, flags and scripts --------------------------------------------------------


def _test_functions() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / "tests").glob("test_*.py"):
        found[path.name] = set(re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE))
    return found


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_test_a_page_names_exists(page: Path) -> None:
    tests = _test_functions()
    every = set().union(*tests.values())
    missing = []
    for number, line in prose(page):
        for file, name in re.findall(r"tests/(test_\w+\.py)::(\w+)", line):
            if name not in tests.get(file, set()):
                missing.append(f"{number}: tests/{file}::{name}")
        for name in re.findall(r"`(test_\w+)`", line):
            if name not in every:
                missing.append(f"{number}: {name}")
    assert not missing, f"{_name(page)}:\n" + "\n".join(missing)


def _flags() -> dict[str, set[str]]:
    """Every flag each ``augtool`` command accepts, hidden aliases included."""
    from cli import main

    flags = {"": {opt for p in main.params for opt in (*p.opts, *p.secondary_opts)}}
    flags[""] |= {"-h", "--help"}
    for name, command in main.commands.items():
        flags[name] = {"-h", "--help"}
        for param in command.params:
            flags[name] |= {o for o in (*param.opts, *param.secondary_opts) if o.startswith("-")}
    return flags


_AUGTOOL = re.compile(
    r"\baugtool(?: --debug)? "
    r"(cells|evaluate|expand|predict|preview|report|synth|train|verify)\b([^;|&#)]*)"
)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_augtool_command_a_page_shows_uses_flags_it_has(page: Path) -> None:
    flags = _flags()
    unknown = []
    for number, text in code_lines(page):
        for command, rest in _AUGTOOL.findall(text):
            for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest):
                if flag not in flags[command]:
                    unknown.append(f"{number}: augtool {command} {flag}")
    assert not unknown, f"{_name(page)} shows flags the command does not have:\n" + "\n".join(
        unknown
    )


#: The folders that hold scripts (``experiments/`` once benchmarks' lab scripts move there).
_SCRIPTS = "benchmarks|experiments|examples|tools|checks|docs"
_RUN = re.compile(rf"^(?:[A-Z_]+=\S+ )*((?:{_SCRIPTS})/[\w.-]+\.(?:sh|py))(?: |$)")


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_a_script_a_page_tells_you_to_run_by_its_path_can_be_run(page: Path) -> None:
    """``benchmarks/x.sh ARGS`` needs the run bit; ``bash benchmarks/x.sh`` does not."""
    fenced = False
    not_runnable = []
    for number, line in prose(page):
        if line.startswith("```"):
            fenced = not fenced
            continue
        block = fenced or line.startswith("    ")
        if block and re.search(r"\S  +\S| -> ", line.strip()):
            continue  # a layout line, `path   what it holds`, not a command
        spans = [line.strip()] if block else re.findall(r"`([^`]+)`", line)
        for span in spans:
            for command in re.split(r"\s*(?:&&|;|\|)\s*", span.removeprefix("$ ")):
                match = _RUN.match(command)
                if match is None or (not block and command.strip() == match[1]):
                    continue  # not a command, or a script named in prose without arguments
                script = REPO / match[1]
                if script.exists() and not os.access(script, os.X_OK):
                    not_runnable.append(f"{number}: {command}")
    assert not not_runnable, (
        f"{_name(page)} tells you to run scripts that have no run bit (write `bash ...` or "
        "`python ...`):\n" + "\n".join(not_runnable)
    )


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_installs_of_this_checkout_use_the_lock(page: Path) -> None:
    """Every install command of augtool in a code block says ``-c constraints.txt``."""
    fenced = False
    unlocked = []
    for number, line in prose(page):
        if "augtool[" in line:
            unlocked.append(f"{number}: augtool is not installed by name: {line.strip()}")
        if line.startswith("```"):
            fenced = not fenced
            continue
        install = re.search(r"pip install .*(-e \.|'\.\[)", line)
        if (fenced or line.startswith("    ")) and install and "-c constraints.txt" not in line:
            unlocked.append(f"{number}: {line.strip()}")
    assert not unlocked, f"{_name(page)}:\n" + "\n".join(unlocked)


# --- tables -----------------------------------------------------------------------------------


def tables(page: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line of the header, rows)`` of every Markdown table in a page's prose."""
    rows: list[str] = []
    start = 0
    for number, line in [*prose(page), (0, "")]:
        if line.startswith("|"):
            if not rows:
                start = number
            rows.append(line)
        elif rows:
            yield start, rows
            rows = []


_WHICH_INTERVAL = re.compile(r"Wilson|bootstrap|standard deviation|\bstd\b", re.IGNORECASE)


@pytest.mark.parametrize("page", _checked(), ids=_ids(_checked()))
def test_a_table_of_intervals_says_which_interval(page: Path) -> None:
    """A column of "CI" or "interval" says whether it is per-image Wilson or over groups."""
    vague = [
        f"{start}: {rows[0]}"
        for start, rows in tables(page)
        if re.search(r"\bCI\b|interval", rows[0], re.IGNORECASE)
        and not _WHICH_INTERVAL.search(rows[0])
    ]
    assert not vague, f"{_name(page)}:\n" + "\n".join(vague)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_no_table_but_the_reference_retypes_options(page: Path) -> None:
    """Option tables are generated (docs/cli-reference.md); pages link to them."""
    if page.name == "cli-reference.md":
        return
    options = set().union(*_flags().values())
    retyped = [
        f"{start}: {row}"
        for start, rows in tables(page)
        for row in rows[2:]
        if (flag := re.match(r"^\| `(--?[a-z][\w-]*)", row)) and flag[1] in options
    ]
    assert not retyped, f"{_name(page)} retypes options; link cli-reference.md:\n" + "\n".join(
        retyped
    )


# --- what the commands say about themselves ---------------------------------------------------


def test_preview_help_names_the_pca_modes_it_draws() -> None:
    from augtool.tools.preview import PCA_MODES
    from cli import main

    result = CliRunner().invoke(main, ["preview", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert PCA_MODES == ("pixel", "shift")
    assert "two modes, pixel (the default of expand --pca) and shift" in text
    assert "unit and byte" not in text


def test_the_reference_shows_the_default_that_help_shows() -> None:
    """An option whose ``--help`` states ``[default: X]`` has X in the reference's column."""
    from cli import main

    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    root = click.Context(main, info_name="augtool", **main.context_settings)
    for name, command in main.commands.items():
        section = page.split(f"\n## augtool {name}\n", 1)[1].split("\n## ", 1)[0]
        ctx = click.Context(command, info_name=name, parent=root)
        for param in command.params:
            record = param.get_help_record(ctx)
            if record is None or not isinstance(param, click.Option):
                continue
            flags, help_text = record
            cell = flags.replace("|", "\\|")
            (row,) = [line for line in section.splitlines() if line.startswith(f"| `{cell}`")]
            if match := re.search(r"\[default: ([^\];]+)", help_text):
                assert f"`{match[1]}" in row.split(" | ")[1], (name, flags, row)
    assert "| `-h, --help` |" in page


# --- statements the audit found untrue, each checked where a test can say it ------------------


def test_the_annotation_format_table_is_headed_by_the_flag_and_lists_its_choices() -> None:
    from augtool import defaults
    from cli import main

    lines = (DOCS / "cells.md").read_text(encoding="utf-8").splitlines()
    header = lines.index("## Annotation formats") + 2
    assert lines[header].startswith("| `--annotation-format` |")
    rows = table_after(DOCS / "cells.md", "## Annotation formats")
    choices = defaults.CELLS_ANNOTATION_FORMATS  # png-instances with --crop mask
    assert tuple(code_names(row[0])[0] for row in rows) == choices
    (option,) = [p for p in main.commands["cells"].params if p.name == "annotation_format"]
    assert tuple(option.type.choices) == choices


def test_preview_md_describes_the_tiles_the_sheet_draws() -> None:
    text = (DOCS / "preview.md").read_text(encoding="utf-8")
    assert "`pixel` and `shift`" in text and "both scales" not in text
    assert "σ" not in text and "°" not in text  # the labels are ASCII: sigma, deg


def test_synth_md_states_the_red_cell_scale_the_generator_draws() -> None:
    from augtool.tools.smear.scene import RBC_WIDTH_FRACTION

    low, high = (round(100 * f) for f in RBC_WIDTH_FRACTION)
    text = " ".join((DOCS / "synth.md").read_text(encoding="utf-8").split())
    assert f"itself {low}-{high} % of the image width" in text
    assert f"drawn at the BCCD smears' scale ({low}-{high} % of the width" in text
    assert "follow ALL-IDB's scale" not in text


def test_the_pca_speed_figures_are_stated_in_pca_md_only() -> None:
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    section = text.split("## PCA colour jitter", 1)[1].split("\n## ", 1)[0]
    assert "pca.md#performance" in section
    assert not re.search(r"\d+(\.\d+)?x\b", section), section
    assert "no quiet CPU figure" not in text


def test_readme_names_what_augtool_imports_and_what_it_only_declares() -> None:
    """Every core dependency is named; scikit-image is said to be declared, not imported."""
    import ast
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    required = [
        re.split(r"[<>=!\[ ]", line.strip())[0]
        for line in config["options"]["install_requires"].strip().splitlines()
    ]
    imported: set[str] = set()
    for path in (REPO / "augtool").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert "skimage" not in imported and "tqdm" in imported
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    names = {"opencv-python-headless": "OpenCV"}
    install = readme.split("## Install", 1)[1].split("## Tests", 1)[0]
    for package in required:
        assert names.get(package, package) in install, package
    assert "augtool imports numpy, OpenCV, click, joblib, h5py and tqdm" in install
    assert "scikit-image is a declared dependency that augtool itself does not import" in install


def test_readme_links_every_page_of_docs_and_the_changelog() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", readme))
    assert {f"docs/{page.name}" for page in DOCS.glob("*.md")} <= linked
    assert "](CHANGELOG.md)" in readme


def test_cli_md_names_the_commands_that_take_the_deprecated_out() -> None:
    from cli import main

    taking = {
        name
        for name, c in main.commands.items()
        if any(p.name == "out_alias" or "--out" in p.opts for p in c.params)
    }
    paragraphs = (DOCS / "cli.md").read_text(encoding="utf-8").split("\n\n")
    (paragraph,) = [p for p in paragraphs if "deprecated alias of `OUT`" in p]
    assert set(re.findall(r"`(\w+)`", paragraph.split(" also accept")[0])) == taking


def test_verify_md_names_every_library_whose_version_regenerate_compares() -> None:
    from augtool.versions import BYTE_KEYS

    text = (DOCS / "verify.md").read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith("| library versions |")]
    shown = {"opencv": "OpenCV"}
    assert all(shown.get(key, key) in row for key in BYTE_KEYS)


def test_no_message_of_augtool_installs_it_by_a_package_name() -> None:
    """augtool is installed from its folder (`pip install -e '.[extra]'`), never by name."""
    found = [
        f"{path.relative_to(REPO)}: {line.strip()}"
        for root in ("augtool", "model")
        for path in (REPO / root).rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if "'augtool[" in line
    ]
    assert not found


def sections(page: Path) -> Iterator[tuple[str, str]]:
    """``(heading, text)`` of each section of a page: its prose, without code blocks."""
    heading, body, fenced = "", [], False
    for _, line in prose(page):
        if line.startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            continue  # a quoted log or command: its figures are examples of a format
        elif re.match(r"^#{1,6} ", line):
            yield heading, "\n".join(body)
            heading, body = line, []
        else:
            body.append(line)
    yield heading, "\n".join(body)


_CODE_VERSION = re.compile(r"this code|[Cc]ode(?: of|: that of) \d{4}-\d\d-\d\d")
_INTERVAL = re.compile(r"Wilson|bootstrap|no interval|\bstd\b|standard deviation")


@pytest.mark.parametrize("page", _checked(), ids=_ids(_checked()))
def test_an_accuracy_figure_names_its_code_and_its_interval(page: Path) -> None:
    """A section that quotes an accuracy (``71.5 %``) says which code made it and which
    interval it carries (or that it has none)."""
    unlabelled = []
    for heading, body in sections(page):
        quotes = re.search(r"accuracy", body, re.IGNORECASE) and re.search(r"\d+\.\d ?%", body)
        if quotes and not (_CODE_VERSION.search(body) and _INTERVAL.search(body)):
            unlabelled.append(heading or "(top)")
    assert not unlabelled, f"{_name(page)}: {unlabelled}"
