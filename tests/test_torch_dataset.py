"""model.torch_dataset.AugtoolImages over HDF5 and folder outputs, and the docs/train.md example."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from augtool.errors import InputError
from augtool.store.dataset import open_dataset
from model.torch_dataset import AugtoolImages
from tests.h5data import make_blob_h5

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def blob_h5(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "blobs.h5"
    return make_blob_h5(path, per_class=[8, 6, 10], size=32, seed=5, val_fraction=0.25)


@pytest.fixture(scope="module")
def expanded_folder(tmp_path_factory) -> Path:
    from tests.conftest import smear_like, write_image

    raw = tmp_path_factory.mktemp("raw")
    for c, cls in enumerate(("ALL", "AML", "normal")):
        for i in range(3):
            write_image(
                raw / cls / f"{cls}_{i}.jpg", smear_like(np.random.default_rng([c, i]), 64, 48)
            )
    out = raw.parent / "expanded"
    from click.testing import CliRunner

    from cli import main

    args = ["expand", str(raw), str(out), "--target", "60", "--size", "32", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("split", ["train", "val", "test", None])
def test_items_are_the_split_images_and_labels(blob_h5, split):
    full = open_dataset(blob_h5) if split is None else open_dataset(blob_h5, split)
    data = AugtoolImages(blob_h5, split=split)
    assert len(data) == len(full) and data.class_names == full.class_names
    assert data.labels.tolist() == full.labels.tolist() and data.names == full.names
    for i in (0, len(data) - 1):
        image, label = data[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
        assert torch.equal(image.permute(1, 2, 0), torch.from_numpy(full.images[i]))
        assert label == full.labels[i]


def test_rows_select_a_fold_and_transform_applies(blob_h5):
    full = open_dataset(blob_h5)
    fold = np.flatnonzero(full.splits == "train")[::2]
    data = AugtoolImages(blob_h5, split="train", rows=fold, transform=lambda x: x.float() / 255)
    assert data.rows.tolist() == fold.tolist()
    image, label = data[1]
    assert image.dtype == torch.float32
    assert torch.allclose(
        image.permute(1, 2, 0) * 255, torch.from_numpy(full.images[fold[1]]).float()
    )
    assert label == full.labels[fold[1]]
    assert len(AugtoolImages(blob_h5, split="test", rows=fold)) == 0  # no train row is a test row
    with pytest.raises(InputError, match="rows outside"):
        AugtoolImages(blob_h5, rows=[10_000])
    with pytest.raises(InputError, match="no split 'holdout'"):
        AugtoolImages(blob_h5, split="holdout")
    with pytest.raises(IndexError):
        data[len(data)]


def test_folder_output_and_a_dataloader_with_workers(expanded_folder):
    full = open_dataset(expanded_folder, "train")
    data = AugtoolImages(expanded_folder, split="train")
    assert len(data) == len(full) and data.groups == full.groups
    image, _ = data[2]
    assert torch.equal(image.permute(1, 2, 0), torch.from_numpy(full.images[2]))
    loader = torch.utils.data.DataLoader(data, batch_size=5, num_workers=2)
    seen = torch.cat([y for _, y in loader])
    assert seen.tolist() == full.labels.tolist()


def test_hdf5_items_through_dataloader_workers(blob_h5):
    data = AugtoolImages(blob_h5, split="train")
    data[0]  # opens a handle in this process; workers must open their own
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2)
    images = torch.cat([x for x, _ in loader])
    full = open_dataset(blob_h5, "train")
    assert torch.equal(images.permute(0, 2, 3, 1), torch.from_numpy(full.images))


def test_the_example_in_docs_train_md_runs(blob_h5, monkeypatch, capsys):
    """The docs/train.md example, run as written (but for the data path) in this process.

    Nothing in it depends on a fresh interpreter, and a second Python that imports
    torch costs seconds; its DataLoader workers are still processes of their own.
    """
    text = (ROOT / "docs" / "train.md").read_text()
    section = text.split("## Your own training loop", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert '"cells.h5"' in code
    code = code.replace('"cells.h5"', repr(str(blob_h5)))
    monkeypatch.chdir(ROOT)
    exec(compile(code, "docs/train.md (Your own training loop)", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == ["epoch 1", "epoch 2"], printed
    assert all(re.fullmatch(r"epoch \d: loss \d+\.\d{3}", line) for line in printed), printed
