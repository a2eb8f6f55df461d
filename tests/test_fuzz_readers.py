"""Property-based tests: every reader of other people's files, fed arbitrary and mutated bytes.

The recipe reader, the VOC, COCO and YOLO readers, the manifest and
``augtool.json`` readers and ``augtool verify`` each end in success or a clean
error (the library's :class:`~augtool.errors.AugtoolError`; exit 1 or 2 from
the command line), never another exception, never a traceback, never a write
outside OUT. Derandomized with modest example counts, so CI is reproducible
and quick. VOC files with entity expansion are refused with bounded memory.
"""

from __future__ import annotations

import contextlib
import shutil
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augtool.annotations import read_annotations
from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.errors import AugtoolError
from augtool.pipeline.recipe_toml import read_recipe_file
from augtool.store.schema import read_manifest, read_recipe
from tests.child_process import run_cli

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with bytes flipped, cut, or spliced with arbitrary bytes."""

    def mutate(args: tuple[int, int, bytes, int]) -> bytes:
        at, cut, insert, mode = args
        at %= max(1, len(seed))
        if mode == 0:
            return seed[:at] + insert + seed[at:]
        if mode == 1:
            return seed[:at] + seed[at + cut :]
        if mode == 2:
            return seed[:at]
        flipped = bytearray(seed)
        flipped[at] ^= 0xFF if not insert else insert[0] | 1
        return bytes(flipped)

    return st.one_of(
        st.binary(max_size=400),
        st.tuples(
            st.integers(0, 10**6), st.integers(1, 64), st.binary(max_size=40), st.integers(0, 3)
        ).map(mutate),
    )


RECIPE = b"""name = "r"
[preprocess]
resize = "pad"
[[transform]]
name = "noise"
std_range = [1.0, 3.0]
[[transform]]
name = "soft"
builtin = "blur_rgb"
sigma_range = [1.0, 2.0]
"""


@FUZZ
@given(data=mutated(RECIPE))
def test_recipe_reader(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "r.toml").write_bytes(data)
    with contextlib.suppress(AugtoolError):
        read_recipe_file(tmp_path / "r.toml")


@pytest.fixture(scope="module")
def annotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("annotated")
    (root / "images").mkdir()
    cv2.imwrite(str(root / "images" / "a.png"), np.full((40, 60, 3), 180, np.uint8))
    return root


VOC = (
    b"<annotation><filename>a.png</filename><size><width>60</width><height>40</height>"
    b"<depth>3</depth></size><object><name>WBC</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
    b"<xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>"
)
COCO = (
    b'{"images": [{"id": 1, "file_name": "a.png", "width": 60, "height": 40}], '
    b'"categories": [{"id": 1, "name": "WBC"}], '
    b'"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 10]}]}'
)
YOLO = b"0 0.3 0.4 0.2 0.25\n"


def _read(fmt: str, root: Path, data: bytes) -> None:
    ann = root / f"ann-{fmt}"
    shutil.rmtree(ann, ignore_errors=True)
    ann.mkdir()
    names = None
    if fmt == "voc":
        (ann / "a.xml").write_bytes(data)
    elif fmt == "coco":
        (ann / "a.json").write_bytes(data)
    else:
        (ann / "a.txt").write_bytes(data)
        names = ann / "names.txt"
        names.write_text("WBC\n")
    with contextlib.suppress(AugtoolError):
        read_annotations(fmt, ann if fmt != "coco" else ann / "a.json", root / "images", names)


@FUZZ
@given(data=mutated(VOC))
def test_voc_reader(annotated: Path, data: bytes) -> None:
    _read("voc", annotated, data)


@FUZZ
@given(data=mutated(COCO))
def test_coco_reader(annotated: Path, data: bytes) -> None:
    _read("coco", annotated, data)


@FUZZ
@given(data=mutated(YOLO))
def test_yolo_reader(annotated: Path, data: bytes) -> None:
    _read("yolo", annotated, data)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<annotation><filename>a.png</filename><name>&lol9;</name></annotation>\n"
)
EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<annotation><filename>a.png</filename><name>&xxe;</name></annotation>\n"
)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL], ids=["billion-laughs", "external"])
def test_voc_entities_are_refused_with_bounded_memory(annotated: Path, text: str) -> None:
    ann = annotated / "ann-entities"
    ann.mkdir(exist_ok=True)
    (ann / "a.xml").write_text(text)
    tracemalloc.start()
    try:
        found = read_annotations("voc", ann, annotated / "images")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert any("entity declaration" in p.message for p in found.problems), found.problems
    assert not found.images
    assert peak < 5 * 2**20, peak  # expanded, the laughs alone would be 3 GB


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzzset")
    raw = root / "raw"
    for cls in ("A", "B"):
        (raw / cls).mkdir(parents=True)
        for i in range(2):
            image = np.random.default_rng([i, len(cls)]).integers(0, 255, (24, 30, 3), np.uint8)
            cv2.imwrite(str(raw / cls / f"{cls}{i}.png"), image)
    expand(raw, root / "out", ExpandOptions(target=8, size=16, workers=1))
    return root / "out"


@FUZZ
@given(data=st.data())
def test_manifest_and_recipe_readers(dataset: Path, tmp_path: Path, data: st.DataObject) -> None:
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(dataset, out)
    which = data.draw(st.sampled_from(["manifest.csv", "augtool.json"]))
    (out / which).write_bytes(data.draw(mutated((dataset / which).read_bytes())))
    for reader in (read_manifest, read_recipe):
        with contextlib.suppress(AugtoolError):
            reader(out)


@settings(max_examples=15, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_verify_ends_cleanly_and_writes_only_in_out(
    dataset: Path, tmp_path: Path, data: st.DataObject
) -> None:
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    out = work / "out"
    shutil.copytree(dataset, out)
    which = data.draw(st.sampled_from(["manifest.csv", "augtool.json"]))
    (out / which).write_bytes(data.draw(mutated((dataset / which).read_bytes())))
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    code, text = run_cli("verify", out, "-q")
    assert code in (0, 1, 2), text
    assert "Traceback" not in text and "internal error" not in text, text
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before
