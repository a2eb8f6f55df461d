"""Leakage-free, stratified, seeded splits (docs/splits.md).

The paper split 70/30 *after* augmenting, so almost every test image had
about ten augmented siblings in training. Here the default is to split the
*sources*: every output of a source, and of every source in the same group
(``--group-regex``: a patient, a smear) or with identical bytes, lands in one
split. ``split_by_image`` reproduces the paper's protocol for comparison.

``fold_by_group`` assigns the same kind of groups to K cross-validation folds
with the same machinery (K equal shares, stratified by class, seeded).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from augtool.errors import Message, OptionError

NO_SPLIT = "all"
_NAMES = {1: ("all",), 2: ("train", "test"), 3: ("train", "val", "test")}
_SPLIT_TAG = 0x5B117  # keys the split's generator apart from the outputs' generators
_FOLD_TAG = 0xF01D5  # keys the folds' generator apart from the fractional split's
#: Largest number of folds ``--folds`` accepts.
MAX_FOLDS = 100
#: Fold of an item in a dataset made without ``--folds``.
NO_FOLD = -1


@dataclass(frozen=True)
class SplitSpec:
    """Split names and fractions.

    Attributes:
        names: ``("all",)``, ``("train", "test")`` or ``("train", "val", "test")``.
        fractions: One fraction per name, summing to 1.
    """

    names: tuple[str, ...]
    fractions: tuple[float, ...]

    @property
    def enabled(self) -> bool:
        """False when everything goes to one split (``--split none``)."""
        return len(self.names) > 1


def parse_split(text: str) -> SplitSpec:
    """Parse a split: ``0.7``, ``0.7,0.3`` (train/test), ``0.7,0.15,0.15`` (train/val/test), none.

    Raises:
        OptionError: For malformed values, fractions outside (0, 1) or not summing to 1.
    """
    text = text.strip().lower()
    if text in ("none", "1", "1.0"):
        return SplitSpec(("all",), (1.0,))
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise OptionError(
            "split", f"expected 0.7, 0.7,0.3, 0.7,0.15,0.15 or none, got {text!r}"
        ) from None
    if len(parts) == 1:
        parts.append(1.0 - parts[0])
    if len(parts) not in (2, 3):
        raise OptionError(
            "split", "give one fraction (train), two (train,test) or three (train,val,test)"
        )
    if any(not 0.0 < p < 1.0 for p in parts):
        raise OptionError("split", f"each fraction must lie strictly between 0 and 1: {text}")
    if abs(sum(parts) - 1.0) > 1e-6:
        raise OptionError("split", f"fractions must sum to 1, they sum to {sum(parts):g}")
    return SplitSpec(_NAMES[len(parts)], tuple(parts))


def merge_groups(groups: Sequence[str], hashes: Sequence[str]) -> list[str]:
    """Join groups that share a source hash (duplicate files stay together).

    Args:
        groups: Group of each source.
        hashes: Content hash of each source.

    Returns:
        Per source, the name of its merged group (the smallest member group name).
    """
    parent: dict[str, str] = {g: g for g in groups}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    first_group_of_hash: dict[str, str] = {}
    for g, h in zip(groups, hashes, strict=True):
        other = first_group_of_hash.setdefault(h, g)
        a, b = find(g), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(g) for g in groups]


def check_folds(folds: int) -> int:
    """Validate ``--folds``: 0 (no folds) or 2..:data:`MAX_FOLDS`.

    Raises:
        OptionError: For any other value.
    """
    if folds != 0 and not 2 <= folds <= MAX_FOLDS:
        raise OptionError("folds", f"must be 0 (no folds) or 2..{MAX_FOLDS}, got {folds}")
    return folds


def fold_by_group(
    labels: Sequence[int],
    groups: Sequence[str],
    folds: int,
    seed: int,
) -> list[int]:
    """Assign whole groups to ``folds`` cross-validation folds, stratified by class.

    The same greedy assignment and repair as :func:`split_by_group`, with K
    equal shares: no group is in two folds, and for groups of one class every
    class in every fold is within one group of its share. Seeded separately from
    the fractional split.

    Args:
        labels: Class index of each item (source).
        groups: Group of each item; items of a group share a fold.
        folds: Number of folds K (2..:data:`MAX_FOLDS`).
        seed: Run seed.

    Returns:
        Fold (0..K-1) of each item.

    Raises:
        OptionError: If ``folds`` is out of range or there are fewer groups than folds.
    """
    check_folds(folds)
    if folds == 0:
        raise OptionError("folds", "must be at least 2 to assign folds")
    n_groups = len(set(groups))
    if n_groups < folds:
        raise OptionError(
            "folds", f"{folds} folds need at least {folds} groups; the sources form {n_groups}"
        )
    names = tuple(str(k) for k in range(folds))
    spec = SplitSpec(names, tuple([1.0 / folds] * folds))
    assigned = split_by_group(labels, groups, spec, seed, tag=_FOLD_TAG)
    return [int(a) for a in assigned]


def split_by_group(
    labels: Sequence[int],
    groups: Sequence[str],
    spec: SplitSpec,
    seed: int,
    tag: int = _SPLIT_TAG,
) -> list[str]:
    """Assign whole groups to splits, stratified by class.

    Groups are visited largest first (ties in a seeded random order); each goes
    to the split whose per-class counts most need it (least squares on the
    relative deficit). For groups of one class this keeps every class within
    one group of its target count in every split.

    Args:
        labels: Class index of each item (source).
        groups: Group of each item; items of a group never cross splits.
        spec: The split names and fractions.
        seed: Run seed.
        tag: Keys the ordering generator (the folds use their own).

    Returns:
        Split name of each item.
    """
    n = len(labels)
    if not spec.enabled:
        return [spec.names[0]] * n
    classes = sorted(set(labels))
    col = {c: i for i, c in enumerate(classes)}
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    names = sorted(members)
    vec = np.zeros((len(names), len(classes)))
    for gi, g in enumerate(names):
        for i in members[g]:
            vec[gi, col[labels[i]]] += 1
    class_totals = vec.sum(axis=0)
    fractions = np.asarray(spec.fractions)
    target = fractions[:, None] * class_totals[None, :]
    rng = np.random.default_rng(np.random.SeedSequence([seed, tag]))
    shuffled = rng.permutation(len(names))
    order = sorted(shuffled, key=lambda gi: -vec[gi].sum())  # stable: ties keep the shuffle
    current = np.zeros_like(target)
    choice = np.zeros(len(names), dtype=int)
    for gi in order:
        v = vec[gi]
        # Increase of the squared relative deviation if the group joins split s.
        cost = ((current + v - target) ** 2 - (current - target) ** 2) / class_totals
        s = int(np.argmin(cost.sum(axis=1)))
        current[s] += v
        choice[gi] = s
    _repair(vec, choice, current, target, class_totals)
    assigned = {names[gi]: spec.names[choice[gi]] for gi in range(len(names))}
    return [assigned[g] for g in groups]


def _repair(
    vec: np.ndarray,
    choice: np.ndarray,
    current: np.ndarray,
    target: np.ndarray,
    class_totals: np.ndarray,
) -> None:
    """Move single groups while that brings a class closer to its share.

    Groups holding several classes can leave the greedy pass a little more than
    one group away from a class's target; moving a group between splits fixes
    that in the cases seen. Changes ``choice`` and ``current`` in place.
    """
    largest = vec.max(axis=0)

    def badness(cur: np.ndarray) -> tuple[float, float]:
        excess = np.maximum(np.abs(cur - target) - largest, 0.0)
        return float((excess**2).sum()), float((((cur - target) ** 2) / class_totals).sum())

    best = badness(current)
    for _ in range(4 * len(choice)):
        if best[0] <= 1e-12:
            return
        improved = False
        for gi in range(len(choice)):
            if not vec[gi].any():
                continue
            for s in range(target.shape[0]):
                if s == choice[gi]:
                    continue
                trial = current.copy()
                trial[choice[gi]] -= vec[gi]
                trial[s] += vec[gi]
                score = badness(trial)
                if score < best:
                    best, current[:] = score, trial
                    choice[gi] = s
                    improved = True
        if not improved:
            return


def split_by_image(labels: Sequence[int], spec: SplitSpec, seed: int) -> list[str]:
    """The paper's protocol: split the outputs themselves, stratified by class.

    This leaks: augmented siblings of a test image sit in the training split.

    Args:
        labels: Class index of each output.
        spec: The split names and fractions.
        seed: Run seed.

    Returns:
        Split name of each output.
    """
    n = len(labels)
    if not spec.enabled:
        return [spec.names[0]] * n
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_TAG, 1]))
    out = [""] * n
    labels_arr = np.asarray(labels)
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == c)
        idx = idx[rng.permutation(len(idx))]
        bounds = np.round(np.cumsum(spec.fractions) * len(idx)).astype(int)
        start = 0
        for name, stop in zip(spec.names, bounds, strict=True):
            for i in idx[start:stop]:
                out[i] = name
            start = stop
    return out


LEAK_WARNING = Message(
    "{split_by} image reproduces the paper's protocol and leaks: augmented copies of "
    "the same source land in train and in test, so a test image usually has about ten "
    "near-duplicates in training and test accuracy is inflated. Use it only to compare "
    "with the paper; the default {split_by} source does not leak."
)
