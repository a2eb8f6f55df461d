"""Intervals that respect groups: the cluster bootstrap of accuracy and macro F1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.errors import OptionError
from augtool.store.dataset import Dataset, open_dataset
from cli import main
from model.folds import group_unit
from model.metrics import (
    classification_report,
    cluster_bootstrap,
    macro_f1_of_counts,
    report_from_confusion,
    wilson_interval,
)
from model.report import format_table

CLASSES = ["ALL", "AML", "normal"]


def width(interval: list[float] | tuple[float, float]) -> float:
    return interval[1] - interval[0]


def copies_like_originals(
    sources: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Sources with 8-14 copies each, every copy predicted exactly like its original.

    Returns:
        Labels, predictions, the source of each image and the originals' mask.
    """
    rng = np.random.default_rng(seed)
    labels, preds, groups, original = [], [], [], []
    for s in range(sources):
        label = int(rng.integers(3))
        pred = label if rng.random() < 0.8 else int((label + 1 + rng.integers(2)) % 3)
        n = 1 + int(rng.integers(8, 15))
        labels += [label] * n
        preds += [pred] * n
        groups += [f"src{s:03d}"] * n
        original += [True] + [False] * (n - 1)
    return np.array(labels), np.array(preds), groups, np.array(original)


def test_copies_predicted_like_their_original_widen_the_interval_to_the_originals() -> None:
    """The issue's test: about as wide as on the originals alone, wider than per image."""
    y, p, groups, orig = copies_like_originals()
    n_all, n_orig = len(y), int(orig.sum())
    assert n_all > 8 * n_orig
    everything = cluster_bootstrap(y, p, groups, 3)
    originals = cluster_bootstrap(
        y[orig], p[orig], [g for g, o in zip(groups, orig, strict=True) if o], 3
    )
    wilson_all = wilson_interval(int((y == p).sum()), n_all)
    wilson_orig = wilson_interval(int((y[orig] == p[orig]).sum()), n_orig)
    assert everything["groups"] == originals["groups"] == 60
    cluster, per_source = width(everything["accuracy_ci"]), width(originals["accuracy_ci"])
    assert 0.75 < cluster / per_source < 1.33
    assert 0.75 < cluster / width(wilson_orig) < 1.33
    assert cluster > 2 * width(wilson_all)  # sqrt(11) ~ 3.3 expected
    f1_cluster, f1_orig = width(everything["macro_f1_ci"]), width(originals["macro_f1_ci"])
    assert 0.75 < f1_cluster / f1_orig < 1.33


def test_independent_images_give_about_the_wilson_width() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(3, size=400)
    p = np.where(rng.random(400) < 0.85, y, (y + 1) % 3)
    boot = cluster_bootstrap(y, p, [f"img{i}" for i in range(400)], 3, resamples=4000)
    wilson = wilson_interval(int((y == p).sum()), 400)
    assert 0.85 < width(boot["accuracy_ci"]) / width(wilson) < 1.15
    accuracy = float((y == p).mean())
    assert boot["accuracy_ci"][0] < accuracy < boot["accuracy_ci"][1]


def test_vectorised_resampling_equals_a_loop_over_the_same_draws() -> None:
    y, p, groups, _ = copies_like_originals(sources=12, seed=3)
    boot = cluster_bootstrap(y, p, groups, 3, resamples=300, seed=5, confidence=0.9)
    names, index = np.unique(groups, return_inverse=True)
    draws = np.random.default_rng(5).multinomial(len(names), np.full(len(names), 1 / 12), 300)
    acc, f1 = [], []
    for counts in draws:
        weight = counts[index]
        cm = np.zeros((3, 3))
        np.add.at(cm, (y, p), weight)
        acc.append(np.trace(cm) / cm.sum())
        f1.append(report_from_confusion(cm.astype(np.int64), CLASSES)["macro_f1"])
    assert boot["accuracy_ci"] == pytest.approx(list(np.percentile(acc, [5, 95])))
    assert boot["macro_f1_ci"] == pytest.approx(list(np.percentile(f1, [5, 95])))


def test_macro_f1_of_counts_matches_the_report() -> None:
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 20, size=(5, 4, 4))
    stack[0, 3, :] = 0
    stack[0, :, 3] = 0  # class 3 absent from labels and predictions: left out of the mean
    expected = [report_from_confusion(cm, list("abcd"))["macro_f1"] for cm in stack]
    np.testing.assert_allclose(macro_f1_of_counts(stack), expected)


def test_fixed_seed_gives_the_same_interval() -> None:
    y, p, groups, _ = copies_like_originals()
    first = cluster_bootstrap(y, p, groups, 3, seed=7)
    assert cluster_bootstrap(y, p, groups, 3, seed=7) == first
    assert cluster_bootstrap(y, p, groups, 3, seed=8)["accuracy_ci"] != first["accuracy_ci"]
    assert first["resamples"] == 2000 and first["seed"] == 7


def test_one_group_gives_no_interval_and_says_why() -> None:
    y, p = np.array([0, 1, 2, 0]), np.array([0, 1, 1, 0])
    boot = cluster_bootstrap(y, p, ["smear1"] * 4, 3)
    assert boot["accuracy_ci"] is None and boot["macro_f1_ci"] is None
    assert "at least 2 groups" in boot["reason"] and "has 1" in boot["reason"]
    report = classification_report(y, p, CLASSES, groups=["smear1"] * 4, group_unit="groups")
    json.dumps(report, allow_nan=False)
    text = format_table(report)
    assert "no cluster interval: a cluster bootstrap needs at least 2 groups" in text
    assert "assumes independent images" in text


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"resamples": 10}, "resamples"),
        ({"resamples": 2000.0}, "resamples"),
        ({"confidence": 1.0}, "confidence"),
        ({"num_classes": 0}, "num_classes"),
        ({"groups": ["a", "b"]}, "groups"),
        ({"y_pred": np.array([0, 1])}, "y_pred"),
        ({"y_true": np.array([0, 1, 5])}, "y_true"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict, name: str) -> None:
    args = {
        "y_true": np.array([0, 1, 2]),
        "y_pred": np.array([0, 1, 1]),
        "groups": ["a", "b", "c"],
        "num_classes": 3,
        **kwargs,
    }
    with pytest.raises(OptionError) as caught:
        cluster_bootstrap(**args)
    assert caught.value.option == name
    assert str(caught.value).startswith(f"{name}: ")


def test_report_and_table_show_both_intervals() -> None:
    y, p, groups, orig = copies_like_originals()
    transforms = ["original" if o else "rotate" for o in orig]
    report = classification_report(y, p, CLASSES, transforms, groups=groups, group_unit="sources")
    boot = report["cluster_bootstrap"]
    assert boot["unit"] == "sources" and boot["groups"] == 60
    assert report["accuracy_ci95"] == list(wilson_interval(int((y == p).sum()), len(y)))
    json.dumps(report, allow_nan=False)
    lines = format_table(report).splitlines()
    accuracy = next(i for i, line in enumerate(lines) if line.startswith("Accuracy"))
    assert "95% CI" in lines[accuracy] and "cluster bootstrap over 60 sources" in lines[accuracy]
    assert "95% Wilson CI" in lines[accuracy + 1]
    assert lines[accuracy + 1].endswith("assumes independent images")
    macro = next(line for line in lines if line.startswith("Macro F1"))
    assert "cluster bootstrap over 60 sources" in macro
    without = format_table(classification_report(y, p, CLASSES))
    assert "cluster" not in without and "assumes independent images" in without


def test_group_unit_names_what_was_resampled() -> None:
    empty = np.zeros(0)

    def data(attrs: dict) -> Dataset:
        return Dataset(empty, empty, empty, CLASSES, [], [], [], attrs)

    assert group_unit(data({"source": "raw image folder"})) == "images"
    assert group_unit(data({"recipe": {"group_regex": r"BloodImage_\d+"}})) == "groups"
    assert group_unit(data({"recipe": {"group_regex": None}})) == "sources"
    assert group_unit(data({})) == "sources"


def test_evaluate_prints_the_cluster_interval_first(
    trained_run: Path, tiny_h5: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main, ["evaluate", str(trained_run / "model.pt"), str(tiny_h5), str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "metrics.json").read_text())
    boot = report["cluster_bootstrap"]
    # tests/h5data.py makes one source per image: as many groups as test images.
    n_test = len(open_dataset(tiny_h5, "test"))
    assert boot["groups"] == report["n"] == n_test and boot["unit"] == "sources"
    low, high = boot["accuracy_ci"]
    assert 0 <= low <= report["accuracy"] <= high <= 1
    assert f"cluster bootstrap over {report['n']} sources" in result.output
    assert "assumes independent images" in result.output
