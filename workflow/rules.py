"""Auto-review rules as data, and the decision they produce.

The policy values (windows, thresholds, which reason/type pairs always need a person) are data
loaded from settings; the rules are an ordered tuple of named checks evaluated first-match.
Every decision names the rule that fired and why, and that is stored on the claim and in its
audit row, so "why was my claim rejected?" always has an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from workflow.claims import ClaimType, Reason, Source


class Verdict(StrEnum):
    APPROVE = "approve"
    MANUAL = "manual"
    REJECT = "reject"

    @property
    def trigger(self) -> str:
        return {"approve": "auto_approve", "manual": "send_to_review", "reject": "auto_reject"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Configurable thresholds; defaults follow common marketplace practice."""

    no_reason_window: timedelta = timedelta(days=7)
    # The after-sales period: a buyer may file a claim on a delivered order until this long
    # after delivery (staff may still open one for them later).
    claim_window: timedelta = timedelta(days=30)
    manual_review_above: int = 100_000  # minor units of ``manual_review_currency``: 1,000.00
    # The currency ``manual_review_above`` is in. A claim in another currency is held to the
    # limit set for that currency here (minor units), or, with none set, goes to a person:
    # 100,000 minor units are 1,000.00 CNY but only 100,000 JPY.
    manual_review_currency: str = "CNY"
    manual_review_above_in: tuple[tuple[str, int], ...] = ()
    max_claims_per_30_days: int = 3
    always_manual: frozenset[tuple[Reason, ClaimType]] = field(
        default_factory=lambda: frozenset(
            {
                (Reason.OTHER, ClaimType.REFUND_ONLY),
                (Reason.OTHER, ClaimType.RETURN_REFUND),
                (Reason.OTHER, ClaimType.EXCHANGE),
                (Reason.NOT_AS_DESCRIBED, ClaimType.REFUND_ONLY),
                (Reason.QUALITY_ISSUE, ClaimType.REFUND_ONLY),
            }
        )
    )
    damage_needs_evidence: bool = True
    review_sla: timedelta = timedelta(hours=24)
    info_deadline: timedelta = timedelta(days=3)
    return_deadline: timedelta = timedelta(days=7)
    # A carrier's scan of a return parcel can reach us hours after the drop-off (scans are
    # often uploaded in batches): a claim expires this long after its return deadline, so a
    # parcel handed over in time is never expired before its scan arrives.
    return_scan_grace: timedelta = timedelta(hours=24)
    # The buyer is reminded this long before the return deadline (at once if it is nearer).
    return_reminder_before: timedelta = timedelta(days=2)
    compensation_deadline: timedelta = timedelta(days=2)
    settlement_hold: timedelta = timedelta(0)
    shipping_sla: timedelta = timedelta(hours=48)
    # A parcel a claim waits for (a replacement, a return the buyer handed over) not delivered
    # this long after it went out: staff are told (it may be lost; no scan will move the claim).
    parcel_overdue: timedelta = timedelta(days=7)
    # An order not shipped by its deadline: the system opens a refund-only claim (True) or
    # offers the buyer to open one (False). Consignor and staff are told either way.
    overdue_opens_claim: bool = True

    def review_limit(self, currency: str) -> int | None:
        """The most a claim in ``currency`` may be worth to be approved by the rules (minor
        units); None: no limit is set for that currency, so every such claim needs a person."""
        if currency == self.manual_review_currency:
            return self.manual_review_above
        return dict(self.manual_review_above_in).get(currency)


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What the rules look at; gathered by the review service from storage."""

    claim_type: ClaimType
    reason: Reason
    source: Source
    amount: int
    now: datetime
    delivered_at: datetime | None
    # When the claim's orders shipped (the earliest, if several): None only if none shipped.
    shipped_at: datetime | None
    ship_by: datetime
    buyer_claims_last_30_days: int
    evidence_count: int
    # When the buyer filed: a window the buyer filed within stays met however late the
    # review runs (a sweep held up by a restart or a backlog). None: ``now``.
    filed_at: datetime | None = None
    currency: str = "CNY"  # of ``amount``


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    rule: str
    why: str


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    check: Callable[[ReviewFacts, ReviewPolicy], Decision | None]


def no_reason_return_open(delivered_at: datetime | None, now: datetime, p: ReviewPolicy) -> bool:
    """Whether a no-reason return may still be asked for: delivered, and not too long ago
    (the claim dialog offers the reason only then; review rejects it otherwise)."""
    return delivered_at is not None and now - delivered_at <= p.no_reason_window


def claim_window_open(delivered_at: datetime | None, now: datetime, p: ReviewPolicy) -> bool:
    """Whether a buyer may still file a claim on an order (an undelivered one: always)."""
    return delivered_at is None or now - delivered_at <= p.claim_window


def _outside_window(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    if f.reason is not Reason.NO_REASON_7_DAYS:
        return None
    if f.delivered_at is None:
        return Decision(Verdict.MANUAL, "no_reason_window", "not delivered yet")
    if not no_reason_return_open(f.delivered_at, f.filed_at or f.now, p):
        days = p.no_reason_window.days
        return Decision(Verdict.REJECT, "no_reason_window", f"delivered more than {days} days ago")
    return None


def _high_value(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    limit = p.review_limit(f.currency)
    if limit is None:
        return Decision(
            Verdict.MANUAL, "high_value", f"no automatic approval limit in {f.currency}"
        )
    if f.amount > limit:
        return Decision(Verdict.MANUAL, "high_value", f"{f.amount} > {limit} {f.currency}")
    return None


def _frequent(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    if f.buyer_claims_last_30_days >= p.max_claims_per_30_days:
        return Decision(
            Verdict.MANUAL,
            "claim_frequency",
            f"{f.buyer_claims_last_30_days} claims in 30 days (limit {p.max_claims_per_30_days})",
        )
    return None


def _needs_human(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    if (f.reason, f.claim_type) in p.always_manual:
        return Decision(Verdict.MANUAL, "needs_human", f"{f.reason.value}/{f.claim_type.value}")
    return None


def _damage_without_evidence(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    damage = f.reason in (Reason.DAMAGED_IN_TRANSIT, Reason.QUALITY_ISSUE, Reason.WRONG_ITEM)
    if p.damage_needs_evidence and damage and f.evidence_count == 0 and f.source is Source.BUYER:
        return Decision(Verdict.MANUAL, "missing_evidence", "no photos attached")
    return None


def _within_window(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    if f.reason is Reason.NO_REASON_7_DAYS and f.claim_type is ClaimType.RETURN_REFUND:
        return Decision(Verdict.APPROVE, "no_reason_window", "within the no-reason return window")
    return None


def _overdue_shipment(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    """A refund for goods never shipped by their deadline. Not for a parcel in transit
    (shipped, not yet delivered), however late: that is a carrier's matter for a person."""
    if (
        f.reason is Reason.NOT_RECEIVED
        and f.claim_type is ClaimType.REFUND_ONLY
        and f.shipped_at is None
        and f.delivered_at is None
        and f.now > f.ship_by
    ):
        return Decision(Verdict.APPROVE, "overdue_shipment", "not shipped by its deadline")
    return None


def _evidenced_damage(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    if f.reason in (Reason.DAMAGED_IN_TRANSIT, Reason.WRONG_ITEM) and f.evidence_count > 0:
        return Decision(Verdict.APPROVE, "evidenced_damage", "photos attached, low value")
    if f.source is Source.CARRIER:
        return Decision(Verdict.APPROVE, "carrier_report", "damage reported by the carrier")
    return None


def _default(f: ReviewFacts, p: ReviewPolicy) -> Decision | None:
    return Decision(Verdict.MANUAL, "default", "no automatic rule applies")


RULES: tuple[Rule, ...] = (
    Rule("no_reason_window_closed", _outside_window),
    Rule("high_value", _high_value),
    Rule("claim_frequency", _frequent),
    Rule("needs_human", _needs_human),
    Rule("missing_evidence", _damage_without_evidence),
    Rule("no_reason_window_open", _within_window),
    Rule("overdue_shipment", _overdue_shipment),
    Rule("evidenced_damage", _evidenced_damage),
    Rule("default", _default),
)


def decide(facts: ReviewFacts, policy: ReviewPolicy, rules: tuple[Rule, ...] = RULES) -> Decision:
    """First rule with an opinion wins; the last rule always has one."""
    for rule in rules:
        decision = rule.check(facts, policy)
        if decision is not None:
            return decision
    raise AssertionError("the rule list must end with a catch-all")
