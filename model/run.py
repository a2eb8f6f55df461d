"""A whole training run behind ``augtool train``: data in, run folder out.

:func:`train_run` reads an expand output (whole, or streamed from disk when it
is larger than the memory budget), trains on its train part (a split, or the
train folds of one cross-validation fold: :mod:`model.folds`), keeps the best
epoch on val, and writes the run folder (:mod:`model.rundir`). The folder is
assembled in a temporary sibling and renamed into place at the end, so an
interrupted run never leaves a half-written RUN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augtool.errors import InputError, OptionError, literal
from augtool.store.dataset import Dataset, is_hdf5_path, open_dataset
from augtool.store.ledger import dataset_sha256
from augtool.store.publish import staged_folder, write_bytes
from augtool.store.schema import images_of
from model.checkpoint import save_checkpoint
from model.data import (
    DeviceImages,
    Normalization,
    check_classification,
    compute_normalization,
)
from model.folds import fold_parts, group_key, train_splits, val_fold
from model.metrics import classification_report
from model.networks import create_model
from model.report import curves_image, png_bytes
from model.rundir import (
    CURVES_NAME,
    HISTORY_NAME,
    METRICS_NAME,
    MODEL_NAME,
    check_run_dir,
    check_run_inputs,
    write_history,
    write_json,
)
from model.stream import H5Images, StreamImages, memory_budget, open_h5, open_lazy
from model.train import (
    FitResult,
    ProgressCallback,
    TrainConfig,
    TrainEvent,
    evaluate,
    fit,
    prepare_model,
    resolve_device,
    use_amp,
)


@dataclass
class TrainResult:
    """Outcome of :func:`train_run`.

    Attributes:
        run_dir: The finished run folder.
        fit: History and chosen epoch.
        metrics: What was written to ``metrics.json``.
        device: The device used.
        seconds: Wall time from the run's start (``train_run``'s ``started``) until
            the run folder was in place: the ``elapsed`` of the ``done`` event.
    """

    run_dir: Path
    fit: FitResult
    metrics: dict[str, Any]
    device: str
    seconds: float


def with_extra_train(
    train: Dataset, extra: Dataset, held_groups: set[str], extra_path: str | Path
) -> Dataset:
    """``train`` followed by every image of ``extra``, which only ever trains.

    Args:
        train: The train part of the data.
        extra: Another expand output (all of its splits are used).
        held_groups: Groups of the data's validation and test images; ``extra``
            may share none of them (its images would leak into what is scored),
            compared by :func:`group_key`.
        extra_path: Where ``extra`` came from, for messages.

    Returns:
        The combined train part, with ``extra``'s labels renumbered to ``train``'s
        class names.

    Raises:
        InputError: Different image sizes, a class the data does not have, or a
            group shared with validation or test images.
    """
    if extra.images.shape[1:] != train.images.shape[1:]:
        raise InputError(
            f"{extra_path}: images of {extra.images.shape[2]}x{extra.images.shape[1]}, the "
            f"data's are {train.images.shape[2]}x{train.images.shape[1]}; expand both with "
            "the same size"
        )
    unknown = sorted(set(extra.class_names) - set(train.class_names))
    if unknown:
        raise InputError(
            f"{extra_path}: class {', '.join(unknown)} is not in the data "
            f"({', '.join(train.class_names)})"
        )
    held = {group_key(g) for g in held_groups}
    shared = sorted({g for g in extra.groups if group_key(g) in held})
    if shared:
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        raise InputError(
            f"{extra_path}: shares {len(shared)} group(s) with the validation or test "
            f"images ({', '.join(shared[:3])}{more}); training on them would leak. Cut "
            "the extra images from other smears or patients"
        )
    index = {name: i for i, name in enumerate(train.class_names)}
    relabel = np.array([index[name] for name in extra.class_names], dtype=np.int64)
    return Dataset(
        images=np.concatenate([train.images, extra.images]),
        labels=np.concatenate([train.labels, relabel[extra.labels]]),
        splits=np.concatenate([train.splits, np.full(len(extra), "train", dtype=object)]),
        class_names=list(train.class_names),
        names=train.names + [f"extra:{name}" for name in extra.names],
        transforms=train.transforms + list(extra.transforms),
        groups=train.groups + list(extra.groups),
        attrs=dict(train.attrs),
        folds=None,
    )


def train_run(
    data_path: str | Path,
    out: str | Path,
    config: TrainConfig,
    device: str = "auto",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    command_line: str = "",
    fold: int | None = None,
    max_memory: str | int | None = None,
    started: float | None = None,
    extra_train: str | Path | None = None,
    all_images: bool = False,
) -> TrainResult:
    """Train on an expand output and write the run folder; test images are never scored.

    Normalisation statistics come from the train split only. With a val split the
    kept model is the best epoch on val, and the final metrics are the kept
    model's on val. Test images are neither scored nor loaded: scoring them is
    its own step (``augtool evaluate``), which records every read in the
    dataset's ledger (:mod:`augtool.store.ledger`). An HDF5 file whose images take more
    than the memory budget is streamed from disk (:mod:`model.stream`) instead of
    being loaded whole.

    The run folder is filled in a hidden sibling (:func:`augtool.store.publish.staged_folder`)
    and renamed into place at the end; ``history.csv`` and ``curves.png`` are
    rewritten there after every epoch, so a long run can be followed.

    Args:
        data_path: HDF5 file or folder written by ``augtool expand``.
        out: The run folder to create.
        config: Validated training settings.
        device: ``auto``, ``cuda`` or ``cpu``.
        overwrite: Replace an existing non-empty run folder.
        progress: Called with each :class:`model.train.TrainEvent`: ``load`` before
            the data is read, ``batch`` and ``epoch`` events from :func:`fit` (an
            ``epoch`` event once the history holds that epoch), and ``done`` once
            the run folder is in place.
        command_line: Recorded in ``metrics.json``.
        fold: Cross-validation: test on this fold of a ``--folds`` dataset, choose
            the epoch on the next fold, train on the rest (:func:`fold_parts`).
            ``None`` uses the dataset's train/val/test splits; a dataset with
            folds then needs ``all_images``.
        max_memory: Bytes (or a size like ``8G``) the images may take; ``None``:
            :func:`model.stream.default_memory_budget` of the device.
        started: ``time.perf_counter()`` when the command began, so that elapsed
            times include its start-up; ``None``: now.
        extra_train: Another expand output whose images are added to the train
            part only (never validated or tested on); it must share no group with
            the data's validation and test images (:func:`with_extra_train`).
        all_images: Train on every image of the data (all splits or folds), with
            no val and no test: a final model, whose figures can no longer be
            estimated on this data.

    Returns:
        The run folder and what was measured.

    Raises:
        InputError: Unreadable data or no train split.
        OptionError: Invalid settings or device; a dataset with folds and
            neither ``fold`` nor ``all_images``.
        OutputError: The run folder cannot be written.
    """
    clock = time.perf_counter() if started is None else started
    check_run_inputs(out, data_path, extra_train)
    out = check_run_dir(out, overwrite)
    if all_images and fold is not None:
        raise OptionError(
            "all_images", "trains on every image, so it cannot be combined with {fold}", refs=True
        )
    dev = resolve_device(device)
    config.validate()
    budget = memory_budget(max_memory, dev)
    with staged_folder(out) as stage:
        history: list[dict[str, float]] = []

        def on_event(event: TrainEvent) -> None:
            if event.kind == "epoch" and event.row is not None:
                history.append(event.row)
                write_history(stage / HISTORY_NAME, history)
                picture = png_bytes(curves_image(history), out / CURVES_NAME)
                write_bytes(stage / CURVES_NAME, picture)
            if progress is not None:
                progress(event)

        on_event(TrainEvent("load", time.perf_counter() - clock, epochs=config.epochs))
        streamed = needs_streaming(data_path, budget)
        data = open_lazy(data_path) if streamed else open_dataset(data_path)
        check_classification(data, data_path)
        parts, names, folds, training = _training_parts(data, data_path, config, fold, all_images)
        train_name, val_name = names
        if extra_train is not None:
            if streamed:
                raise OptionError("extra_train", "cannot be added to a data set streamed from disk")
            held = {g for name, part in parts.items() if name != train_name for g in part.groups}
            parts[train_name] = with_extra_train(
                parts[train_name], open_dataset(extra_train), held, extra_train
            )
            training["extra_sha256"] = dataset_sha256(extra_train)
        norm = compute_normalization(
            parts[train_name].images, config.normalize, chunk=64 if streamed else 256
        )
        size = int(data.images.shape[1])
        class_names = parts[train_name].class_names
        counts = {k: len(v) for k, v in parts.items()}
        del data
        scored = [n for n in (train_name, val_name) if n]  # never test: it stays on disk
        generator = torch.Generator().manual_seed(config.seed)
        net = create_model(
            config.arch, len(class_names), size, generator=generator, **config.arch_options
        )
        net = prepare_model(net, dev)
        on_device = {
            k: to_device(parts[k].images, parts[k].labels, norm, dev, budget) for k in scored
        }
        result = fit(
            net,
            on_device[train_name],
            config,
            generator,
            val=on_device.get(val_name) if val_name else None,
            progress=on_event,
            started=clock,
        )
        scores = {}
        if val_name:
            pred = evaluate(net, on_device[val_name], amp=use_amp(config.amp, dev))
            scores[val_name] = classification_report(
                pred.labels,
                pred.predicted,
                parts[val_name].class_names,
                parts[val_name].transforms,
            )
        seen = sum(r["train_images"] for r in result.history)
        busy = sum(r["train_seconds"] for r in result.history)
        metrics = {
            "data": str(data_path),
            **({"extra_train": str(extra_train)} if extra_train is not None else {}),
            "command_line": command_line,
            "arch": config.arch,
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "config": config.to_dict(),
            "normalization": norm.to_dict(),
            "splits": counts,
            **({"cv": folds} if folds else {}),
            **({"all_images": True} if all_images else {}),
            "data_path": "streamed" if streamed else "resident",
            "max_memory": budget,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds,
            "train_images_per_second": seen / busy if busy > 0 else None,
            **scores,
        }
        info = {
            "best_epoch": result.best_epoch,
            "data": str(data_path),
            **({"cv": folds} if folds else {}),
            "training": training,
        }
        save_checkpoint(
            stage / MODEL_NAME,
            net,
            config.arch,
            config.arch_options,
            class_names,
            size,
            norm,
            config.to_dict(),
            info,
        )
        write_json(stage / METRICS_NAME, metrics)
    seconds = time.perf_counter() - clock
    if progress is not None:
        last = len(result.history)
        progress(TrainEvent("done", seconds, last, config.epochs))
    return TrainResult(run_dir=out, fit=result, metrics=metrics, device=str(dev), seconds=seconds)


def _training_parts(
    data: Dataset,
    data_path: str | Path,
    config: TrainConfig,
    fold: int | None,
    all_images: bool,
) -> tuple[dict[str, Dataset], tuple[str, str | None], dict[str, int], dict[str, Any]]:
    """The parts a run uses, their roles, its fold record and what it trained on.

    Returns:
        ``(parts, (train name, val name or None), cv record, training record)``.
        ``parts`` may hold a ``test`` part: its groups keep extra training images
        out; it is never scored. The training record (kept in the checkpoint)
        says which images of the data trained the model, for :func:`evaluate_run`.

    Raises:
        OptionError: Folds without ``fold`` or ``all_images``; ``patience``
            without val images.
    """
    training: dict[str, Any] = {"data_sha256": dataset_sha256(data_path)}
    folds: dict[str, int] = {}
    if all_images:
        parts, names = {"all": data}, ("all", None)
        training["all_images"] = True
    elif fold is not None:
        parts, names = fold_parts(data, fold), ("train", "val")
        folds = {"folds": data.fold_count, "test_fold": fold}
        folds["val_fold"] = val_fold(fold, folds["folds"])
        training["folds"] = sorted(set(range(folds["folds"])) - {fold, folds["val_fold"]})
    elif data.fold_count:
        raise OptionError(
            "fold",
            f"{literal(data_path)} has {data.fold_count:d} cross-validation folds, which "
            "replace its splits: train one fold with {fold} K, every fold with {fold} all, "
            "or every image, knowingly, with {all_images} (nothing is left to test it on)",
            refs=True,
        )
    else:
        train_name, val_name, test_name = train_splits(data)
        parts = {n: data.subset(n) for n in (train_name, val_name, test_name) if n}
        names = (train_name, val_name)
        training["splits"] = [train_name]
    if config.patience is not None and all_images:
        raise OptionError(
            "patience",
            "needs val images to watch, and {all_images} trains on every image; train "
            "without {patience}",
            refs=True,
        )
    if config.patience is not None and names[1] is None:
        raise OptionError(
            "patience",
            f"needs a val split to watch, and {literal(data_path)} has none ("
            f"{literal(', '.join(data.split_names))}); make one with {{expand.split}} "
            "0.7,0.15,0.15, or train without {patience}",
            refs=True,
        )
    return parts, names, folds, training


def needs_streaming(data_path: str | Path, budget: int) -> bool:
    """True for an HDF5 file whose images take more than ``budget`` bytes.

    A folder output is always loaded whole: only HDF5 files can be streamed.
    """
    path = Path(data_path)
    if not path.is_file() or not is_hdf5_path(path):
        return False
    with open_h5(path) as fh:
        try:
            images = images_of(fh, path)
            size = int(np.prod(images.shape)) * images.dtype.itemsize
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: not an augtool HDF5 file (no images: {err})") from err
    return size > budget


def to_device(
    images: np.ndarray | H5Images,
    labels: np.ndarray,
    normalization: Normalization,
    device: torch.device,
    budget: int,
) -> DeviceImages | StreamImages:
    """The batch source for a split: resident for arrays, streamed for :class:`H5Images`."""
    if isinstance(images, H5Images):
        return StreamImages(images, labels, normalization, device, budget)
    return DeviceImages(images, labels, normalization, device)
