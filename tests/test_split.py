"""Splits: grouped, stratified, seeded; and the paper's leaky protocol."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augtool.engine.split import merge_groups, parse_split, split_by_group, split_by_image
from augtool.errors import OptionError


def test_parse_split() -> None:
    assert parse_split("0.7").names == ("train", "test")
    assert parse_split("0.7").fractions == pytest.approx((0.7, 0.3))
    assert parse_split("0.7,0.15,0.15").names == ("train", "val", "test")
    assert not parse_split("none").enabled
    for bad in ("0", "1.5", "0.5,0.6", "a", "0.2,0.2,0.2,0.4"):
        with pytest.raises(OptionError, match="split"):
            parse_split(bad)


def test_merge_groups_joins_duplicate_files() -> None:
    groups = ["g1", "g2", "g3", "g4"]
    hashes = ["h1", "h2", "h1", "h4"]
    merged = merge_groups(groups, hashes)
    assert merged[0] == merged[2] == "g1"
    assert merged[1] == "g2" and merged[3] == "g4"


def test_merge_groups_is_transitive() -> None:
    merged = merge_groups(["a", "b", "b", "c"], ["h1", "h1", "h2", "h2"])
    assert len(set(merged)) == 1


group_sets = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=2, max_size=60)
fractions = st.sampled_from(["0.7", "0.5", "0.8", "0.7,0.15,0.15", "0.6,0.2,0.2"])


@settings(max_examples=300, deadline=None)
@given(groups=group_sets, split=fractions, seed=st.integers(0, 2**32 - 1))
def test_single_class_groups_never_cross_and_meet_targets(groups, split, seed) -> None:
    labels, names = [], []
    for gi, (label, size) in enumerate(groups):
        labels += [label] * size
        names += [f"g{gi}"] * size
    spec = parse_split(split)
    result = split_by_group(labels, names, spec, seed)
    assert result == split_by_group(labels, names, spec, seed)
    side = defaultdict(set)
    for g, s in zip(names, result, strict=True):
        side[g].add(s)
    assert all(len(v) == 1 for v in side.values())
    for c in set(labels):
        n_c = labels.count(c)
        largest = max(size for label, size in groups if label == c)
        got = Counter(s for s, lab in zip(result, labels, strict=True) if lab == c)
        for name, frac in zip(spec.names, spec.fractions, strict=True):
            assert abs(got.get(name, 0) - frac * n_c) <= largest + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 15)), min_size=2, max_size=80),
    split=fractions,
    seed=st.integers(0, 1000),
)
def test_mixed_class_groups_never_cross_and_meet_targets(items, split, seed) -> None:
    labels = [c for c, _ in items]
    names = [f"g{g}" for _, g in items]
    result = split_by_group(labels, names, parse_split(split), seed)
    side = defaultdict(set)
    for g, s in zip(names, result, strict=True):
        side[g].add(s)
    assert all(len(v) == 1 for v in side.values())
    assert result == split_by_group(labels, names, parse_split(split), seed)
    spec = parse_split(split)
    for c in set(labels):
        n_c = labels.count(c)
        largest = max(Counter(g for g, lab in zip(names, labels, strict=True) if lab == c).values())
        got = Counter(s for s, lab in zip(result, labels, strict=True) if lab == c)
        for name, frac in zip(spec.names, spec.fractions, strict=True):
            assert abs(got.get(name, 0) - frac * n_c) <= largest + 1e-9


def test_seed_changes_the_split() -> None:
    labels = [0] * 30 + [1] * 30
    names = [f"g{i}" for i in range(60)]
    a = split_by_group(labels, names, parse_split("0.7"), 0)
    b = split_by_group(labels, names, parse_split("0.7"), 1)
    assert a != b


def test_split_by_image_is_stratified_and_exact() -> None:
    labels = [0] * 100 + [1] * 50
    result = split_by_image(labels, parse_split("0.7"), 3)
    got = Counter(zip(result, labels, strict=True))
    assert got[("train", 0)] == 70 and got[("test", 0)] == 30
    assert got[("train", 1)] == 35 and got[("test", 1)] == 15
    assert result == split_by_image(labels, parse_split("0.7"), 3)
