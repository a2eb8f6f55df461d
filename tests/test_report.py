"""``augtool report``: one self-contained page per dataset, whatever kind it is."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.annotations import Box
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.errors import AugtoolError, OptionError, OutputError
from augtool.store.decode import image_size
from augtool.tools import dataset_report as dr
from augtool.tools import report_boxes, report_gather, report_items, report_sections
from cli import main
from tests import browser
from tests.conftest import smear_like, write_image

REPO = Path(__file__).resolve().parents[1]


def _page(path: Path, *args: str) -> str:
    out = path.parent / f"{path.name}-report.html"
    result = CliRunner().invoke(main, ["report", str(path), str(out), *args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote report {out} (")
    return out.read_text(encoding="utf-8")


def _offline(page: str) -> None:
    """Nothing is fetched: every src is a data: URI, no link or script points anywhere."""
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page


def _voc(folder: Path, image: str, size: tuple[int, int], boxes: list[tuple]) -> None:
    objects = "".join(
        f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for label, x0, y0, x1, y1 in boxes
    )
    (folder / f"{Path(image).stem}.xml").write_text(
        f"<annotation><filename>{image}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size>{objects}</annotation>",
        encoding="utf-8",
    )


def faulty_smears(tmp_path: Path) -> tuple[Path, Path]:
    """Three 200x150 smears whose VOC boxes hold one fault of each kind the report counts."""
    smears, ann = tmp_path / "smears", tmp_path / "ann"
    smears.mkdir()
    ann.mkdir()
    rng = np.random.default_rng(3)
    for k in range(3):
        write_image(smears / f"s{k}.jpg", smear_like(rng, 200, 150))
    normal = [("RBC", 10 + 40 * i, 10, 40 + 40 * i, 40) for i in range(4)] + [
        ("WBC", 60, 60, 140, 140)
    ]
    _voc(ann, "s0.jpg", (200, 150), [*normal, ("RBC", 50, 100, 50, 120)])  # zero area
    _voc(ann, "s1.jpg", (200, 150), [*normal, ("RBC", 11, 11, 41, 41)])  # near duplicate
    _voc(
        ann, "s2.jpg", (200, 150), [*normal, ("RBC", 150, 100, 155, 104), ("WBC", 170, 5, 230, 40)]
    )
    return smears, ann


def test_an_expand_output_folder_and_hdf5(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    for name in ("out", "out.h5"):
        expand(raw, tmp_path / name, ExpandOptions(target=30, size=48, workers=1, split="0.7,0.3"))
        page = _page(tmp_path / name, "--raw", str(raw))
        _offline(page)
        for title in ("Counts", "Groups", "Outputs per transform", "Samples", "Provenance"):
            assert f"{title}<small>" in page or f">{title}</h2>" in page
        assert "ok: 30 images in" in page  # verify, through the library
        assert 'class="thumbs wide"' in page  # no boxes: the small samples
        assert "&#34;transforms&#34;" in page and "version of numpy" in page  # the recipe
        assert "All 12 sources are 96×72 px" in page  # --raw: the sources' headers
        counts = re.search(r"<tr class=\"total\">(.*?)</tr>", page, re.S)
        assert counts is not None and re.findall(r">(\d+)<", counts[1])[-1] == "30"


def test_a_fold_dataset_shows_folds_and_their_groups(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"A": 6, "B": 6})
    out = tmp_path / "folds"
    expand(raw, out, ExpandOptions(target=36, size=32, workers=1, folds=3))
    page = _page(out)
    assert "3 folds" in page and page.count("<td>fold ") >= 6  # counts and groups per fold
    assert "No group has images in two folds." in page


def test_the_ledger_of_test_reads_is_listed_without_its_figures(make_raw, tmp_path: Path) -> None:
    from augtool.store import ledger

    raw = make_raw({"A": 3, "B": 3})
    out = tmp_path / "out.h5"
    expand(raw, out, ExpandOptions(target=18, size=32, workers=1, split="0.7,0.3"))
    page = _page(out)
    assert ">Test reads<small>" in page and "No read of the test images is recorded" in page
    for i, (accuracy, folds) in enumerate([(0.777, None), (0.8125, [0, 1])]):
        read = ledger.TestRead(
            time=f"2026-12-0{i + 1}T10:15:02Z",
            dataset=str(out),
            dataset_sha256=ledger.dataset_sha256(out),
            subset="test",
            folds=folds,
            models=[{"path": f"run{i}/model.pt", "sha256": "1a2b3c4d5e6f"}],
            figures={"n": 6, "accuracy": accuracy},
        )
        ledger.append_test_read(out, read)
    page = _page(out, "--overwrite")
    assert "The test images were read 2 times." in page
    assert "2026-12-01 10:15" in page and "run1/model.pt (sha256 1a2b3c4d)" in page
    assert "test of folds 0-1" in page
    assert "77.7" not in page and "81.2" not in page  # the figures stay in the ledger


def test_annotation_health_finds_each_fault(tmp_path: Path) -> None:
    smears, ann = faulty_smears(tmp_path)
    g = report_gather.gather(smears, ann, "voc")
    checks = {
        c.title: c
        for c in report_boxes.annotation_health(g.box_classes, list(g.boxes.values()), g.problems)
    }
    assert len(checks["zero area"].examples) == 1
    assert "s0.xml, object 6" in checks["zero area"].examples[0]
    assert len(checks["near duplicate"].examples) == 1
    assert "IoU 0.88" in checks["near duplicate"].examples[0]
    assert [e.split(":")[0] for e in checks["tiny"].examples] == ["s2.jpg, object 6"]
    assert len(checks["partly outside"].examples) == 1  # the WBC box past the right edge
    page = _page(smears, "--annotations", str(ann), "--annotation-format", "voc")
    _offline(page)
    assert "4 faulty or suspicious boxes." in page
    assert "Boxes per split and class." in page and "heatmap of box centres" in page


def test_the_health_of_an_expand_output_counts_each_source_once(tmp_path: Path) -> None:
    import augtool

    smears, ann = faulty_smears(tmp_path)
    out = tmp_path / "det"
    augtool.expand(
        smears, out, annotations=ann, annotation_format="voc", skip_invalid=True,
        factor=4, size=(200, 150), workers=1,
    )  # fmt: skip
    g = report_gather.gather(out)
    assert len(g.boxes) == 12
    section = report_boxes.health_section(g)
    assert section is not None
    (table,) = [b for b in section.blocks if isinstance(b, report_items.Table)]
    found = {row[0]: row[1] for row in table.rows}
    assert found["near duplicate"] == 1  # s1's pair, not once in each of its 4 images
    assert found["tiny"] == 1
    texts = [b.text for b in section.blocks if isinstance(b, report_items.Text)]
    assert "Checked on the 3 originals, one per source: the 9 augmented copies" in texts[1]


def test_near_duplicates_are_per_class() -> None:
    boxes = [Box(0, 0, 10, 10, "RBC", 0, "object 1"), Box(0, 0, 10, 9, "WBC", 1, "object 2")]
    assert report_boxes.near_duplicates(boxes) == []
    boxes.append(Box(0, 0, 10, 9, "RBC", 2, "object 3"))
    assert report_boxes.near_duplicates(boxes) == ["RBC object 1 and object 3, IoU 0.90"]


def test_a_detection_output_shows_its_boxes(tmp_path: Path) -> None:
    from tests.test_detect import make_detection_raw, options

    raw, location = make_detection_raw(tmp_path, "voc")
    out = tmp_path / "det"
    expand(raw, out, options("voc", location))
    g = report_gather.gather(out)
    assert g.kind == "detection" and len(g.boxes) == len(g.items) == 20
    assert sum(len(b.boxes) for b in g.boxes.values()) == 20
    page = _page(out, "--raw", str(raw))
    assert "20 boxes in 20 images" in page and "No faulty box found." in page
    assert 'class="thumbs wide large"' in page  # boxes readable: larger samples
    thumb = report_sections.sample_thumb(g, 0, "original")
    side = max(image_size(base64.b64decode(thumb.uri.split(",", 1)[1])))
    assert side == max(g.pixels(0).shape[:2]) > report_items.THUMB_SIDE  # not shrunk to 150


#: Class names as a curator's data has them: many, some long.
MANY_CLASSES = [
    "neutrophil", "lymphocyte", "red_blood_cell", "band_neutrophil", "eosinophil", "basophil",
    "monocyte", "myeloblast", "promyelocyte", "metamyelocyte", "plasma_cell", "erythroblast",
]  # fmt: skip


def _drawn_plots(g: report_gather.Gathered) -> list[report_items.Plot]:
    """The plots of ``g``'s page, drawn with no matplotlib warning and no word cut at an edge."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sections = dr.build_sections(g)
    assert [str(w.message) for w in caught] == []
    plots = [b for s in sections for b in s.blocks if isinstance(b, report_items.Plot)]
    assert all(p.cut == [] for p in plots), [(p.alt, p.cut) for p in plots if p.cut]
    return plots


def _names_every_class(plot: report_items.Plot, classes: list[str]) -> bool:
    """Each class name is drawn in full on ``plot``: a tick label, a legend entry, a title."""
    shown = {label.split("\n")[0].rsplit(": ", 1)[0] for label in plot.labels}
    return set(classes) <= shown


@pytest.mark.parametrize("n", [2, 7, 12])
def test_every_chart_names_every_class_in_full(make_raw, tmp_path: Path, n: int) -> None:
    """Many classes, long names: each chart grows to hold them, its legend beside it."""
    classes = MANY_CLASSES[:n]
    raw = make_raw(dict.fromkeys(classes, 2), size=(24, 18))
    datasets = {"folder": raw}
    for name, extra in (("split", {"split": "0.5,0.5"}), ("folds", {"folds": 2})):
        datasets[name] = tmp_path / name
        expand(raw, datasets[name], ExpandOptions(target=4 * n, size=16, workers=1, **extra))
    smears, ann = tmp_path / "smears", tmp_path / "ann"
    smears.mkdir()
    ann.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        write_image(smears / f"s{k}.jpg", smear_like(rng, 200, 150))
        boxes = [
            (c, 5 + 15 * i, 5 + 10 * k, 20 + 15 * i, 30 + 10 * k) for i, c in enumerate(classes)
        ]
        _voc(ann, f"s{k}.jpg", (200, 150), boxes)
    drawn: dict[str, list[str]] = {}
    for name, path in datasets.items():
        g = report_gather.gather(path, run_verify=False)
        drawn[name] = [p.alt for p in _drawn_plots(g) if _names_every_class(p, classes)]
    g = report_gather.gather(smears, ann, "voc")
    drawn["smears"] = [p.alt for p in _drawn_plots(g) if _names_every_class(p, classes)]
    assert drawn == {
        "folder": ["images per class"],
        "split": ["images per split and class", "outputs per transform and class"],
        "folds": ["images per fold and class", "outputs per transform and class"],
        "smears": ["boxes per class and box sizes", "heatmap of box centres"],
    }


def test_two_classes_of_one_colour_are_told_apart() -> None:
    """Past the tenth class the colours start again; hatches and markers differ."""
    from augtool.drawing import class_hex

    again = len(MANY_CLASSES) - 2  # the eleventh class
    assert class_hex(again) == class_hex(0)
    assert report_items.class_hatch(again) != report_items.class_hatch(0)
    assert report_items.class_marker(again) != report_items.class_marker(0)


def test_a_cells_output_is_grouped_by_smear(tmp_path: Path) -> None:
    smears, ann = faulty_smears(tmp_path)
    cells = tmp_path / "cells"
    args = ["cells", str(smears), str(ann), str(cells), "--annotation-format", "voc"]
    result = CliRunner().invoke(main, [*args, "--window", "64", "--skip-invalid", "-q"])
    assert result.exit_code == 0, result.output
    g = report_gather.gather(cells)
    assert g.kind == "folder" and {i.group for i in g.items} == {"s0.jpg", "s1.jpg", "s2.jpg"}
    page = _page(cells)
    assert "groups: by smear (cells.csv)" in page and "verify was not run" in page


def test_names_from_files_are_escaped(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"<img src=x onerror=alert(1)>": 2, "ok": 2})
    page = _page(raw)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page


def test_a_section_is_one_function(make_raw, tmp_path: Path) -> None:
    """How the ledger of test-set reads will join the page: one more function in SECTIONS."""
    g = report_gather.gather(make_raw())

    def extra(gathered: report_gather.Gathered) -> report_items.Section:
        return report_items.Section(
            "extra", "Extra", [report_items.Text(f"{len(gathered.items)} counted")]
        )

    sections = dr.build_sections(g, (*dr.SECTIONS, extra))
    page = dr.render_page(g, sections)
    assert '<section id="extra">' in page and "12 counted" in page
    assert '<a href="#extra">Extra' in page


def test_refusals(make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_raw()
    with pytest.raises(OptionError, match="out"):
        dr.write_report(raw, tmp_path / "r.png")
    (tmp_path / "r.html").write_text("x")
    with pytest.raises(OutputError, match="exists"):
        dr.write_report(raw, tmp_path / "r.html")
    with pytest.raises(OptionError, match="raw"):
        dr.write_report(raw, tmp_path / "s.html", raw=raw)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(AugtoolError, match=re.escape("pip install -e '.[report]'")):
        dr.write_report(raw, tmp_path / "t.html")
    result = CliRunner().invoke(main, ["report", str(raw), str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_only_the_report_imports_matplotlib() -> None:
    code = (
        "import sys, pkgutil, importlib, augtool, cli\n"
        "for m in pkgutil.walk_packages(augtool.__path__, 'augtool.'):\n"
        "    if m.name != 'augtool.tools.dataset_report':\n"
        "        importlib.import_module(m.name)\n"
        "import augtool.tools.dataset_report\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "assert 'jinja2' not in sys.modules, 'jinja2 imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_the_page_in_chromium(tmp_path: Path) -> None:
    """Headless Chromium: no console error, no broken image, nothing fetched; a screenshot."""
    smears, ann = faulty_smears(tmp_path)
    out = tmp_path / "page.html"
    dr.write_report(smears, out, annotations=ann, annotation_format="voc")
    shot = tmp_path / "page.png"
    seen = browser.open_page(out, shot, width=1200)
    assert seen.console == [] and seen.broken == [] and seen.requests == []
    assert seen.images >= 5 and seen.height > 1000
    import cv2

    picture = cv2.imread(str(shot))
    assert picture.shape[1] == 1200 and picture.shape[0] == seen.height
    assert picture.std() > 10  # drawn, not blank
