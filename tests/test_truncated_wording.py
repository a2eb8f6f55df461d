"""A truncated image is described in one wording, by one function, wherever it is met.

``expand`` (its scan, :func:`augtool.engine.scan.inspect_file`) and ``preview``
(:func:`augtool.tools.preview.contact_sheet`) used to describe the same cut JPEG two
ways ("truncated JPEG (no end-of-image marker ...)" against "JPEG data is
corrupt or truncated"); both now get the words from
:func:`augtool.store.decode.truncation` through :func:`augtool.store.decode.decode_rgb`.
The quoted messages in docs/expand.md and docs/preview.md are checked against
the command line by tests/test_docs.py.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.engine.scan import inspect_file
from augtool.errors import InputError
from augtool.store.decode import decode_rgb, truncation
from augtool.tools.preview import contact_sheet
from tests.conftest import smear_like

JPEG_WORDS = "truncated JPEG (no end-of-image marker after the last scan)"
PNG_WORDS = "truncated PNG (no IEND chunk)"


def _encoded(suffix: str) -> bytes:
    rgb = smear_like(np.random.default_rng(3), 96, 72)
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    ("suffix", "keep", "words"),
    [
        (".jpg", 0.5, JPEG_WORDS),
        (".jpg", 0.95, JPEG_WORDS),  # libjpeg would decode this one, padding it with grey
        (".png", 0.7, PNG_WORDS),
    ],
    ids=["jpeg-half", "jpeg-95pc", "png"],
)
def test_expand_and_preview_say_the_same_words(
    tmp_path: Path, suffix: str, keep: float, words: str
) -> None:
    data = _encoded(suffix)
    assert truncation(data) == ""
    cut = data[: int(len(data) * keep)]
    assert truncation(cut) == words
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(cut)

    assert inspect_file(path, 10**8).error == words  # expand lists "<file>: <error>"
    with pytest.raises(InputError) as preview_error:
        contact_sheet(path, size=32)
    assert str(preview_error.value) == f"{path}: {words}"
    with pytest.raises(InputError) as decode_error:
        decode_rgb(cut, 1, "x")
    assert str(decode_error.value) == f"x: {words}"


def test_a_whole_file_with_bytes_after_its_end_is_not_called_truncated(tmp_path: Path) -> None:
    data = _encoded(".jpg") + b"trailing bytes after the end-of-image marker"
    assert truncation(data) == ""
    assert decode_rgb(data).shape == (72, 96, 3)
    path = tmp_path / "trailer.jpg"
    path.write_bytes(data)
    info = inspect_file(path, 10**8)
    assert info.error == "" and (info.width, info.height) == (96, 72)
