"""Auto-review rules: each decision names the rule that fired and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.claims import ClaimType, Reason, Source
from workflow.rules import ReviewFacts, ReviewPolicy, Verdict, decide

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
BASE = ReviewFacts(
    claim_type=ClaimType.RETURN_REFUND,
    reason=Reason.NO_REASON_7_DAYS,
    source=Source.BUYER,
    amount=20_000,
    now=NOW,
    delivered_at=NOW - timedelta(days=2),
    shipped_at=NOW - timedelta(days=7),
    ship_by=NOW - timedelta(days=6),
    buyer_claims_last_30_days=0,
    evidence_count=0,
)
POLICY = ReviewPolicy()


@pytest.mark.parametrize(
    ("change", "verdict", "rule"),
    [
        ({}, Verdict.APPROVE, "no_reason_window"),
        ({"delivered_at": NOW - timedelta(days=7, seconds=1)}, Verdict.REJECT, "no_reason_window"),
        ({"delivered_at": NOW - timedelta(days=7)}, Verdict.APPROVE, "no_reason_window"),
        ({"delivered_at": None}, Verdict.MANUAL, "no_reason_window"),
        ({"amount": POLICY.manual_review_above + 1}, Verdict.MANUAL, "high_value"),
        ({"amount": POLICY.manual_review_above}, Verdict.APPROVE, "no_reason_window"),
        ({"buyer_claims_last_30_days": 3}, Verdict.MANUAL, "claim_frequency"),
        ({"reason": Reason.OTHER}, Verdict.MANUAL, "needs_human"),
        ({"reason": Reason.DAMAGED_IN_TRANSIT}, Verdict.MANUAL, "missing_evidence"),
        (
            {"reason": Reason.DAMAGED_IN_TRANSIT, "evidence_count": 2},
            Verdict.APPROVE,
            "evidenced_damage",
        ),
        (
            {
                "reason": Reason.NOT_RECEIVED,
                "claim_type": ClaimType.REFUND_ONLY,
                "shipped_at": None,
                "delivered_at": None,
            },
            Verdict.APPROVE,
            "overdue_shipment",
        ),
        (
            {
                "reason": Reason.NOT_RECEIVED,
                "claim_type": ClaimType.REFUND_ONLY,
                "shipped_at": None,
                "delivered_at": None,
                "ship_by": NOW + timedelta(hours=1),
            },
            Verdict.MANUAL,
            "default",
        ),
        # Shipped, still in transit past the shipping deadline: not "never shipped".
        (
            {
                "reason": Reason.NOT_RECEIVED,
                "claim_type": ClaimType.REFUND_ONLY,
                "delivered_at": None,
            },
            Verdict.MANUAL,
            "default",
        ),
        # Shipped late (after the deadline), still in transit: shipped all the same.
        (
            {
                "reason": Reason.NOT_RECEIVED,
                "claim_type": ClaimType.REFUND_ONLY,
                "shipped_at": NOW - timedelta(days=1),
                "delivered_at": None,
            },
            Verdict.MANUAL,
            "default",
        ),
        ({"reason": Reason.QUALITY_ISSUE, "evidence_count": 1}, Verdict.MANUAL, "default"),
    ],
)
def test_decision_and_the_rule_that_made_it(change: dict, verdict: Verdict, rule: str) -> None:
    decision = decide(replace(BASE, **change), POLICY)
    assert (decision.verdict, decision.rule) == (verdict, rule)
    assert decision.why


def test_policy_values_are_data() -> None:
    strict = ReviewPolicy(manual_review_above=10_000, no_reason_window=timedelta(days=1))
    assert decide(BASE, strict).rule == "no_reason_window"
    assert decide(BASE, strict).verdict is Verdict.REJECT
    assert decide(replace(BASE, delivered_at=NOW - timedelta(hours=1)), strict).rule == "high_value"


def test_the_value_limit_is_held_in_the_claims_own_currency() -> None:
    """100,000 minor units are 1,000.00 CNY but only 100,000 JPY: a yen claim is held to
    the limit set for yen, or, with none set, always goes to a person."""
    yen = replace(BASE, amount=99_999, currency="JPY")
    decision = decide(yen, POLICY)
    assert (decision.verdict, decision.rule) == (Verdict.MANUAL, "high_value")
    assert "JPY" in decision.why
    with_yen = replace(POLICY, manual_review_above_in=(("JPY", 150_000),))
    assert decide(yen, with_yen).verdict is Verdict.APPROVE
    assert decide(replace(yen, amount=150_001), with_yen).rule == "high_value"
    assert decide(replace(BASE, amount=99_999), with_yen).verdict is Verdict.APPROVE  # CNY


_MOMENTS = st.one_of(
    st.none(), st.integers(-30 * 24, 30 * 24).map(lambda h: NOW + timedelta(hours=h))
)


@given(
    claim_type=st.sampled_from(ClaimType),
    reason=st.sampled_from(Reason),
    source=st.sampled_from(Source),
    shipped_at=_MOMENTS,
    delivered_at=_MOMENTS,
    ship_by_hours=st.integers(-30 * 24, 30 * 24),
)
def test_only_an_order_never_shipped_by_its_deadline_is_refunded_as_overdue(
    claim_type: ClaimType,
    reason: Reason,
    source: Source,
    shipped_at: datetime | None,
    delivered_at: datetime | None,
    ship_by_hours: int,
) -> None:
    """Whatever else the claim says: a shipped order (in transit, or delivered) is never
    approved by the overdue-shipment rule; a never-shipped one past its deadline, asking for
    its money back because it did not arrive, is, unless a rule before it wants a person."""
    ship_by = NOW + timedelta(hours=ship_by_hours)
    facts = replace(
        BASE,
        claim_type=claim_type,
        reason=reason,
        source=source,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        ship_by=ship_by,
        amount=1_000,
    )
    decision = decide(facts, POLICY)
    never_shipped = shipped_at is None and delivered_at is None and ship_by < NOW
    if decision.rule == "overdue_shipment":
        assert never_shipped and decision.verdict is Verdict.APPROVE
    if never_shipped and (reason, claim_type) == (Reason.NOT_RECEIVED, ClaimType.REFUND_ONLY):
        assert decision.rule == "overdue_shipment"
