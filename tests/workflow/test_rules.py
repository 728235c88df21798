"""Auto-review rules: each decision names the rule that fired and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

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
                "delivered_at": None,
            },
            Verdict.APPROVE,
            "overdue_shipment",
        ),
        (
            {
                "reason": Reason.NOT_RECEIVED,
                "claim_type": ClaimType.REFUND_ONLY,
                "delivered_at": None,
                "ship_by": NOW + timedelta(hours=1),
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
