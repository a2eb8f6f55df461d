"""The expansion plan: the paper's exact counts and its allocation rule."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augtool.engine.plan import allocate, count_by, make_plan, resolve_target
from augtool.errors import OptionError
from augtool.pipeline.builtins import PAPER as PAPER_STEPS
from augtool.pipeline.steps import output_rng

PAPER = ["ALL"] * 49 + ["AML"] * 33 + ["normal"] * 59
TEN = list(PAPER_STEPS)


def test_paper_conventional_counts() -> None:
    jobs = make_plan(PAPER, 1492, TEN)
    assert len(jobs) == 1492
    assert count_by(jobs, PAPER) == {"ALL": 539, "AML": 363, "normal": 590}


def test_paper_pca_counts() -> None:
    jobs = make_plan(PAPER, 1492, TEN, pca_count=184)
    assert len(jobs) == 1676
    assert count_by(jobs, PAPER) == {"ALL": 598, "AML": 429, "normal": 649}
    pca = [j for j in jobs if j.transform == "pca"]
    assert count_by(pca, PAPER) == {"ALL": 59, "AML": 66, "normal": 59}


def test_every_source_has_its_original_once_and_copies_numbered() -> None:
    jobs = make_plan(PAPER, 1492, TEN, pca_count=184)
    by_source: dict[int, list[int]] = {}
    for j in jobs:
        by_source.setdefault(j.source, []).append(j.copy)
    assert sorted(by_source) == list(range(len(PAPER)))
    for copies in by_source.values():
        assert copies == list(range(len(copies)))
    assert all((j.transform == "original") == (j.copy == 0) for j in jobs)


def test_copies_cycle_from_a_per_source_offset() -> None:
    jobs = make_plan(PAPER, 1492, TEN)
    first = {j.source: j.transform for j in jobs if j.copy == 1}
    assert first[0] == TEN[0] and first[1] == TEN[1] and first[10] == TEN[0]
    counts = Counter(j.transform for j in jobs if j.copy > 0)
    assert max(counts.values()) - min(counts.values()) <= 1
    for s in range(len(PAPER)):
        mine = [j.transform for j in jobs if j.source == s and j.copy > 0]
        assert len(set(mine)) == len(mine) or len(mine) > len(TEN)


def test_transform_subset() -> None:
    jobs = make_plan(["a"] * 4, 12, ["rotate", "flip_x"])
    assert {j.transform for j in jobs} == {"original", "rotate", "flip_x"}


def test_target_and_factor() -> None:
    assert resolve_target(141, 1492, None) == 1492
    assert resolve_target(141, None, 10) == 1410
    assert resolve_target(3, None, 2.5) == 8
    with pytest.raises(OptionError, match="target"):
        resolve_target(141, 100, None)
    with pytest.raises(OptionError, match="factor"):
        resolve_target(141, None, 0.5)
    with pytest.raises(OptionError):
        resolve_target(141, 1492, 2.0)


def test_no_augment_mask_keeps_total_on_the_augmentable_sources() -> None:
    classes = ["a"] * 5 + ["b"] * 5
    augment = [True, True, True, False, False] * 2
    jobs = make_plan(classes, 40, TEN, pca_count=4, augment=augment)
    assert len(jobs) == 44
    for s in range(10):
        n = sum(1 for j in jobs if j.source == s)
        assert (n == 1) == (not augment[s])


def test_output_rng_depends_only_on_seed_hash_copy() -> None:
    h = "ab" * 32
    a = output_rng(0, h, 3).random(4)
    np.testing.assert_array_equal(a, output_rng(0, h, 3).random(4))
    assert not np.array_equal(a, output_rng(1, h, 3).random(4))
    assert not np.array_equal(a, output_rng(0, h, 4).random(4))
    assert not np.array_equal(a, output_rng(0, "cd" * 32, 3).random(4))


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    extra_per=st.integers(0, 15),
    remainder=st.integers(0, 200),
    pca=st.integers(0, 300),
)
def test_plan_properties(sizes: list[int], extra_per: int, remainder: int, pca: int) -> None:
    classes = [f"c{i}" for i, n in enumerate(sizes) for _ in range(n)]
    n = len(classes)
    total = n + extra_per * n + remainder % (n + 1)
    jobs = make_plan(classes, total, TEN, pca_count=pca)
    assert len(jobs) == total + pca
    assert {j.source for j in jobs} == set(range(n))
    conv = Counter(j.source for j in jobs if j.transform != "pca")
    assert max(conv.values()) - min(conv.values()) <= 1
    # The remainder goes to the smallest classes first.
    rank = {c: (sizes[int(c[1:])], c) for c in set(classes)}
    extra = [i for i in range(n) if conv[i] == max(conv.values())]
    if max(conv.values()) != min(conv.values()):
        worst_with = max(rank[classes[i]] for i in extra)
        without = [i for i in range(n) if conv[i] == min(conv.values())]
        assert all(rank[classes[i]] >= worst_with for i in without)


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=50), st.integers(0, 500))
def test_allocate_is_even_and_exact(class_of: list[str], extra: int) -> None:
    counts = allocate(class_of, extra)
    assert sum(counts) == extra
    assert max(counts) - min(counts) <= 1
