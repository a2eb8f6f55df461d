"""`train --extra-train`: more training images that are never scored, and never leak."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from augtool.errors import InputError
from augtool.store.dataset import Dataset, open_dataset
from tests.h5data import blob_images, make_blob_h5, write_h5

torch = pytest.importorskip("torch")
from model.config import TrainConfig  # noqa: E402
from model.folds import group_key  # noqa: E402
from model.run import train_run, with_extra_train  # noqa: E402

CLASSES = ("ALL", "AML", "normal")


def _dataset(groups: list[str], labels: list[int], class_names=CLASSES, size: int = 16) -> Dataset:
    n = len(groups)
    rng = np.random.default_rng(len(groups))
    return Dataset(
        images=blob_images(np.asarray(labels), size, rng),
        labels=np.asarray(labels, dtype=np.int64),
        splits=np.full(n, "train", dtype=object),
        class_names=list(class_names),
        names=[
            f"{class_names[y]}/{g}__00_original.png" for g, y in zip(groups, labels, strict=True)
        ],
        transforms=["original"] * n,
        groups=list(groups),
    )


def test_group_key_matches_a_smear_file_name_and_its_regex_match() -> None:
    assert group_key("BloodImage_00009.jpg") == group_key("BloodImage_00009")
    assert group_key("Patient_7.PNG") == group_key("patient_7")
    assert group_key("run.v2") == "run.v2"  # not an image suffix: kept


def test_extra_images_join_train_with_labels_renumbered_by_name() -> None:
    train = _dataset(["s1", "s2"], [0, 2])
    extra = _dataset(["e1", "e2", "e3"], [0, 1, 0], class_names=("AML", "normal"))
    combined = with_extra_train(train, extra, {"v1", "t1"}, "extra.h5")
    assert len(combined) == 5
    assert combined.labels.tolist() == [0, 2, 1, 2, 1]  # AML=1, normal=2 in the data
    assert combined.groups[2:] == ["e1", "e2", "e3"]
    assert all(name.startswith("extra:") for name in combined.names[2:])
    assert np.array_equal(combined.images[2:], extra.images)


def test_extra_sharing_a_group_with_val_or_test_is_refused() -> None:
    train = _dataset(["s1"], [0])
    extra = _dataset(["BloodImage_00009.jpg", "BloodImage_00100.jpg"], [0, 1])
    with pytest.raises(InputError, match=r"extra\.h5: shares 1 group.*BloodImage_00009\.jpg.*leak"):
        with_extra_train(train, extra, {"BloodImage_00009"}, "extra.h5")


def test_extra_with_another_size_or_an_unknown_class_is_refused() -> None:
    train = _dataset(["s1"], [0])
    with pytest.raises(InputError, match=r"16x16.*expand both with the same size"):
        with_extra_train(train, _dataset(["e"], [0], size=24), set(), "extra.h5")
    with pytest.raises(InputError, match="class CLL is not in the data"):
        with_extra_train(train, _dataset(["e"], [0], class_names=("CLL",)), set(), "extra.h5")


def test_train_run_adds_the_extra_images_to_train_only(tmp_path: Path) -> None:
    data = make_blob_h5(tmp_path / "data.h5", [12, 12, 12], 32, seed=1, val_fraction=0.25)
    labels = np.repeat(np.arange(3), 4)
    extra = write_h5(
        tmp_path / "extra.h5",
        blob_images(labels, 32, np.random.default_rng(9)),
        labels,
        ["all"] * len(labels),
        CLASSES,
    )
    # write_h5 names its groups like make_blob_h5 does: rename them so they differ
    import h5py

    with h5py.File(extra, "r+") as fh:
        groups = [f"other/{i}" for i in range(len(labels))]
        del fh["sources/group"]
        fh.create_dataset("sources/group", data=groups, dtype=h5py.string_dtype("utf-8"))
    config = TrainConfig.for_arch("leukemianet", epochs=1, batch_size=8)
    base = train_run(data, tmp_path / "base", config, device="cpu")
    more = train_run(data, tmp_path / "more", config, device="cpu", extra_train=extra)
    assert more.metrics["splits"]["train"] == base.metrics["splits"]["train"] + len(labels)
    assert more.metrics["splits"]["val"] == base.metrics["splits"]["val"]
    assert more.metrics["splits"]["test"] == base.metrics["splits"]["test"]
    assert more.metrics["extra_train"] == str(extra)
    assert "extra_train" not in base.metrics
    recorded = json.loads((tmp_path / "more" / "metrics.json").read_text())
    assert recorded["extra_train"] == str(extra)


def test_cli_refuses_extra_data_that_leaks(tmp_path: Path) -> None:
    import cli

    data = make_blob_h5(tmp_path / "data.h5", [6, 6, 6], 32, seed=2)
    result = CliRunner().invoke(
        cli.main,
        ["train", str(data), str(tmp_path / "run"), "--extra-train", str(data), "--epochs", "1"],
    )
    assert result.exit_code != 0
    assert "shares" in result.output and "would leak" in result.output
    assert not (tmp_path / "run").exists()
    assert open_dataset(data).names  # the data is untouched
