"""Recipes: the paper's file is the default, albumentations with determinism, plug-ins, errors."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from augtool.errors import OptionError
from augtool.pipeline.recipe_spec import paper_recipe
from augtool.pipeline.recipe_toml import read_recipe_file, recipe_from_dict
from tests.child_process import run_cli
from tests.conftest import smear_like, write_image
from tests.mixed_recipe import albumentations_json, images_and_manifest, mixed_recipe

SMALL = {"size": 48}


# --- the paper's recipe -------------------------------------------------------------------


def test_paper_recipe_file_is_exactly_the_default(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    assert read_recipe_file("paper") == paper_recipe()
    code, out = run_cli("expand", raw, tmp_path / "default", "--target", 40, "--size", 48, "-q")
    assert code == 0, out
    code, out = run_cli(
        "expand", raw, tmp_path / "file", "--target", 40, "--size", 48, "-q", "--recipe", "paper"
    )
    assert code == 0, out
    a, b = images_and_manifest(tmp_path / "default"), images_and_manifest(tmp_path / "file")
    assert len(a) == 41
    assert a == b
    recorded = json.loads((tmp_path / "file" / "augtool.json").read_text())
    assert recorded["recipe"]["pipeline"]["name"] == "paper"
    assert [t["name"] for t in recorded["recipe"]["pipeline"]["transform"]][:2] == [
        "gray",
        "blur_rgb",
    ]


def test_recorded_recipe_rebuilds_the_same_recipe() -> None:
    for name in ("paper", "colour", "curator"):
        recipe = read_recipe_file(name)
        assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


# --- albumentations: determinism ------------------------------------------------------------


def test_mixed_recipe_same_bytes_any_workers_and_order(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One or two worker processes, files listed in reverse: the same bytes (and on Dask
    workers: tests/test_dask.py, on the cluster that module starts anyway)."""
    recipe = read_recipe_file(mixed_recipe(tmp_path / "mixed.toml"))
    raw = make_raw()
    opts = {"target": 40, "pipeline": recipe, "recipe_named": True, **SMALL}
    expand(raw, tmp_path / "w1", ExpandOptions(workers=1, **opts))
    expand(raw, tmp_path / "w2", ExpandOptions(workers=2, **opts))
    reference = images_and_manifest(tmp_path / "w1")
    assert images_and_manifest(tmp_path / "w2") == reference
    names = list(reference)
    for step in ("rotate", "hsv", "noise_a", "pipe", "hue"):
        assert any(f"_{step}.png" in n for n in names), step
    # Each output is seeded from its own generator: the albumentations outputs differ.
    hsv = [v for k, v in reference.items() if k.endswith("_hsv.png")]
    assert len(set(hsv)) == len(hsv) > 1

    rows = (tmp_path / "w1" / "manifest.csv").read_text().splitlines()
    hsv_row = next(r for r in rows if "_hsv.png" in r)
    assert '""seed""' in hsv_row and '""albumentations"": ""2.0' in hsv_row
    recorded = json.loads((tmp_path / "w1" / "augtool.json").read_text())
    assert recorded["versions"]["albumentations"].startswith("2.0")
    step = recorded["recipe"]["pipeline"]["transform"][1]
    assert step["albumentations"]["transform"]["__class_fullname__"] == "HueSaturationValue"

    real_walk, real_scandir = os.walk, os.scandir

    def reversed_walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            dirnames.reverse()
            yield dirpath, dirnames, list(reversed(filenames))

    def reversed_scandir(path):
        return list(reversed(list(real_scandir(path))))

    with monkeypatch.context() as patch:
        patch.setattr(
            "augtool.engine.scan.os", SimpleNamespace(walk=reversed_walk, scandir=reversed_scandir)
        )
        expand(raw, tmp_path / "reversed", ExpandOptions(workers=1, **opts))
    assert images_and_manifest(tmp_path / "reversed") == reference

    report = verify(tmp_path / "w1", regenerate_raw=raw, workers=1)
    assert report.ok, report.problems
    assert report.regenerated


class _Events:
    """A reporter that records what it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def start(self, phase: str, total: int) -> None:
        self.events.append(("start", phase))

    def advance(self, n: int) -> None:
        pass

    def warn(self, message: str) -> None:
        self.events.append(("warn", str(message)))


def test_verify_names_the_library_versions_that_differ_before_comparing(
    make_raw, tmp_path: Path
) -> None:
    recipe = read_recipe_file(mixed_recipe(tmp_path / "mixed.toml"))
    raw = make_raw({"ALL": 2, "AML": 2})
    out = tmp_path / "out"
    opts = ExpandOptions(target=12, pipeline=recipe, recipe_named=True, workers=1, **SMALL)
    expand(raw, out, opts)
    meta = json.loads((out / "augtool.json").read_text())
    installed = meta["versions"]["albumentations"]
    meta["versions"]["albumentations"] = "2.0.1"
    meta["versions"]["opencv"] = "4.9.0"
    (out / "augtool.json").write_text(json.dumps(meta))
    reporter = _Events()
    report = verify(out, regenerate_raw=raw, workers=1, reporter=reporter)
    import cv2

    assert report.version_differences == [
        f"opencv 4.9.0 -> {cv2.__version__}",
        f"albumentations 2.0.1 -> {installed}",
    ]
    warnings = [i for i, (kind, _) in enumerate(reporter.events) if kind == "warn"]
    assert len(warnings) == 1, reporter.events  # one line
    notice = reporter.events[warnings[0]][1]
    assert "opencv 4.9.0 ->" in notice and "albumentations 2.0.1 ->" in notice
    replay = [i for i, (kind, phase) in enumerate(reporter.events) if kind == "start"]
    assert replay[1:] and warnings[0] < replay[1]  # after the hashes, before the replay
    # The bytes are what decide: the same bytes under other versions verify.
    assert report.ok and report.regenerated, report.problems
    # Different bytes are then put down to the versions in the closing line.
    first = sorted((out / "train").rglob("*.png"))[0]
    first.write_bytes(first.read_bytes() + b"x")
    report = verify(out, regenerate_raw=raw, workers=1)
    assert not report.ok
    assert "other library versions: opencv 4.9.0 ->" in report.failure()


def test_verify_says_nothing_of_versions_when_they_match(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"ALL": 2, "AML": 2})
    expand(raw, tmp_path / "out", ExpandOptions(target=8, workers=1, **SMALL))
    reporter = _Events()
    report = verify(tmp_path / "out", regenerate_raw=raw, workers=1, reporter=reporter)
    assert report.ok and report.version_differences == []
    assert [e for e in reporter.events if e[0] == "warn"] == []


def test_mixed_recipe_to_hdf5_matches_the_folder_and_regenerates(make_raw, tmp_path: Path) -> None:
    import cv2

    from augtool.store.dataset import open_dataset

    recipe = read_recipe_file(mixed_recipe(tmp_path / "mixed.toml"))
    raw = make_raw({"ALL": 2, "AML": 2})
    opts = ExpandOptions(target=14, pipeline=recipe, recipe_named=True, workers=1, **SMALL)
    expand(raw, tmp_path / "f", opts)
    expand(raw, tmp_path / "o.h5", opts)
    data = open_dataset(tmp_path / "o.h5")
    assert len(data) == 14
    for i in range(len(data)):
        png = cv2.imread(str(tmp_path / "f" / data.names[i]))
        assert np.array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), data.images[i])
    report = verify(tmp_path / "o.h5", regenerate_raw=raw, workers=1)
    assert report.ok and report.regenerated, report.problems


def test_albumentations_at_work_or_output(make_raw, tmp_path: Path) -> None:
    """The same serialized transform at the working resolution and at the output size."""
    a = albumentations_json()
    text = "\n".join(
        f"[[transform]]\nname = '{n}'\nalbumentations = '''{a['noise']}'''\nat = '{at}'\n"
        for n, at in (("out", "output"), ("wrk", "work"))
    )
    (tmp_path / "r.toml").write_text(text)
    recipe = read_recipe_file(tmp_path / "r.toml")
    raw = make_raw({"ALL": 1}, size=(320, 240))
    expand(
        raw,
        tmp_path / "o",
        ExpandOptions(target=3, pipeline=recipe, recipe_named=True, split="none", **SMALL),
    )
    import cv2

    files = sorted((tmp_path / "o" / "ALL").glob("*.png"))
    images = {f.stem.split("_")[-1]: cv2.imread(str(f)).astype(np.float32) for f in files}
    original = images["original"]
    # Noise added at 48 px stays as strong; added at 240 px it is averaged away by the resize.
    assert np.abs(images["out"] - original).mean() > 2 * np.abs(images["wrk"] - original).mean()


# --- plug-ins -------------------------------------------------------------------------------

PLUGIN = '''
"""A plug-in transform outside augtool."""
from dataclasses import dataclass

import numpy as np

from augtool import StepType


@dataclass(frozen=True)
class InvertSettings:
    strength_range: tuple[float, float] = (0.5, 1.0)


def sample(rng: np.random.Generator, settings: InvertSettings) -> dict:
    return {"strength": float(rng.uniform(*settings.strength_range))}


def apply(image: np.ndarray, params: dict) -> np.ndarray:
    out = image * (1 - params["strength"]) + (255 - image.astype(float)) * params["strength"]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


INVERT = StepType(
    "invert", "partial negative", InvertSettings, sample, apply, moves_pixels=False
)
'''


def test_plugin_from_a_module_outside_augtool(
    make_raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_invert.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(plugins))
    (tmp_path / "r.toml").write_text(
        "[[transform]]\nname = 'neg'\nplugin = 'invert'\nstrength_range = [0.9, 1.0]\n"
        "[[transform]]\nname = 'flip_x'\n"
    )
    raw = make_raw()
    args = ["--target", 30, "--size", 48, "-q", "--recipe", tmp_path / "r.toml"]
    # By module name (on the import path), and by the path of its file, in forked workers.
    code, out = run_cli("expand", raw, tmp_path / "w1", "-j", 1, "--plugin", "my_invert", *args)
    assert code == 0, out
    plugin_file = plugins / "my_invert.py"
    code, out = run_cli("expand", raw, tmp_path / "w2", "-j", 2, "--plugin", plugin_file, *args)
    assert code == 0, out
    recorded = json.loads((tmp_path / "w1" / "augtool.json").read_text())["recipe"]["pipeline"]
    assert recorded["transform"][0]["plugin"] == "invert"
    assert recorded["transform"][0]["plugin_module"] == "my_invert"
    assert images_and_manifest(tmp_path / "w1") == images_and_manifest(tmp_path / "w2")
    rows = (tmp_path / "w1" / "manifest.csv").read_text().splitlines()
    neg = [r for r in rows if "_neg.png" in r]
    assert neg and all("strength" in r for r in neg)
    import cv2

    name = neg[0].split(",")[0]
    image = cv2.imread(str(tmp_path / "w1" / name)).astype(float)
    first = re.sub(r"__\d+_neg\.png$", "__00_original.png", name)
    original = cv2.imread(str(tmp_path / "w1" / first)).astype(float)
    # Nearly a negative: the image and its original are anti-correlated.
    assert np.corrcoef(image.ravel(), original.ravel())[0, 1] < -0.5


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[[transform]]\nname = 'gray'\n\n[[transform]]\nname = 'sparkle'\n",
            r"line 5, transform\[1\]\.name.*sparkle",
        ),
        (
            "[[transform]]\nname = 'blur_rgb'\nsigma_range = [8, 4]\n",
            r"line 3, transform\[0\]\.sigma_range.*low bound",
        ),
        (
            "[[transform]]\nname = 'rotate'\nrotate_range = 'wide'\n",
            r"line 3, transform\[0\]\.rotate_range.*\[low, high\]",
        ),
        (
            "[[transform]]\nname = 'rotate'\nangle = [1, 2]\n",
            r"line 3, transform\[0\]\.angle: unknown parameter",
        ),
        ("[[transform]]\nname = 'gray'\ncolour = \n", r"malformed TOML.*line 3"),
        ("[preprocess]\nresize = 'stretch'\n[[transform]]\nname='gray'\n", r"line 2.*resize"),
        ("[[transform]]\nname = 'x'\nplugin = 'no_such_q'\n", r"line 3.*no_such_q.*--plugin"),
        ("[[transform]]\nname = 'original'\n", r"line 2, transform\[0\]\.name"),
        ("colour = 1\n[[transform]]\nname = 'gray'\n", r"line 1, colour: unknown key"),
        (
            "[[transform]]\nnme = 'rotate'\n",
            r"transform\[0\]\.name: every transform needs a name \(this one has 'nme'\)",
        ),
    ],
)
def test_bad_recipes_refused_before_anything_is_written(
    make_raw, tmp_path: Path, text: str, expected: str
) -> None:
    raw = make_raw({"ALL": 2})
    (tmp_path / "bad.toml").write_text(text)
    code, out = run_cli("expand", raw, tmp_path / "out", "--recipe", tmp_path / "bad.toml")
    assert code == 2, out
    assert "--recipe" in out and re.search(expected, out, re.S), out
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_wrong_albumentations_version_refused(make_raw, tmp_path: Path) -> None:
    a = json.loads(albumentations_json()["hsv"])
    a["__version__"] = "1.4.24"
    (tmp_path / "bad.toml").write_text(
        f"[[transform]]\nname = 'gray'\n[[transform]]\nname = 'hsv'\n"
        f"albumentations = '''{json.dumps(a)}'''\n"
    )
    raw = make_raw({"ALL": 2})
    code, out = run_cli("expand", raw, tmp_path / "out", "--recipe", tmp_path / "bad.toml")
    assert code == 2, out
    assert "line 5, transform[1].albumentations.__version__" in out
    assert "1.4.24" in out
    assert not (tmp_path / "out").exists()


def test_unknown_albumentations_class_refused(tmp_path: Path) -> None:
    a = json.loads(albumentations_json()["hsv"])
    a["transform"]["__class_fullname__"] = "NoSuchTransform"
    (tmp_path / "bad.toml").write_text(
        f"[[transform]]\nname = 'hsv'\nalbumentations = '''{json.dumps(a)}'''\n"
    )
    with pytest.raises(OptionError, match=r"line 3, transform\[0\]\.albumentations\.transform"):
        read_recipe_file(tmp_path / "bad.toml")


@pytest.mark.parametrize("nested", [False, True], ids=["alone", "in a Compose"])
def test_an_argument_albumentations_would_ignore_is_refused(tmp_path: Path, nested: bool) -> None:
    """A misspelt argument is ignored by albumentations with a warning; a recipe refuses it."""
    a = json.loads(albumentations_json()["hsv"])
    a["transform"]["hue_shift_limt"] = [-5.0, 5.0]
    if nested:
        a["transform"] = {
            "__class_fullname__": "Compose",
            "p": 1.0,
            "transforms": [{"__class_fullname__": "VerticalFlip", "p": 1.0}, a["transform"]],
        }
    (tmp_path / "bad.toml").write_text(
        f"[[transform]]\nname = 'hsv'\nalbumentations = '''{json.dumps(a)}'''\n"
    )
    with pytest.raises(OptionError) as err:
        read_recipe_file(tmp_path / "bad.toml")
    assert "line 3, transform[0].albumentations.transform" in str(err.value)
    assert "HueSaturationValue has no argument(s) 'hue_shift_limt'" in str(err.value)


def test_a_transform_as_albumentations_wrote_it_runs_without_a_warning(
    make_raw, tmp_path: Path
) -> None:
    """``A.to_dict(A.SafeRotate(...))`` writes arguments SafeRotate does not take.

    albumentations warns about them each time it reads them back (in every
    worker); they are its own, so the recipe is taken and nothing is said.
    """
    A = pytest.importorskip("albumentations")
    written = A.to_dict(A.SafeRotate(limit=30, p=1.0))
    with pytest.warns(UserWarning, match="are not valid for transform SafeRotate"):
        A.from_dict(written)  # albumentations' own round trip complains
    (tmp_path / "r.toml").write_text(
        f"[[transform]]\nname = 'srot'\nalbumentations = '''{json.dumps(written)}'''\n"
    )
    raw = make_raw({"ALL": 2, "AML": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out = run_cli(
            "expand", raw, tmp_path / "out", "--recipe", tmp_path / "r.toml", "--target", 8,
            "--size", 48, "--split", "none", "--workers", 1,
        )  # fmt: skip
    assert code == 0, out
    assert [str(w.message) for w in caught] == []
    assert len(list((tmp_path / "out").rglob("*.png"))) == 8


def test_missing_albumentations_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = mixed_recipe(tmp_path / "mixed.toml").read_text()
    monkeypatch.setitem(sys.modules, "albumentations", None)  # makes the import fail
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(
        OptionError, match=r"not installed here: pip install -e '\.\[albumentations\]'"
    ):
        read_recipe_file(tmp_path / "m.toml")


def test_cli_recipe_and_transforms_conflict(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"ALL": 2})
    code, out = run_cli(
        "expand", raw, tmp_path / "out", "--recipe", "colour", "--transforms", "gray"
    )
    assert code == 2 and "--transforms" in out


# --- preprocess, splits, dry run ------------------------------------------------------------


def test_preprocess_pad_crop_and_reinhard(make_raw, tmp_path: Path) -> None:
    raw = make_raw({"ALL": 2, "AML": 2}, size=(160, 80))
    reference = smear_like(np.random.default_rng(5), 64, 64)
    reference[:] = (reference * [0.5, 0.8, 1.0]).astype(np.uint8)  # a bluer lab
    write_image(tmp_path / "ref.png", reference)
    outs = {}
    for policy, stain in (
        ("squash", "none"),
        ("pad", "none"),
        ("crop", "none"),
        ("squash", "reinhard"),
    ):
        body = f"[preprocess]\nresize = '{policy}'\nstain = '{stain}'\n"
        if stain != "none":
            body += "reference = 'ref.png'\n"
        (tmp_path / "r.toml").write_text(body + "[[transform]]\nname = 'flip_y'\n")
        recipe = read_recipe_file(tmp_path / "r.toml")
        out = tmp_path / f"{policy}-{stain}"
        expand(raw, out, ExpandOptions(target=8, pipeline=recipe, recipe_named=True, **SMALL))
        outs[(policy, stain)] = out
        meta = json.loads((out / "augtool.json").read_text())
        assert meta["recipe"]["pipeline"]["preprocess"]["resize"] == policy
        assert meta["recipe"]["pipeline"]["preprocess"]["stain"] == stain
    import cv2

    def original(out: Path) -> np.ndarray:
        f = next(out.rglob("ALL_000__00_original.png"))
        return cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)

    pad = original(outs[("pad", "none")])
    assert pad[:10].max() == 0 and pad[-10:].max() == 0  # black bars above and below
    assert original(outs[("crop", "none")]).min(axis=(0, 1)).min() > 0
    from augtool.ops.stain import lab_stats

    ref_mean, _ = lab_stats(reference)
    before, _ = lab_stats(original(outs[("squash", "none")]))
    after, _ = lab_stats(original(outs[("squash", "reinhard")]))
    assert (
        np.abs(np.subtract(after, ref_mean)).sum()
        < 0.3 * np.abs(np.subtract(before, ref_mean)).sum()
    )
    meta = json.loads((outs[("squash", "reinhard")] / "augtool.json").read_text())
    assert len(meta["recipe"]["pipeline"]["preprocess"]["reference_mean"]) == 3
    # The recorded statistics replay without the reference file.
    (tmp_path / "ref.png").unlink()
    assert verify(outs[("squash", "reinhard")], regenerate_raw=raw, workers=1).ok


def test_originals_only_in_val_test_for_any_recipe(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    code, out = run_cli(
        "expand",
        raw,
        tmp_path / "o",
        "--recipe",
        "curator",
        "--target",
        40,
        "--size",
        48,
        "--split",
        "0.6,0.2,0.2",
        "--no-augment-test",
        "-q",
    )
    assert code == 0, out
    rows = (tmp_path / "o" / "manifest.csv").read_text().splitlines()[1:]
    held_out = [r for r in rows if r.startswith(("val/", "test/"))]
    assert held_out and all("_original." in r.split(",")[0] for r in held_out)
    assert len(rows) == 40


def test_dry_run_shows_per_transform_counts(make_raw, tmp_path: Path) -> None:
    raw = make_raw()
    code, out = run_cli(
        "expand", raw, tmp_path / "o", "--recipe", "colour", "--target", 32, "--dry-run"
    )
    assert code == 0, out
    assert "recipe: colour (5 transforms)" in out
    line = next(x for x in out.splitlines() if x.startswith("transforms:"))
    counts = dict(part.rsplit(" ", 1) for part in line.removeprefix("transforms: ").split(", "))
    assert counts["original"] == "12"
    assert sum(int(v) for v in counts.values()) == 32
    assert {"brightness", "exposure", "hue", "saturation", "gray"} <= set(counts)
    assert not (tmp_path / "o").exists()


# --- the curator set and preview ------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["brightness", "exposure", "hue", "saturation", "noise", "cutout", "rot90", "zoom"]
)
def test_curator_transforms_are_pure_and_change_the_image(name: str) -> None:
    from augtool.pipeline.builtins import STEPS

    entry = STEPS[name]
    settings = entry.settings()
    image = smear_like(np.random.default_rng(1), 80, 60)
    outputs = []
    for seed in (3, 3, 4):
        params = entry.sample(np.random.default_rng(seed), settings)
        assert json.loads(json.dumps(params)) == params  # recorded as JSON, unchanged
        out = entry.run(image.copy(), params, (1.0, 1.0), 32)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        outputs.append(out)
    assert np.array_equal(outputs[0], outputs[1])
    from augtool.store.decode import resize_to

    assert not np.array_equal(outputs[0], resize_to(image, 32))


def test_preview_draws_a_recipe(tmp_path: Path) -> None:
    write_image(tmp_path / "cell.png", smear_like(np.random.default_rng(2), 64, 64))
    code, out = run_cli(
        "preview",
        tmp_path / "cell.png",
        tmp_path / "s.png",
        "--recipe",
        "curator",
        "--size",
        32,
    )
    assert code == 0, out
    assert "16 tiles" in out  # the original and the curator recipe's 15 transforms
    from augtool.tools.preview import sheet_tiles

    tiles, about = sheet_tiles(tmp_path / "cell.png", 32, recipe=read_recipe_file("colour"))
    assert [t.title for t in tiles] == [
        "original",
        "brightness",
        "exposure",
        "hue",
        "saturation",
        "gray",
    ]
    assert "recipe colour" in about
    assert tiles[1].detail.startswith("delta ")


def test_preview_of_a_short_recipe_fits_its_rows_to_its_tiles(tmp_path: Path) -> None:
    write_image(tmp_path / "cell.png", smear_like(np.random.default_rng(2), 64, 64))
    (tmp_path / "two.toml").write_text(
        '[[transform]]\nname = "rotate"\n\n[[transform]]\nname = "gray"\n'
    )
    sheet = tmp_path / "s.png"
    code, out = run_cli("preview", tmp_path / "cell.png", sheet, "--recipe", tmp_path / "two.toml")
    assert code == 0, out  # the default of 5 columns is more than 3 tiles: it shrinks to 3
    assert "3 tiles" in out
    code, out = run_cli(
        "preview", tmp_path / "cell.png", tmp_path / "t.png", "--recipe", tmp_path / "two.toml",
        "--columns", 3,
    )  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "t.png").read_bytes() == sheet.read_bytes()
    code, out = run_cli(
        "preview", tmp_path / "cell.png", tmp_path / "u.png", "--recipe", tmp_path / "two.toml",
        "--columns", 5,
    )  # fmt: skip
    assert code == 2 and "--columns: must be between 1 and 3, got 5" in out, out
