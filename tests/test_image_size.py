"""decode.image_size reads every input format's header itself: model/ needs no Pillow."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from augtool.errors import InputError
from augtool.store.decode import image_size

REPO = Path(__file__).resolve().parents[1]
SIZES = [(1, 1), (40, 30), (333, 17), (7, 1200)]


def encoded(ext: str, width: int, height: int, channels: int = 3) -> bytes:
    shape = (height, width, channels) if channels > 1 else (height, width)
    pixels = np.random.default_rng(width * height).integers(0, 255, shape, dtype=np.uint8)
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_opencv_files(ext: str, channels: int, width: int, height: int) -> None:
    assert image_size(encoded(ext, width, height, channels)) == (width, height)


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "CMYK", {}),
        ("JPEG", "L", {}),
        ("PNG", "I;16", {}),
        ("PNG", "P", {}),
        ("PNG", "RGBA", {}),
        ("BMP", "1", {}),
        ("TIFF", "RGB", {"compression": "tiff_lzw"}),
        ("TIFF", "I;16B", {}),
        ("TIFF", "RGB", {"big_tiff": True}),
    ],
)
def test_headers_agree_with_pillow(fmt: str, mode: str, options: dict) -> None:
    image_module = pytest.importorskip("PIL.Image")
    for width, height in SIZES:
        buf = io.BytesIO()
        image_module.new(mode, (width, height)).save(buf, fmt, **options)
        assert image_size(buf.getvalue()) == (width, height), (fmt, mode, options)


def test_a_top_down_bmp_and_an_os2_bmp() -> None:
    data = bytearray(encoded(".bmp", 40, 30))
    data[22:26] = struct.pack("<i", -30)  # rows stored top-down
    assert image_size(bytes(data)) == (40, 30)
    core = b"BM" + bytes(12) + struct.pack("<IHHHH", 12, 640, 480, 1, 24)
    assert image_size(core) == (640, 480)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "header"),
        (b"these are not pixels\n", "header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG header"),  # cut before the frame header
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "header"),
        (b"BM\x00\x00", "header"),
        (b"II*\x00\x08\x00\x00\x00\x01\x00", "header"),
        (b"GIF89a\x01\x00\x01\x00", "header"),
    ],
)
def test_damaged_or_foreign_headers_are_refused(data: bytes, kind: str) -> None:
    with pytest.raises(InputError, match=f"x.jpg: not an image file, or its {kind} is damaged"):
        image_size(data, "x.jpg")


def test_a_jpeg_cut_inside_its_header_is_refused() -> None:
    data = encoded(".jpg", 32, 32)
    assert image_size(data[: data.index(b"\xff\xc0") + 9]) == (32, 32)
    for cut in (3, 20, 100, data.index(b"\xff\xc0") + 4):
        with pytest.raises(InputError, match="JPEG header is damaged or cut short"):
            image_size(data[:cut])


_NO_PILLOW_CHILD = """
import json, sys
sys.modules["PIL"] = None  # any `import PIL...` now raises ImportError
from pathlib import Path
import cv2, numpy as np, torch
import augtool
from model.data import compute_normalization
from model.networks import create_model
from model.evaluation import evaluate_run, predict_files
from model.checkpoint import save_checkpoint
from model.train import TrainConfig

root = Path(sys.argv[1])
rng = np.random.default_rng(0)
files = []
for c, cls in enumerate(("a", "b")):
    for ext in (".jpg", ".png", ".bmp", ".tif"):
        path = root / "raw" / cls / f"{cls}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (30 + c, 41, 3), dtype=np.uint8))
        files.append(path)
images = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
net = create_model("cellnet", 2, 32, generator=torch.Generator().manual_seed(0))
config = TrainConfig.for_arch("cellnet")
save_checkpoint(
    root / "model.pt", net, "cellnet", {}, ["a", "b"], 32,
    compute_normalization(images), config.to_dict(),
)
predictions = predict_files(root / "model.pt", files, device="cpu")
report = evaluate_run(
    root / "model.pt", root / "raw", device="cpu", read_folder=augtool.load_image_folder
).report
print(json.dumps({
    "predicted": [p.predicted for p in predictions],
    "n": report["n"],
    "pil": [m for m in sys.modules if m.split(".")[0] == "PIL" and sys.modules[m] is not None],
}))
"""


def test_prediction_and_evaluation_work_without_pillow(tmp_path: Path) -> None:
    """The GPU machine has no Pillow: predict and evaluate on image files must not need it."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_PILLOW_CHILD, str(tmp_path)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["predicted"]) == 8 and set(result["predicted"]) <= {"a", "b"}
    assert result["n"] == 8 and result["pil"] == []


def test_the_child_does_fail_when_pillow_is_needed(tmp_path: Path) -> None:
    """The blocking works: code that imports Pillow fails in such a child."""
    code = "import sys\nsys.modules['PIL'] = None\nfrom PIL import Image\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr
