"""Settlement postings per outcome and liability (the table in workflow.ledger's docstring)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.claims import ClaimType, Inspection, LedgerKind, Liability
from workflow.ledger import Outcome, SettledLine, settlement_postings

AT = datetime(2026, 3, 1, tzinfo=UTC)


def _line(inspection: Inspection | None, consignor: int = 7, line_id: int = 1) -> SettledLine:
    return SettledLine(line_id, 10 + line_id, consignor, 1, 2, 10_000, 2_000, inspection)


def _sums(outcome: Outcome) -> tuple[dict[LedgerKind, int], int]:
    postings, carrier = settlement_postings(outcome, AT)
    sums: dict[LedgerKind, int] = {}
    for p in postings:
        sums[p.kind] = sums.get(p.kind, 0) + p.amount
    assert len({p.idempotency_key for p in postings}) == len(postings)
    return sums, sum(c.amount for c in carrier)


def test_intact_return_reverses_sale_and_commission() -> None:
    sums, carrier = _sums(
        Outcome(1, ClaimType.RETURN_REFUND, "CNY", Liability.CONSIGNOR, (_line(Inspection.INTACT),))
    )
    assert sums == {LedgerKind.RETURN_REVERSAL: -10_000, LedgerKind.COMMISSION: 1_000}
    assert carrier == 0


@pytest.mark.parametrize(
    ("liability", "compensation_sign", "carrier_amount"),
    [
        (Liability.CONSIGNOR, -1, 0),
        (Liability.PLATFORM, 1, 0),
        (Liability.CARRIER, 1, 3_000),
        (Liability.BUYER, 1, 0),
    ],
)
def test_damage_compensation_follows_liability(
    liability: Liability, compensation_sign: int, carrier_amount: int
) -> None:
    outcome = Outcome(
        1,
        ClaimType.RETURN_REFUND,
        "CNY",
        liability,
        (_line(Inspection.DAMAGED),),
        compensation_amount=3_000,
    )
    sums, carrier = _sums(outcome)
    assert sums[LedgerKind.COMPENSATION] == compensation_sign * 3_000
    assert sums[LedgerKind.RETURN_REVERSAL] == -10_000
    assert carrier == carrier_amount
    assert outcome.buyer_refund() == (7_000 if liability is Liability.BUYER else 10_000)


def test_carrier_loss_books_a_carrier_claim_and_spares_the_consignor() -> None:
    sums, carrier = _sums(
        Outcome(1, ClaimType.REFUND_ONLY, "CNY", Liability.CARRIER, (_line(None),))
    )
    assert sums == {}
    assert carrier == 10_000


def test_goodwill_is_the_platforms_unless_put_on_the_consignor() -> None:
    assert _sums(
        Outcome(
            1,
            ClaimType.REFUND_ONLY,
            "CNY",
            Liability.PLATFORM,
            (_line(None),),
            goodwill_amount=2_500,
        )
    ) == ({}, 0)
    sums, _ = _sums(
        Outcome(
            1,
            ClaimType.REFUND_ONLY,
            "CNY",
            Liability.CONSIGNOR,
            (_line(None),),
            goodwill_amount=2_500,
        )
    )
    assert sums == {LedgerKind.ADJUSTMENT: -2_500}


def test_exchange_posts_nothing() -> None:
    assert _sums(Outcome(1, ClaimType.EXCHANGE, "CNY", Liability.CONSIGNOR, (_line(None),))) == (
        {},
        0,
    )


def test_compensation_splits_exactly_across_damaged_lines_of_two_consignors() -> None:
    lines = (
        _line(Inspection.DAMAGED, 7, 1),
        _line(Inspection.DAMAGED, 8, 2),
        _line(Inspection.INTACT, 9, 3),
    )
    postings, _ = settlement_postings(
        Outcome(
            1, ClaimType.RETURN_REFUND, "CNY", Liability.CONSIGNOR, lines, compensation_amount=1_001
        ),
        AT,
    )
    compensation = {p.consignor_id: p.amount for p in postings if p.kind is LedgerKind.COMPENSATION}
    assert sum(compensation.values()) == -1_001
    assert set(compensation) == {7, 8}


def test_undoing_a_sale_whose_credit_is_pending_falls_due_with_that_credit() -> None:
    later = AT + timedelta(days=5)
    pending, released = (
        replace(_line(Inspection.DAMAGED, line_id=1), sale_available_at=later),
        replace(_line(Inspection.INTACT, line_id=2), sale_available_at=AT - timedelta(days=1)),
    )
    postings, _ = settlement_postings(
        Outcome(
            1,
            ClaimType.RETURN_REFUND,
            "CNY",
            Liability.CONSIGNOR,
            (pending, released),
            compensation_amount=1_000,
        ),
        AT,
    )
    due = {(p.kind, p.order_line_id): p.available_at for p in postings}
    assert due[(LedgerKind.RETURN_REVERSAL, pending.order_line_id)] == later
    assert due[(LedgerKind.COMMISSION, pending.order_line_id)] == later
    assert due[(LedgerKind.RETURN_REVERSAL, released.order_line_id)] == AT
    assert due[(LedgerKind.COMMISSION, released.order_line_id)] == AT
    assert due[(LedgerKind.COMPENSATION, pending.order_line_id)] == AT  # a charge is due now


@given(st.data())
def test_commission_given_back_over_claims_adds_up_to_the_lines_commission(
    data: st.DataObject,
) -> None:
    """However an order line's units are undone over separate claims, the commission given
    back adds up to the line's commission once every unit is back, and never goes past it
    (each claim's share rounded on its own gave back 0.51 of a 0.50 commission over three
    units, or 0.99 of 1.00)."""
    ordered = data.draw(st.integers(min_value=1, max_value=12), label="units")
    price = data.draw(st.integers(min_value=1, max_value=100_000), label="unit price")
    commission = data.draw(st.integers(min_value=0, max_value=price * ordered), label="commission")
    undone = returned = 0
    while undone < ordered:
        units = data.draw(st.integers(min_value=1, max_value=ordered - undone), label="claim")
        line = SettledLine(
            1,
            11,
            7,
            units,
            ordered,
            price,
            commission,
            Inspection.INTACT,
            units_undone_before=undone,
            commission_returned_before=returned,
        )
        postings, _ = settlement_postings(
            Outcome(undone + 1, ClaimType.RETURN_REFUND, "CNY", Liability.PLATFORM, (line,)), AT
        )
        back = sum(p.amount for p in postings if p.kind is LedgerKind.COMMISSION)
        assert back >= 0
        undone, returned = undone + units, returned + back
        assert returned <= commission
    assert returned == commission
