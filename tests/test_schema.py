"""augtool.store.schema: one schema, and every reader refuses a broken file the same way."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from augtool.engine.expand import expand
from augtool.engine.options import ExpandOptions
from augtool.engine.verify import verify
from augtool.errors import InputError
from augtool.store import schema
from augtool.store.dataset import open_dataset
from model.run import needs_streaming
from model.stream import open_lazy
from model.torch_dataset import AugtoolImages
from tests.h5data import make_blob_h5

#: Every key a reader needs: datasets, root attributes, the split names attribute.
REQUIRED_DATASETS = [
    schema.IMAGES,
    *(c.key for c in (*schema.IMAGE_COLUMNS, *schema.SOURCE_COLUMNS) if c.required),
]


def refusals(path: Path) -> list[str]:
    """The message each reader gives for ``path`` (verify: its problem lines)."""
    messages = []
    for read in (open_dataset, open_lazy, AugtoolImages):
        with pytest.raises(InputError) as caught:
            read(path)
        messages.append(str(caught.value))
    messages.append("\n".join(verify(path).problems))
    return messages


@pytest.fixture(scope="module")
def good_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "good.h5"
    return make_blob_h5(path, per_class=[3, 3, 3], size=12)


def test_the_good_file_is_read_by_every_reader(good_h5: Path) -> None:
    data = open_dataset(good_h5)
    lazy = open_lazy(good_h5)
    assert len(data) == len(lazy) == len(AugtoolImages(good_h5)) == 9
    assert data.names == lazy.names and data.groups == lazy.groups
    report = verify(good_h5)
    assert report.checked == 9
    assert report.problems == ["the recorded counts are missing"]  # h5data writes no counts


@pytest.mark.parametrize("key", REQUIRED_DATASETS)
def test_a_missing_dataset_is_refused_alike_by_every_reader(
    key: str, good_h5: Path, tmp_path: Path
) -> None:
    path = shutil.copy(good_h5, tmp_path / "broken.h5")
    with h5py.File(path, "r+") as fh:
        del fh[key]
    expected = str(schema.incomplete(Path(path), f"dataset {key!r} is missing"))
    assert refusals(Path(path)) == [expected] * 4


def test_the_streaming_probe_refuses_a_file_without_images_alike(
    good_h5: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(good_h5, tmp_path / "broken.h5"))
    with h5py.File(path, "r+") as fh:
        del fh[schema.IMAGES]
    with pytest.raises(InputError) as caught:
        needs_streaming(path, 1 << 30)
    assert [str(caught.value)] == refusals(path)[:1]
    assert "dataset 'images' is missing" in str(caught.value)


@pytest.mark.parametrize("name", schema.REQUIRED_ATTRS)
def test_a_missing_root_attribute_is_refused_alike(
    name: str, good_h5: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(good_h5, tmp_path / "broken.h5"))
    with h5py.File(path, "r+") as fh:
        del fh.attrs[name]
    messages = refusals(path)
    assert len(set(messages)) == 1 and f"root attribute {name!r} is missing" in messages[0]


def test_missing_split_names_and_a_short_column_are_refused_alike(
    good_h5: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(good_h5, tmp_path / "names.h5"))
    with h5py.File(path, "r+") as fh:
        del fh["split"].attrs[schema.SPLIT_NAMES_ATTR]
    messages = refusals(path)
    assert len(set(messages)) == 1 and "'names' of dataset 'split' is missing" in messages[0]
    path = Path(shutil.copy(good_h5, tmp_path / "short.h5"))
    with h5py.File(path, "r+") as fh:
        values = fh["transform"][()][:-1]
        del fh["transform"]
        fh.create_dataset("transform", data=values, dtype=h5py.string_dtype("utf-8"))
    messages = refusals(path)
    assert len(set(messages)) == 1 and "dataset 'transform' has shape (8,)" in messages[0]


def test_labels_outside_the_class_list_are_refused_alike(good_h5: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(good_h5, tmp_path / "labels.h5"))
    with h5py.File(path, "r+") as fh:
        fh["labels"][0] = 7
    messages = refusals(path)
    assert len(set(messages)) == 1 and "'labels' has labels outside 0..2" in messages[0]


def test_the_optional_fold_columns_may_be_absent(good_h5: Path) -> None:
    with h5py.File(good_h5, "r") as fh:
        assert "fold" not in fh
    assert open_dataset(good_h5).folds is None and open_lazy(good_h5).folds is None


def test_a_manifest_missing_a_column_is_refused_alike(make_raw, tmp_path: Path) -> None:
    out = tmp_path / "out"
    expand(make_raw(), out, ExpandOptions(target=12, size=16, workers=1, split="none"))
    manifest = out / schema.MANIFEST_NAME
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for column in schema.REQUIRED_COLUMNS:
        kept = [c for c in schema.MANIFEST_COLUMNS if c != column]
        with manifest.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=kept, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        messages = []
        for read in (open_dataset, AugtoolImages):
            with pytest.raises(InputError) as caught:
                read(out)
            messages.append(str(caught.value))
        messages.append("\n".join(verify(out).problems))
        assert messages == [f"{manifest}: missing columns {column}"] * 3


def test_the_writer_writes_what_the_schema_lists(make_raw, tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    expand(make_raw(), out, ExpandOptions(target=20, size=16, workers=1, folds=2, seed=3))
    with h5py.File(out, "r") as fh:
        for column in (*schema.IMAGE_COLUMNS, *schema.SOURCE_COLUMNS):
            dtype = fh[column.key].dtype
            if column.dtype == schema.TEXT:
                assert h5py.check_string_dtype(dtype).encoding == "utf-8", column.key
            else:
                assert dtype == np.dtype(column.dtype), column.key
        for name in schema.REQUIRED_ATTRS:
            assert name in fh.attrs
        assert fh.attrs["schema_version"] == schema.SCHEMA_VERSION
        records = schema.read_hdf5_records(fh, out)
    assert records.n == 20 and isinstance(records.attrs["counts"], dict)
    assert schema.folds_of(records, out) is not None
    assert verify(out).ok
