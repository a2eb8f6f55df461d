"""Scoring a trained model: ``augtool evaluate`` and ``augtool predict``.

:func:`evaluate_run` scores one model, or an ensemble, on a split or a
cross-validation fold of an expand output, or on a raw image folder, and
:func:`write_report` writes what it found; :func:`predict_files` classifies
image files. Scoring every fold of a cross-validated run is
:func:`model.scoring.evaluate_folds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augtool.errors import InputError, OutputError, literal
from augtool.progress import Progress
from augtool.store.ledger import dataset_sha256
from model.checkpoint import Checkpoint, load_checkpoint
from model.data import DeviceImages, FolderReader, is_raw_folder, load_for_evaluation
from model.folds import group_unit
from model.metrics import classification_report
from model.report import write_confusion_png
from model.rundir import CONFUSION_NAME, METRICS_NAME, MODEL_NAME, write_json
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
from model.train import evaluate, resolve_device, use_amp


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
    read_folder: FolderReader | None = None,
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
        read_folder: Reads ``data_path`` when it is a raw folder
            (:func:`augtool.load_image_folder`); ``None`` refuses raw folders.

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
    dev = resolve_device(device)
    models = [load_fold_model(m, fold, dev) for m in (model_path, *ensemble)]
    check_compatible(models)
    first = models[0].checkpoint
    raw = is_raw_folder(Path(data_path))
    fold_from_model = False
    if fold is None and not raw and models[0].test_fold is not None and split in FOLD_PARTS:
        whole = load_for_evaluation(data_path, None, first.input_size, None, read_folder)
        if whole.fold_count:  # a fold's model on its own data: score its own fold
            fold, fold_from_model = models[0].test_fold, True
            for model in models:
                check_fold(model, fold)
            data = fold_part(whole, fold, split)
        else:
            data = whole.subset(split)
    elif fold is None:
        data = load_for_evaluation(data_path, split, first.input_size, progress, read_folder)
    else:
        data = fold_part(
            load_for_evaluation(data_path, None, first.input_size, None, read_folder),
            fold,
            split or "all",
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
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{literal(out_dir)}: cannot create ({err.strerror})") from err
    write_json(out_dir / METRICS_NAME, report)
    write_confusion_png(report, out_dir / CONFUSION_NAME)
    return out_dir


@dataclass
class ImagePrediction:
    """The prediction for one image file."""

    path: str
    predicted: str
    probabilities: dict[str, float]


def run_model(model: str | Path) -> Path:
    """The model file ``model`` names: itself, or the ``model.pt`` of a run folder.

    Raises:
        InputError: For a folder without ``model.pt`` (a cross-validated run has one per fold).
    """
    path = Path(model)
    if not path.is_dir() or (path / MODEL_NAME).is_file():
        return path / MODEL_NAME if path.is_dir() else path
    raise InputError(
        f"{literal(path)}: a folder without {MODEL_NAME}; give a run folder or its {MODEL_NAME} "
        f"(a cross-validated run holds one in each fold-K folder)"
    )


def predict_files(
    model_path: str | Path,
    images: Sequence[str | Path],
    device: str = "auto",
    tta: bool = False,
) -> list[ImagePrediction]:
    """Classify image files, each preprocessed like ``expand``'s originals.

    Args:
        model_path: ``RUN/model.pt``, or the run folder ``RUN``.
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
    ckpt: Checkpoint = load_checkpoint(run_model(model_path), dev)
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
