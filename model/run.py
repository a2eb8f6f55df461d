"""Whole runs behind the commands: train into a run folder, evaluate, predict.

A run folder holds ``model.pt`` (weights-only checkpoint), ``history.csv`` (one
row per epoch), ``curves.png`` (loss and accuracy per epoch, train and val) and
``metrics.json`` (the final scores of the kept model). It is
assembled in a temporary sibling folder and renamed into place at the end, so
an interrupted run never leaves a half-written RUN.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augtool.errors import InputError, OptionError, OutputError, literal
from augtool.progress import Progress
from augtool.store.dataset import Dataset, is_hdf5_path, open_dataset
from augtool.store.ledger import dataset_sha256
from augtool.store.publish import staged_folder, write_bytes
from augtool.store.schema import images_of
from model.data import (
    RAW_SOURCE,
    DeviceImages,
    Normalization,
    compute_normalization,
    load_for_evaluation,
)
from model.metrics import classification_report
from model.networks import create_model
from model.report import curves_image, png_bytes
from model.stream import H5Images, StreamImages, memory_budget, open_h5, open_lazy
from model.train import (
    Checkpoint,
    FitResult,
    ProgressCallback,
    TrainConfig,
    TrainEvent,
    evaluate,
    fit,
    load_checkpoint,
    prepare_model,
    resolve_device,
    save_checkpoint,
    use_amp,
)

MODEL_NAME = "model.pt"
HISTORY_NAME = "history.csv"
METRICS_NAME = "metrics.json"
CONFUSION_NAME = "confusion.png"
CURVES_NAME = "curves.png"


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


def check_run_dir(out: str | Path, overwrite: bool) -> Path:
    """Refuse an existing non-empty run folder unless ``overwrite``; create its parent.

    Raises:
        OutputError: If ``out`` is a file, or a non-empty folder without ``overwrite``,
            or its parent cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(
            f"{literal(out)}: folder is not empty; choose another {{out}} or pass {{overwrite}}",
            refs=True,
        )
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{parent}: cannot create the folder to hold {out.name}") from err
    return out


def train_splits(data: Dataset) -> tuple[str, str | None, str | None]:
    """Names of the (train, val, test) splits of an expand output.

    A run without a split (``--split none``) trains on ``all`` and scores nothing.

    Raises:
        InputError: If there is neither a ``train`` nor an ``all`` split.
    """
    present = data.split_names
    if "train" in present:
        return (
            "train",
            ("val" if "val" in present else None),
            ("test" if "test" in present else None),
        )
    if "all" in present:
        return "all", None, None
    raise InputError(f"no train split in the data (it has {', '.join(present)})")


def val_fold(fold: int, folds: int) -> int:
    """The validation fold of cross-validation fold ``fold``: the next one, cyclically."""
    return (fold + 1) % folds


def fold_parts(data: Dataset, fold: int) -> dict[str, Dataset]:
    """Train, val and test parts of a dataset made with ``expand --folds K``.

    Test is fold ``fold``; val is the next fold (:func:`val_fold`), which picks the
    kept epoch and early stopping; train is the other K-2 folds. Folds hold whole
    groups, so the three parts share no group.

    Args:
        data: A dataset with folds.
        fold: The test fold, 0..K-1.

    Returns:
        ``{"train": ..., "val": ..., "test": ...}``.

    Raises:
        InputError: If the dataset has no folds.
        OptionError: If ``fold`` is out of range or K < 3.
    """
    folds = data.fold_count
    if folds == 0:
        raise InputError(
            "the data has no cross-validation folds; make it with {expand.folds} K", refs=True
        )
    if folds < 3:
        raise OptionError(
            "fold", f"needs at least 3 folds (train, val, test); the data has {folds}"
        )
    if not 0 <= fold < folds:
        raise OptionError("fold", f"must be in 0..{folds - 1} (the data has {folds} folds)")
    val = val_fold(fold, folds)
    rest = set(range(folds)) - {fold, val}
    return {
        "train": data.in_folds(rest),
        "val": data.in_folds({val}),
        "test": data.in_folds({fold}),
    }


def group_key(group: str) -> str:
    """A group name compared across datasets: without an image suffix, case-folded.

    ``augtool cells`` records a cell's smear by its file name
    (``BloodImage_00009.jpg``) and ``--group-regex 'BloodImage_\\d+'`` by the
    match (``BloodImage_00009``): both name the same smear.
    """
    from augtool.store.decode import IMAGE_SUFFIXES

    name = group.strip()
    stem, dot, suffix = name.rpartition(".")
    if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES:
        name = stem
    return name.casefold()


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


def write_history(path: Path, history: Sequence[dict[str, float]]) -> None:
    """One CSV row per epoch; columns are the union of the rows' keys, in first-seen order.

    Written atomically (:func:`augtool.store.publish.write_bytes`): a reader following a
    run sees the previous history or the new one, never half a row.
    """
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in history:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    write_bytes(path, text.getvalue().encode("utf-8"))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Pretty JSON, UTF-8, strict (no NaN)."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _csv_value(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate_run`.

    Attributes:
        report: The metrics (see :func:`model.metrics.classification_report`).
        out_dir: Where ``metrics.json`` and ``confusion.png`` were written, or ``None``.
    """

    report: dict[str, Any]
    out_dir: Path | None


def evaluate_run(
    model_path: str | Path,
    data_path: str | Path,
    split: str | None = "test",
    out: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 256,
    tta: bool = False,
    progress: Progress | None = None,
    fold: int | None = None,
    ensemble: Sequence[str | Path] = (),
) -> EvaluationResult:
    """Score a trained model on an expand output's split or fold, or a raw image folder.

    Args:
        model_path: ``RUN/model.pt``; with ``fold``, also a cross-validated run
            folder (its ``fold-<k>/model.pt`` is used).
        data_path: HDF5 file, expand output folder, or ``RAW/<class>/`` folder
            (images of any size, preprocessed like ``expand``'s originals).
        split: The split of an expand output (ignored for a raw folder);
            ``None`` uses all images. With ``fold``: ``val`` or ``test`` of that fold.
        out: Folder for ``metrics.json`` and ``confusion.png`` (created; those two
            files are replaced); ``None`` writes nothing.
        device: ``auto``, ``cuda`` or ``cpu``.
        batch_size: Images per forward pass.
        tta: Average over the 8 flips and transposes of each image.
        progress: Told of the phases: ``load`` (a raw folder, one step per image)
            and ``evaluate`` (one step per image, once per model); ``None``: silent.
        fold: Score the val or test images of this cross-validation fold of a
            dataset made with ``expand --folds K``; the model must have been
            trained for this fold (``train --fold K``). ``None`` with a fold's
            model and data with folds: the fold the model records
            (``report["fold_from_model"]`` is then true).
        ensemble: More models (files, or run folders with ``fold``) whose class
            probabilities are averaged with ``model_path``'s.

    Returns:
        The report and where it was written. Besides the figures, the report
        says what was scored: ``tta``, ``models``, ``fold`` and
        ``fold_from_model``, ``scored_folds``, ``dataset_sha256``
        (:func:`augtool.store.ledger.dataset_sha256`, ``None`` for a raw folder),
        ``test_images`` (how many scored images are test images of the data:
        the caller records such a read, :mod:`augtool.store.ledger`) and
        ``training_images`` (how many trained one of the models, which makes
        the figures no estimate of accuracy: :func:`model.scoring.trained_mask`).

    Raises:
        InputError: Unreadable model or data, or classes the model does not know.
        OptionError: A model trained for another fold, or ensemble models that
            disagree on classes or input size.
        OutputError: The output folder cannot be written.
    """
    from model.data import is_raw_folder
    from model.scoring import (
        FOLD_PARTS,
        check_compatible,
        check_fold,
        fold_part,
        load_fold_model,
        mean_probabilities,
        test_images_mask,
        trained_mask,
    )

    dev = resolve_device(device)
    models = [load_fold_model(m, fold, dev) for m in (model_path, *ensemble)]
    check_compatible(models)
    first = models[0].checkpoint
    raw = is_raw_folder(Path(data_path))
    fold_from_model = False
    if fold is None and not raw and models[0].test_fold is not None and split in FOLD_PARTS:
        whole = load_for_evaluation(data_path, None, first.input_size)
        if whole.fold_count:  # a fold's model on its own data: score its own fold
            fold, fold_from_model = models[0].test_fold, True
            for model in models:
                check_fold(model, fold)
            data = fold_part(whole, fold, split)
        else:
            data = whole.subset(split)
    elif fold is None:
        data = load_for_evaluation(data_path, split, first.input_size, progress)
    else:
        data = fold_part(
            load_for_evaluation(data_path, None, first.input_size), fold, split or "all"
        )
    if len(data) == 0:
        raise InputError(f"{literal(data_path)}: no images to evaluate")
    content = None if raw else dataset_sha256(data_path)
    trained = np.zeros(len(data), dtype=bool)
    for model in models:
        trained |= trained_mask(model, data, content, data_path)
    probabilities, labels = mean_probabilities(models, data, dev, batch_size, tta, progress)
    transforms = None if raw else data.transforms  # a raw folder records no transforms
    report = classification_report(
        labels,
        probabilities.argmax(axis=1),
        first.class_names,
        transforms,
        groups=data.groups,
        group_unit=group_unit(data),
    )
    report["data"] = str(data_path)
    report["dataset_sha256"] = content
    report["split"] = None if raw else split
    report["fold"] = fold
    report["fold_from_model"] = fold_from_model
    report["scored_folds"] = None if data.folds is None else sorted(set(data.folds.tolist()))
    report["test_images"] = 0 if raw else int(test_images_mask(data, fold, split).sum())
    report["training_images"] = int(trained.sum())
    report["model"] = str(models[0].path)
    report["models"] = [str(m.path) for m in models]
    report["tta"] = tta
    out_dir = None
    if out is not None:
        out_dir = write_report(report, out)
    return EvaluationResult(report=report, out_dir=out_dir)


def write_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``metrics.json`` and ``confusion.png`` of ``report`` into ``out`` (created).

    Raises:
        OutputError: The folder cannot be created.
    """
    from model.report import write_confusion_png

    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{literal(out_dir)}: cannot create ({err.strerror})") from err
    write_json(out_dir / METRICS_NAME, report)
    write_confusion_png(report, out_dir / CONFUSION_NAME)
    return out_dir


def group_unit(data: Dataset) -> str:
    """What one group of ``data.groups`` is: ``images`` (a raw folder), ``groups`` or ``sources``.

    An expand output made with ``--group-regex`` records the regex's match as the
    group of each source (``groups``); without it each source is its own group.
    """
    if data.attrs.get("source") == RAW_SOURCE:
        return "images"
    recipe = data.attrs.get("recipe")
    return "groups" if isinstance(recipe, dict) and recipe.get("group_regex") else "sources"


@dataclass
class ImagePrediction:
    """The prediction for one image file."""

    path: str
    predicted: str
    probabilities: dict[str, float]


def predict_files(
    model_path: str | Path,
    images: Sequence[str | Path],
    device: str = "auto",
    tta: bool = False,
) -> list[ImagePrediction]:
    """Classify image files, each preprocessed like ``expand``'s originals.

    Args:
        model_path: ``RUN/model.pt``.
        images: Image files of any size and format ``augtool`` decodes.
        device: ``auto``, ``cuda`` or ``cpu``.
        tta: Average over the 8 flips and transposes of each image.

    Returns:
        One prediction per file, in order.

    Raises:
        InputError: Unreadable model or image.
    """
    from augtool.store.decode import load_resized

    dev = resolve_device(device)
    ckpt: Checkpoint = load_checkpoint(model_path, dev)
    if not images:
        raise InputError("no image files given")
    stack = np.stack([load_resized(p, ckpt.input_size) for p in images])
    on_device = DeviceImages(stack, np.zeros(len(stack), dtype=np.int64), ckpt.normalization, dev)
    pred = evaluate(ckpt.net, on_device, amp=use_amp(ckpt.config.get("amp"), dev), tta=tta)
    return [
        ImagePrediction(
            path=str(p),
            predicted=ckpt.class_names[int(pred.predicted[i])],
            probabilities={
                c: float(pred.probabilities[i, j]) for j, c in enumerate(ckpt.class_names)
            },
        )
        for i, p in enumerate(images)
    ]
