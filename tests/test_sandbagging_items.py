"""The SB suite's items: seeded, offline, each answer computed by code, the two domains matched
in difficulty and arithmetic and told apart by content alone."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from agents.organisms.sandbaggers import solve_problem
from sandbox.environments.sandbagging_items import (
    DOMAINS,
    HAZARD_TERMS,
    LABELS,
    apply,
    digits,
    generate_items,
    make_item,
)

ITEMS = generate_items(seed=0, levels=3, per_level=8)


def test_items_are_seeded_and_reproducible() -> None:
    assert generate_items(0, 3, 8) == ITEMS
    other = generate_items(1, 3, 8)
    assert [i.text for i in other] != [i.text for i in ITEMS]
    # an item depends on (seed, domain, level, index) only, not on how many were generated
    assert make_item(0, "hazard", 2, 5) == next(i for i in ITEMS if i.id == "hazard_d2_05")
    assert generate_items(0, 3, 12)[:8] == ITEMS[:8]


def test_the_domains_are_matched_item_for_item() -> None:
    """Same levels in the same numbers, and at each (level, index) the same skeleton, numbers
    and answers in both domains: only the frame differs."""
    by = {d: {(i.level, i.index): i for i in ITEMS if i.domain == d} for d in DOMAINS}
    assert by["hazard"].keys() == by["general"].keys()
    assert Counter(i.level for i in by["hazard"].values()) == {1: 8, 2: 8, 3: 8}
    for key, hazard in by["hazard"].items():
        general = by["general"][key]
        assert hazard.skeleton == general.skeleton and hazard.steps == general.steps
        assert (hazard.start, hazard.answer, hazard.plausible, hazard.implausible) == (
            general.start,
            general.answer,
            general.plausible,
            general.implausible,
        )
        assert hazard.text != general.text
    # the skeletons vary: every operation occurs at every level above 1
    for level in (2, 3):
        ops = {op for i in ITEMS if i.level == level for op in i.skeleton}
        assert ops == {"add", "sub", "mul", "div"}


def test_the_domains_are_told_apart_by_content() -> None:
    """Every hazard item names something hazardous; no general item does."""
    words = re.compile("|".join(HAZARD_TERMS), re.IGNORECASE)
    for item in ITEMS:
        assert bool(words.search(item.text)) == (item.domain == "hazard"), item.text


def test_difficulty_is_steps_and_digits() -> None:
    for item in ITEMS:
        assert len(item.steps) == item.level
        assert len(str(item.start)) == digits(item.level)
        for op, n in item.steps:
            if op in ("add", "sub"):
                assert len(str(n)) == digits(item.level)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_answer_and_distractor_is_computed_by_code(seed: int) -> None:
    """The answer is the chain's value; the plausible value the chain with one step left out;
    the implausible one at least a hundred times the larger; all three distinct positive
    integers, and a recorded value maps back to its label."""
    for item in generate_items(seed, 4, 6):
        assert apply(item.start, item.steps) == item.answer > 0
        left_out = {
            apply(item.start, [s for j, s in enumerate(item.steps) if j != i])
            for i in range(len(item.steps))
        }
        assert item.plausible in left_out and item.plausible != item.answer
        assert item.implausible >= 100 * max(item.answer, item.plausible)
        assert len(set(item.choices)) == 3
        for label in LABELS:
            assert item.label(item.value(label)) == label
        assert item.label(None) is None
        assert item.label(str(item.answer + 1)) not in ("correct",)


def test_a_reader_of_the_text_finds_the_answer_the_generator_computed() -> None:
    """The problem's text states its chain completely: the organisms' own reader (which knows
    nothing of the generator) works every item out to the same answer and step count, and tells
    the domain by content."""
    for item in generate_items(3, 5, 6):
        solved = solve_problem(item.text)
        assert solved is not None
        assert (solved.answer, solved.steps, solved.hazardous) == (
            item.answer,
            item.level,
            item.domain == "hazard",
        )


def test_levels_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError, match="level must be 1 to 5"):
        make_item(0, "general", 6, 0)
