"""Which images a run trains, chooses and is scored on: splits, folds and groups.

An expand output has train/val/test splits, or (``expand --folds K``) K
cross-validation folds that replace them: fold k's run tests on fold k,
chooses its kept epoch on fold k+1 (:func:`val_fold`) and trains on the rest
(:func:`fold_parts`). Groups (a smear, a patient) never straddle two folds;
:func:`group_key` compares them across datasets and :func:`group_unit` says
what one group is.
"""

from __future__ import annotations

from augtool.errors import InputError, OptionError
from augtool.store.dataset import Dataset
from model.data import RAW_SOURCE


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


def group_unit(data: Dataset) -> str:
    """What one group of ``data.groups`` is: ``images`` (a raw folder), ``groups`` or ``sources``.

    An expand output made with ``--group-regex`` records the regex's match as the
    group of each source (``groups``); without it each source is its own group.
    """
    if data.attrs.get("source") == RAW_SOURCE:
        return "images"
    recipe = data.attrs.get("recipe")
    return "groups" if isinstance(recipe, dict) and recipe.get("group_regex") else "sources"
