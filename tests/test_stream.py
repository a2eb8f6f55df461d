"""Streaming HDF5 sets larger than the memory budget (model.stream), on the CPU."""

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import model.run
import model.stream
from augtool.errors import InputError, OptionError
from augtool.store.dataset import open_dataset
from model.checkpoint import load_checkpoint
from model.data import DeviceImages, Normalization, compute_normalization, parse_augment
from model.stream import HOST_BUFFERS, H5Images, StreamImages, open_lazy, parse_memory
from tests.h5data import make_blob_h5, write_h5

SIZE = 32
IMAGE_BYTES = SIZE * SIZE * 3
IDENTITY = Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def blob_h5(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "blobs.h5"
    return make_blob_h5(path, per_class=[30, 24, 36], size=SIZE, seed=2, val_fraction=0.2)


@pytest.fixture(scope="module")
def numbered_h5(tmp_path_factory) -> Path:
    """Images sorted by class whose first pixel spells their row number."""
    n = 150
    labels = np.repeat(np.arange(3), n // 3)
    images = np.zeros((n, 8, 8, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 0, 1] = np.arange(n) // 256
    path = tmp_path_factory.mktemp("stream") / "numbered.h5"
    return write_h5(path, images, labels, ["train"] * n, ["ALL", "AML", "normal"])


def _numbered_stream(path: Path, memory: int, chunk_rows: int = 5) -> StreamImages:
    data = open_lazy(path)
    return StreamImages(
        data.images, data.labels, IDENTITY, torch.device("cpu"), memory, chunk_rows=chunk_rows
    )


def _rows(x: torch.Tensor) -> list[int]:
    return (x[:, 0, 0, 0] + 256 * x[:, 1, 0, 0]).round().long().tolist()


def test_parse_memory():
    assert parse_memory("512M") == 512 * 2**20
    assert parse_memory("1.5G") == int(1.5 * 2**30)
    assert parse_memory("8GiB") == 8 * 2**30
    assert parse_memory("4096") == 4096
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(OptionError, match="max_memory"):
            parse_memory(bad)


def test_lazy_dataset_matches_the_loaded_one(blob_h5):
    lazy, full = open_lazy(blob_h5), open_dataset(blob_h5)
    assert isinstance(lazy.images, H5Images) and lazy.images.shape == full.images.shape
    assert lazy.labels.tolist() == full.labels.tolist() and lazy.names == full.names
    assert lazy.groups == full.groups and lazy.class_names == full.class_names
    train, train_full = lazy.subset("train"), full.subset("train")
    assert isinstance(train.images, H5Images)
    assert np.array_equal(np.asarray(train.images), train_full.images)
    assert np.array_equal(train.images[3:9], train_full.images[3:9])
    assert np.array_equal(train.images[4], train_full.images[4])
    for mode in ("zerocenter", "standardize"):
        assert compute_normalization(train.images, mode, chunk=7) == compute_normalization(
            train_full.images, mode
        )


def test_eval_batches_equal_the_resident_ones_in_order(blob_h5):
    part = open_lazy(blob_h5).subset("train")
    full = open_dataset(blob_h5, "train")
    norm = compute_normalization(full.images, "standardize")
    cpu = torch.device("cpu")
    streamed = StreamImages(part.images, part.labels, norm, cpu, 7 * IMAGE_BYTES, chunk_rows=3)
    assert streamed.buffer_images == 3  # 7 images of budget / 5 buffers -> one chunk each
    resident = DeviceImages(full.images, full.labels, norm, cpu)
    a, b = list(streamed.eval_batches(10)), list(resident.eval_batches(10))
    assert len(a) == len(b) == 5  # 45 images: 4 of 10 and one of 5
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_an_epoch_serves_each_image_at_most_once_shuffled_across_chunks(numbered_h5):
    budget = 100 * 8 * 8 * 3
    data = _numbered_stream(numbered_h5, memory=budget, chunk_rows=5)
    # Every buffer fits the budget together, holds whole chunks, several but not the file.
    assert (HOST_BUFFERS + 2) * data.buffer_bytes() <= budget
    assert data.buffer_images % 5 == 0 and 5 < data.buffer_images < 150
    labels = open_dataset(numbered_h5).labels
    batches = list(data.train_batches(16, frozenset(), torch.Generator().manual_seed(0)))
    assert len(batches) == 150 // 16
    rows = [r for x, _ in batches for r in _rows(x)]
    assert len(rows) == len(set(rows)) == 9 * 16 and set(rows) <= set(range(150))
    for x, y in batches:
        assert y.tolist() == labels[_rows(x)].tolist()
    # The file is sorted by class, yet batches mix classes (chunks from all over the file).
    assert sum(len(set(y.tolist())) > 1 for _, y in batches) >= 6
    assert rows != sorted(rows)


def test_the_stream_is_deterministic_per_seed(numbered_h5):
    data = _numbered_stream(numbered_h5, memory=100 * 8 * 8 * 3)
    augment = parse_augment("dihedral,gray,jitter")

    def epoch(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return [x for x, _ in data.train_batches(16, augment, gen)]

    a, b, c = epoch(4), epoch(4), epoch(5)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


def test_reads_and_buffers_are_bounded_by_the_budget(numbered_h5, monkeypatch):
    reads: list[int] = []
    real = model.stream.read_rows

    def counting(dataset, rows, out):
        reads.append(len(rows))
        real(dataset, rows, out)

    monkeypatch.setattr(model.stream, "read_rows", counting)
    allocated: list[int] = []
    real_reader = model.stream._Reader.__init__

    def recording(self, source, groups):
        real_reader(self, source, groups)
        allocated.extend(t.numel() for t in self.images)

    monkeypatch.setattr(model.stream._Reader, "__init__", recording)
    budget = 40 * 8 * 8 * 3
    data = _numbered_stream(numbered_h5, memory=budget, chunk_rows=4)
    for _ in data.train_batches(8, frozenset(), torch.Generator().manual_seed(0)):
        pass
    assert reads and max(reads) <= 4  # one chunk of contiguous rows per read
    assert len(allocated) == model.stream.HOST_BUFFERS
    assert sum(allocated) <= budget


def test_a_consumer_that_stops_early_stops_the_reader(numbered_h5):
    data = _numbered_stream(numbered_h5, memory=10 * 8 * 8 * 3)
    before = threading.active_count()
    for step, _ in enumerate(data.train_batches(4, frozenset(), torch.Generator())):
        if step == 2:
            break
    assert threading.active_count() == before


def test_a_read_failure_is_an_input_error(numbered_h5, tmp_path):
    copy = tmp_path / "gone.h5"
    copy.write_bytes(numbered_h5.read_bytes())
    data = _numbered_stream(copy, memory=10 * 8 * 8 * 3)
    copy.unlink()
    with pytest.raises(InputError, match=r"gone\.h5"):
        list(data.eval_batches(8))


def _train(data: Path, out: Path, max_memory: str | None, seed: int = 0) -> dict:
    config = model.run.TrainConfig.for_arch(
        "cellnet", epochs=2, batch_size=8, seed=seed, augment="dihedral"
    )
    result = model.run.train_run(data, out, config, "cpu", max_memory=max_memory)
    return result.metrics


@pytest.mark.slow
def test_train_streams_a_set_over_budget_deterministically(blob_h5, tmp_path, monkeypatch):
    largest: list[int] = []
    real_read = H5Images.read

    def recording(self, rows):
        largest.append(len(rows))
        return real_read(self, rows)

    monkeypatch.setattr(H5Images, "read", recording)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the streamed path must not load the whole set")

    monkeypatch.setattr(model.run, "open_dataset", refuse)
    budget = f"{40 * IMAGE_BYTES}"  # 40 of the 90 images
    a = _train(blob_h5, tmp_path / "a", budget)
    b = _train(blob_h5, tmp_path / "b", budget)
    assert a["data_path"] == "streamed" and a["max_memory"] == 40 * IMAGE_BYTES
    assert largest and max(largest) <= 64  # normalisation statistics, 64 images at a time
    wa = load_checkpoint(tmp_path / "a" / "model.pt").net.state_dict()
    wb = load_checkpoint(tmp_path / "b" / "model.pt").net.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["val"]["accuracy"] == b["val"]["accuracy"] and "test" not in a
    assert a["splits"] == {"train": 45, "val": 18, "test": 27}
    monkeypatch.undo()
    # The statistics a resident run computes (its path is tested in test_model's trained run).
    config = model.run.TrainConfig.for_arch("cellnet")
    resident = compute_normalization(open_dataset(blob_h5, "train").images, config.normalize)
    assert a["normalization"] == resident.to_dict()
