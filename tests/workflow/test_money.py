"""Money: integer minor units, exact splits, no floats anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.errors import CurrencyMismatch, InvalidAmount
from workflow.ledger import split
from workflow.money import Money


def test_currencies_do_not_mix() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(100, "CNY") + Money(100, "USD")


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("12", 1200),
        ("12.3", 1230),
        ("12.34", 1234),
        ("0.01", 1),
        (".5", 50),
        ("1,234.50", 123450),
        ("1,234,567", 123456700),
    ],
)
def test_parse_typed_amounts_without_floats(text: str, minor: int) -> None:
    assert Money.parse(text, "CNY").amount == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "12.345",
        "abc",
        "1.2.3",
        ".",
        "1e3",
        "١٢",
        "0,50",
        "1,5",
        "12,34.5",
        ",100",
        "1,0000",
    ],
)
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text, "CNY")


def test_yen_has_no_minor_unit() -> None:
    assert Money.parse("1200", "JPY").amount == 1200
    with pytest.raises(InvalidAmount):
        Money.parse("12.5", "JPY")
    assert Money(1200, "JPY").format() == "1200 JPY"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_and_parse_round_trip(amount: int) -> None:
    text = Money(abs(amount), "CNY").format().split()[0]
    assert Money.parse(text, "CNY").amount == abs(amount)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8),
)
def test_split_is_exact(total: int, weights: list[int]) -> None:
    parts = split(total, weights)
    assert len(parts) == len(weights)
    if sum(weights):
        assert sum(parts) == total
        assert all(p >= 0 for p in parts)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8),
)
def test_split_gives_each_part_its_share_within_one_minor_unit(
    total: int, weights: list[int]
) -> None:
    """No part is more than one minor unit off its exact share (total × weight / sum): a
    refund split over a claim's orders never puts on one order more than it is due (with a
    total up to the sum, never more than its weight), nor anything on a weight of zero."""
    whole = sum(weights)
    if not whole:
        return
    parts = split(total, weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part * whole - total * weight) < whole, (parts, weights)
        if total <= whole:
            assert part <= weight
