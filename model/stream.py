"""Training sets larger than the memory budget: HDF5 images streamed from disk.

:func:`open_lazy` reads an ``augtool expand`` HDF5 file's labels, splits and
names but not its images: ``Dataset.images`` is an :class:`H5Images`, a view of
rows of the file that reads only when sliced. :class:`StreamImages` serves such
a view as batches with the interface of :class:`model.data.DeviceImages`
(``train_batches``, ``eval_batches``, ``labels``, ``device``, ``len``).

How an epoch is streamed:

* The split's rows are cut into chunks of ``chunk_rows`` consecutive rows
  (contiguous reads of the file). Each epoch draws a permutation of the chunks
  from the run's generator; consecutive chunks of that order fill one buffer
  (``buffer_images`` images, several chunks from all over the file, so a
  buffer mixes classes even when the file is sorted by class).
* A background thread reads the chunks, one h5py call per contiguous run, into
  host buffers (pinned on CUDA). On CUDA each buffer is copied to one of two
  device buffers on a side stream while the previous one is being trained on
  (double buffering); on the CPU the host buffer is used directly.
* Within a buffer the images are shuffled by a device permutation drawn from
  the same generator; batches are gathered by ``index_select`` and finished by
  :class:`model.data.BatchMaker` exactly like resident batches. A batch that
  straddles two buffers takes its first images from the previous one.

There is no per-sample Python work, and everything random comes from the
generator in a fixed order, so the streamed path is deterministic per seed
(its batch order differs from the resident path's). Memory: three host
buffers, and on CUDA two device buffers, whatever the size of the file.

Images are not compared with their SHA-256 records while streaming (that would
read the whole file once more per epoch); run ``augtool verify`` on a file
before trusting it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augtool.errors import InputError
from augtool.store.dataset import Dataset, is_hdf5_path
from augtool.store.schema import IMAGES, folds_of, open_hdf5, read_hdf5_records
from model.config import parse_memory as parse_memory
from model.data import BatchMaker, Normalization

#: Rows per contiguous read.
CHUNK_ROWS = 32
#: Host buffers in flight: one being filled, one queued, one in use.
HOST_BUFFERS = 3


def host_available_bytes() -> int:
    """Memory the host can still give (``MemAvailable`` of /proc/meminfo, else free pages)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_budget(device: torch.device) -> int:
    """Half the host's available memory; on CUDA also at most half the device's free memory.

    The resident path holds the uint8 set once on the host and, on CUDA, once
    more pinned and once on the device; half of each leaves room for the
    network, its activations and everything else.
    """
    budget = host_available_bytes() // 2
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        budget = min(budget, free // 2)
    return budget


def memory_budget(max_memory: str | int | None, device: torch.device) -> int:
    """``--max-memory`` in bytes, or :func:`default_memory_budget` when unset."""
    return default_memory_budget(device) if max_memory is None else parse_memory(max_memory)


class H5Images:
    """Rows of an HDF5 ``images`` dataset, read only when sliced.

    Behaves enough like a ``(N, S, S, 3)`` uint8 array for the training code:
    ``len``, ``shape``, ``ndim``, ``dtype``; indexing with an integer array or a
    boolean mask gives another (lazy) view, while a slice or an integer reads
    the images into a numpy array.

    Args:
        path: The HDF5 file.
        rows: File row of each image of the view.
        image_shape: ``(S, S, 3)``.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, path: Path, rows: np.ndarray, image_shape: tuple[int, ...]) -> None:
        self.path = Path(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.image_shape = tuple(int(v) for v in image_shape)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, S, S, 3)``."""
        return (len(self.rows), *self.image_shape)

    @property
    def nbytes(self) -> int:
        """Bytes the view would take in memory."""
        return int(np.prod(self.shape))

    def __getitem__(self, key: object) -> np.ndarray | H5Images:
        if isinstance(key, slice):
            return self.read(self.rows[key])
        if isinstance(key, (int, np.integer)):
            return self.read(self.rows[[int(key)]])[0]
        index = np.asarray(key)
        if index.dtype == bool or np.issubdtype(index.dtype, np.integer):
            return H5Images(self.path, self.rows[index], self.image_shape)
        raise TypeError(f"cannot index H5Images with {type(key).__name__}")

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        images = self.read(self.rows)
        return images if dtype is None else images.astype(dtype)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Read file rows into a new array, one h5py call per contiguous run."""
        out = np.empty((len(rows), *self.image_shape), dtype=np.uint8)
        with open_h5(self.path) as fh:
            read_rows(fh[IMAGES], rows, out)
        return out


def read_rows(dataset: object, rows: np.ndarray, out: np.ndarray) -> None:
    """Read HDF5 ``dataset[rows]`` into ``out[: len(rows)]``, one call per run of consecutive rows.

    Args:
        dataset: An ``h5py.Dataset`` of images.
        rows: File rows, in the order wanted (runs of consecutive rows read at once).
        out: Destination with at least ``len(rows)`` images.
    """
    if len(rows) == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(rows)]))
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        first = int(rows[a])
        dataset.read_direct(out, np.s_[first : first + b - a], np.s_[a:b])


def open_h5(path: Path) -> object:
    """Open an HDF5 file for reading, as an :class:`InputError` when it cannot be."""
    return open_hdf5(path)


def open_lazy(path: str | Path) -> Dataset:
    """Read an expand HDF5 file's metadata; its images stay on disk as :class:`H5Images`.

    Raises:
        InputError: If the file is not a complete augtool HDF5 file.
    """
    path = Path(path)
    if not path.is_file() or not is_hdf5_path(path):
        raise InputError(f"{path}: only an HDF5 expand output can be streamed")
    with open_h5(path) as fh:
        records = read_hdf5_records(fh, path)
    return Dataset(
        images=H5Images(path, np.arange(records.n), records.image_shape),  # type: ignore[arg-type]
        labels=records.labels,
        splits=records.splits,
        class_names=records.class_names,
        names=records.names,
        transforms=records.transforms,
        groups=records.groups,
        attrs=records.attrs,
        folds=folds_of(records, path),
    )


@dataclass
class _Filled:
    """A host buffer the reader thread has filled: images and labels of ``count`` rows."""

    slot: int
    count: int


class StreamImages:
    """A labelled image set on disk, served as normalised batches on a device.

    Args:
        images: The rows to serve (see :func:`open_lazy`, ``Dataset.subset``).
        labels: ``(N,)`` integer labels.
        normalization: Applied to every batch.
        device: Where the batches are made.
        memory: Bytes the buffers may take; the buffers hold
            ``memory // (HOST_BUFFERS + 2)`` bytes each (whole chunks, at least one).
        chunk_rows: Rows per contiguous read.
        channels_last: Batches in channels_last memory format (default: on CUDA).
    """

    def __init__(
        self,
        images: H5Images,
        labels: np.ndarray,
        normalization: Normalization,
        device: torch.device,
        memory: int,
        chunk_rows: int = CHUNK_ROWS,
        channels_last: bool | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        if len(images.image_shape) != 3 or images.image_shape[-1] != 3:
            raise InputError(f"need (N, S, S, 3) RGB images, got shape {images.shape}")
        self.images = images
        self.device = device
        self.normalization = normalization
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.chunk_rows = max(int(chunk_rows), 1)
        image_bytes = int(np.prod(images.image_shape))
        per_buffer = max(memory // (HOST_BUFFERS + 2) // image_bytes, 1)
        self.chunks_per_buffer = max(per_buffer // self.chunk_rows, 1)
        self.buffer_images = self.chunks_per_buffer * self.chunk_rows
        channels_last = device.type == "cuda" if channels_last is None else channels_last
        self.maker = BatchMaker(normalization, device, channels_last)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        """Side length S of the images."""
        return int(self.images.image_shape[0])

    @property
    def chunk_count(self) -> int:
        """Chunks of ``chunk_rows`` rows (the last may be shorter)."""
        return -(-len(self) // self.chunk_rows)

    def buffer_bytes(self) -> int:
        """Bytes of one image buffer."""
        return self.buffer_images * int(np.prod(self.images.image_shape))

    def train_batches(
        self,
        batch_size: int,
        augment: frozenset[str],
        generator: torch.Generator,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches, shuffled by chunk and within each buffer.

        ``len // batch_size`` batches (at least one); the images left over at
        the end are dropped, as on the resident path.

        Args:
            batch_size: Images per batch.
            augment: Tokens of :data:`model.data.AUGMENT_TOKENS`.
            generator: On this set's device; draws the chunk order, the order
                within each buffer and the augmentation.

        Yields:
            ``(x, y)``: float32 ``(B, 3, S, S)`` and int64 ``(B,)`` on the device.
        """
        size = min(batch_size, len(self))
        order = torch.randperm(self.chunk_count, generator=generator, device=generator.device)
        chunk_order = order.cpu().numpy()
        carry_x: torch.Tensor | None = None
        carry_y: torch.Tensor | None = None
        for images, labels in self._buffers(chunk_order):
            perm = torch.randperm(len(images), generator=generator, device=self.device)
            start = 0
            if carry_x is not None and carry_y is not None:
                take = min(size - len(carry_x), len(perm))
                carry_x = torch.cat((carry_x, images.index_select(0, perm[:take])))
                carry_y = torch.cat((carry_y, labels.index_select(0, perm[:take])))
                start = take
                if len(carry_x) == size:
                    yield self.maker(carry_x, augment, generator), carry_y
                    carry_x = carry_y = None
                else:
                    continue
            while start + size <= len(perm):
                index = perm[start : start + size]
                x = self.maker(images.index_select(0, index), augment, generator)
                yield x, labels.index_select(0, index)
                start += size
            if start < len(perm):
                carry_x = images.index_select(0, perm[start:])
                carry_y = labels.index_select(0, perm[start:])

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every image once, in order, without augmentation, ``batch_size`` at a time."""
        pending_x: list[torch.Tensor] = []
        pending_y: list[torch.Tensor] = []
        held = 0
        for images, labels in self._buffers(np.arange(self.chunk_count)):
            start = 0
            while start < len(images):
                take = min(batch_size - held, len(images) - start)
                # Slices share the buffer, which is refilled: keep copies.
                pending_x.append(images[start : start + take].clone())
                pending_y.append(labels[start : start + take].clone())
                held += take
                start += take
                if held == batch_size:
                    x, y = torch.cat(pending_x), torch.cat(pending_y)
                    pending_x, pending_y, held = [], [], 0
                    yield self.maker(x), y
        if held:
            yield self.maker(torch.cat(pending_x)), torch.cat(pending_y)

    def _buffers(self, chunk_order: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Images and labels of consecutive groups of chunks, in ``chunk_order``, on the device.

        Each yielded pair is valid until the next one is asked for.
        """
        groups = [
            chunk_order[i : i + self.chunks_per_buffer]
            for i in range(0, len(chunk_order), self.chunks_per_buffer)
        ]
        if not groups:
            return
        reader = _Reader(self, groups)
        try:
            if self.device.type == "cuda":
                yield from self._upload(reader, len(groups))
            else:
                for _ in groups:
                    filled = reader.next()
                    yield (
                        reader.images[filled.slot][: filled.count],
                        reader.labels[filled.slot][: filled.count],
                    )
                    reader.release(filled.slot)
        finally:
            reader.stop()

    def _upload(self, reader: _Reader, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """CUDA: copy each host buffer to one of two device buffers on a side stream."""
        shape = (self.buffer_images, *self.images.image_shape)
        dev_images = [torch.empty(shape, dtype=torch.uint8, device=self.device) for _ in "ab"]
        dev_labels = [
            torch.empty(self.buffer_images, dtype=torch.int64, device=self.device) for _ in "ab"
        ]
        copy_stream = torch.cuda.Stream(self.device)
        compute = torch.cuda.current_stream(self.device)
        done_with = [torch.cuda.Event(), torch.cuda.Event()]
        for event in done_with:
            event.record(compute)

        def upload(k: int) -> tuple[_Filled, torch.cuda.Event]:
            filled = reader.next()
            slot = k % 2
            with torch.cuda.stream(copy_stream):
                copy_stream.wait_event(done_with[slot])
                n = filled.count
                dev_images[slot][:n].copy_(reader.images[filled.slot][:n], non_blocking=True)
                dev_labels[slot][:n].copy_(reader.labels[filled.slot][:n], non_blocking=True)
                copied = torch.cuda.Event()
                copied.record(copy_stream)
            return filled, copied

        ahead = upload(0)
        for k in range(count):
            filled, copied = ahead
            if k + 1 < count:
                ahead = upload(k + 1)
            copied.synchronize()
            reader.release(filled.slot)
            compute.wait_event(copied)
            slot = k % 2
            yield dev_images[slot][: filled.count], dev_labels[slot][: filled.count]
            done_with[slot].record(compute)


class _Reader:
    """The background thread that reads groups of chunks into host buffers."""

    def __init__(self, source: StreamImages, groups: list[np.ndarray]) -> None:
        pin = source.device.type == "cuda"
        shape = (source.buffer_images, *source.images.image_shape)
        self.images = [
            torch.empty(shape, dtype=torch.uint8, pin_memory=pin) for _ in range(HOST_BUFFERS)
        ]
        self.labels = [
            torch.empty(source.buffer_images, dtype=torch.int64, pin_memory=pin)
            for _ in range(HOST_BUFFERS)
        ]
        self._source = source
        self._groups = groups
        self._free: queue.Queue[int] = queue.Queue()
        for slot in range(HOST_BUFFERS):
            self._free.put(slot)
        self._ready: queue.Queue[_Filled | BaseException] = queue.Queue()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="augtool-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        source = self._source
        rows_all = source.images.rows
        labels_all = source.labels.numpy()
        step = source.chunk_rows
        try:
            with open_h5(source.images.path) as fh:
                dataset = fh[IMAGES]
                for group in self._groups:
                    slot = self._take_free()
                    if slot is None:
                        return
                    out = self.images[slot].numpy()
                    out_labels = self.labels[slot].numpy()
                    count = 0
                    for chunk in group.tolist():
                        a, b = chunk * step, min((chunk + 1) * step, len(rows_all))
                        read_rows(dataset, rows_all[a:b], out[count:])
                        out_labels[count : count + b - a] = labels_all[a:b]
                        count += b - a
                    self._ready.put(_Filled(slot, count))
        except BaseException as err:  # handed to the consumer, which raises it
            self._ready.put(err)

    def _take_free(self) -> int | None:
        while not self._halt.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def next(self) -> _Filled:
        """The next filled buffer, in order; re-raises the reader's error."""
        item = self._ready.get()
        if isinstance(item, InputError):
            raise item
        if isinstance(item, BaseException):
            raise InputError(
                f"{self._source.images.path}: reading images failed ({item}); "
                "run `augtool verify` on it"
            ) from item
        return item

    def release(self, slot: int) -> None:
        """Give a host buffer back to the reader."""
        self._free.put(slot)

    def stop(self) -> None:
        """Stop the thread (at the end of an epoch, or when the consumer gave up)."""
        self._halt.set()
        self._thread.join()
