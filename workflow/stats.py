"""The dashboard's numbers: what staff see in ``/stats``, ``/export`` and ``aftersales report``.

The article asks for "a live dashboard: progress of every case, return rate, refund reasons
(to improve product descriptions)". Storage answers a few aggregate questions (GROUP BY, one
row per group, never one per claim; see :class:`workflow.ports.StatsRepository`); this module
holds the plain dataclasses those answers become and the small pure computations on top
(medians from a histogram, rates, zero-filled day series). Which states count as open,
resolved, dropped or waiting for staff is read from :mod:`workflow.lifecycle`, never listed
here.

Days are UTC calendar days. Amounts are integer minor units with their currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from workflow import lifecycle
from workflow.claims import ClaimType, Reason

if TYPE_CHECKING:
    from workflow.ports import StatsRepository

DEFAULT_DAYS = 14
MAX_DAYS = 366

# Open states in the order of the transition table: the order a case moves through them.
OPEN_STAGES: tuple[str, ...] = tuple(s for s in lifecycle.STATES if s in lifecycle.OPEN_STATES)
# A case is resolved when it reaches a terminal state (completed, or dropped on the way).
RESOLVED_STAGES: tuple[str, ...] = tuple(
    s for s in lifecycle.STATES if s in lifecycle.TERMINAL_STATES
)
DROPPED_STAGES: tuple[str, ...] = tuple(
    s for s in lifecycle.STATES if s in lifecycle.DROPPED_STATES
)
# Return rates count return-and-refund claims only: refund-only and exchange claims send no
# goods back to the platform's stock.
RETURN_TYPE = ClaimType.RETURN_REFUND


@dataclass(frozen=True, slots=True)
class SlaRule:
    """A claim in one of ``states`` whose ``deadline`` column is in the past is a breach.

    ``deadline`` names a deadline column of the claim row (as the sweeps do).
    """

    kind: str
    deadline: str
    states: tuple[str, ...]


# The live SLA breaches, each read off the table:
# - review: a case waiting for a person on staff (lifecycle.WAITING_FOR_STAFF) whose manual
#   review deadline (``review_due_at``, set when a case goes to manual review or comes back to
#   it) has passed;
# - information: the buyer was asked for information and ``info_due_at`` passed without the
#   info-overdue sweep having moved the case yet;
# - return: a return waiting to be shipped back past ``return_by`` and not yet expired (it
#   expires ``ReviewPolicy.return_scan_grace`` later, time for a late carrier scan to come);
# - consignor_response: a compensation proposal unanswered past ``respond_by`` and not yet
#   escalated;
# - settlement: a finished refund or delivered replacement not settled by ``settle_due_at``.
# Information, consignor_response and settlement are normally cleared by the sweeps within
# minutes: a count that stays above zero means the back office is not running; a return
# stays counted for up to the scan grace. Overdue shipments (paid orders not shipped by
# ``ship_by``) are counted on the orders, as the kind ``shipment``.
SLA_RULES: tuple[SlaRule, ...] = (
    SlaRule("review", "review_due_at", tuple(sorted(lifecycle.WAITING_FOR_STAFF))),
    SlaRule("information", "info_due_at", lifecycle.sources_of("info_overdue")),
    SlaRule("return", "return_by", lifecycle.sources_of("expire")),
    SlaRule("consignor_response", "respond_by", lifecycle.sources_of("escalate_compensation")),
    SlaRule("settlement", "settle_due_at", lifecycle.sources_of("settle")),
)
SHIPMENT_BREACH = "shipment"
BREACH_KINDS: tuple[str, ...] = (*(rule.kind for rule in SLA_RULES), SHIPMENT_BREACH)


# ---- what storage answers ----


@dataclass(frozen=True, slots=True)
class StageCount:
    """Open claims in one state, of one type."""

    state: str
    claim_type: str
    claims: int


@dataclass(frozen=True, slots=True)
class DurationBucket:
    """``claims`` resolved claims of ``claim_type`` took ``minutes`` whole minutes to resolve."""

    claim_type: str
    minutes: int
    claims: int


@dataclass(frozen=True, slots=True)
class ReturnRate:
    """Units returned (under return-and-refund claims that were not dropped) over units sold.

    ``key`` is the consignor's platform reference or the item category; ``name`` is what to
    show (the consignor's name, or the category again).
    """

    key: str
    name: str
    units_sold: int
    units_returned: int
    claims: int

    @property
    def rate(self) -> float:
        return rate(self.units_returned, self.units_sold)


@dataclass(frozen=True, slots=True)
class ReasonTotal:
    """Claims filed for one reason, and what was actually refunded for them, per currency."""

    reason: str
    claims: int
    refunded: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """One claim as the export lists it (``refunded`` = sum of its succeeded refunds)."""

    id: int
    status: str
    claim_type: str
    reason: str
    source: str
    liability: str | None
    currency: str
    claimed_amount: int
    refund_amount: int | None
    compensation_amount: int | None
    refunded: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


# ---- what the dashboard shows ----


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    opened: int
    resolved: int


@dataclass(frozen=True, slots=True)
class Resolution:
    """Median time from filing to a terminal state; ``claim_type`` None means all types."""

    claim_type: str | None
    claims: int
    median_hours: float | None


@dataclass(frozen=True, slots=True)
class Breach:
    """How many claims (orders, for ``shipment``) are past one kind of deadline now."""

    kind: str
    count: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    now: datetime
    days: int
    stages: tuple[StageCount, ...]
    daily: tuple[DayCount, ...]
    resolution: tuple[Resolution, ...]
    by_consignor: tuple[ReturnRate, ...]
    by_category: tuple[ReturnRate, ...]
    reasons: tuple[ReasonTotal, ...]
    breaches: tuple[Breach, ...]

    @property
    def open_claims(self) -> int:
        return sum(s.claims for s in self.stages)

    @property
    def opened(self) -> int:
        return sum(d.opened for d in self.daily)

    @property
    def resolved(self) -> int:
        return sum(d.resolved for d in self.daily)

    @property
    def breached(self) -> int:
        return sum(b.count for b in self.breaches)

    @property
    def units_sold(self) -> int:
        return sum(r.units_sold for r in self.by_consignor)

    @property
    def units_returned(self) -> int:
        return sum(r.units_returned for r in self.by_consignor)

    @property
    def return_rate(self) -> float:
        """All consignors together (every unit sold belongs to exactly one consignor)."""
        return rate(self.units_returned, self.units_sold)

    def stage_totals(self) -> tuple[tuple[str, int], ...]:
        """(state, open claims) for every open state, in table order, zeros included."""
        totals = dict.fromkeys(OPEN_STAGES, 0)
        for s in self.stages:
            totals[s.state] = totals.get(s.state, 0) + s.claims
        return tuple(totals.items())


# ---- pure computations ----


def rate(part: int, whole: int) -> float:
    return part / whole if whole > 0 else 0.0


def median_from_histogram(buckets: Mapping[int, int]) -> float | None:
    """The median of values given as ``{value: how many times}``; None when there are none.

    With an even count it is the mean of the two middle values, as ``statistics.median``.
    """
    total = sum(n for n in buckets.values() if n > 0)
    if total == 0:
        return None
    lower_rank, upper_rank = (total - 1) // 2, total // 2  # 0-based ranks of the middle
    lower = upper = None
    seen = 0
    for value in sorted(buckets):
        count = buckets[value]
        if count <= 0:
            continue
        if lower is None and lower_rank < seen + count:
            lower = value
        if upper_rank < seen + count:
            upper = value
            break
        seen += count
    assert lower is not None and upper is not None
    return (lower + upper) / 2


def resolution_medians(buckets: Iterable[DurationBucket]) -> tuple[Resolution, ...]:
    """Median hours to resolution for all claims, then for each claim type (zeros included)."""
    overall: dict[int, int] = {}
    per_type: dict[str, dict[int, int]] = {t.value: {} for t in ClaimType}
    for b in buckets:
        overall[b.minutes] = overall.get(b.minutes, 0) + b.claims
        histogram = per_type.setdefault(b.claim_type, {})
        histogram[b.minutes] = histogram.get(b.minutes, 0) + b.claims

    def one(claim_type: str | None, histogram: Mapping[int, int]) -> Resolution:
        median = median_from_histogram(histogram)
        return Resolution(
            claim_type, sum(histogram.values()), None if median is None else median / 60
        )

    return (one(None, overall), *(one(k, v) for k, v in per_type.items()))


def window_start(now: datetime, days: int) -> datetime:
    """Midnight (UTC) at the start of the first of the last ``days`` days, today included."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(0), tzinfo=UTC)


def day_series(
    now: datetime, days: int, opened: Mapping[date, int], resolved: Mapping[date, int]
) -> tuple[DayCount, ...]:
    """One row per UTC day of the window, oldest first, days without claims as zeros."""
    first = window_start(now, days).date()
    return tuple(
        DayCount(day, opened.get(day, 0), resolved.get(day, 0))
        for day in (first + timedelta(days=i) for i in range(days))
    )


def reason_totals(
    counts: Mapping[str, int], refunded: Iterable[tuple[str, str, int]]
) -> tuple[ReasonTotal, ...]:
    """Every reason (zeros included, in the enumeration's order, unknown ones after), with the
    refunded amounts per currency given as (reason, currency, amount) rows."""
    money: dict[str, dict[str, int]] = {}
    for reason, currency, amount in refunded:
        per_currency = money.setdefault(reason, {})
        per_currency[currency] = per_currency.get(currency, 0) + amount
    names = [r.value for r in Reason]
    names += sorted((counts.keys() | money.keys()) - set(names))
    return tuple(
        ReasonTotal(name, counts.get(name, 0), tuple(sorted(money.get(name, {}).items())))
        for name in names
    )


def highest_rates(rates: Sequence[ReturnRate], limit: int) -> tuple[ReturnRate, ...]:
    """The ``limit`` highest return rates (ties: more units returned, then by key)."""
    ranked = sorted(rates, key=lambda r: (-r.rate, -r.units_returned, r.key))
    return tuple(ranked[:limit])


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    return days


async def collect(repo: StatsRepository, now: datetime, days: int = DEFAULT_DAYS) -> Dashboard:
    """Every number of the dashboard at ``now``, over the last ``days`` UTC days."""
    check_days(days)
    since = window_start(now, days)
    breaches = await repo.breaches(SLA_RULES, now)
    return Dashboard(
        now=now,
        days=days,
        stages=tuple(await repo.open_claims(OPEN_STAGES)),
        daily=day_series(
            now,
            days,
            await repo.opened_per_day(since),
            await repo.resolved_per_day(since, RESOLVED_STAGES),
        ),
        resolution=resolution_medians(await repo.resolution_histogram(RESOLVED_STAGES)),
        by_consignor=tuple(await repo.return_rates("consignor", RETURN_TYPE, DROPPED_STAGES)),
        by_category=tuple(await repo.return_rates("category", RETURN_TYPE, DROPPED_STAGES)),
        reasons=reason_totals(await repo.reason_counts(), await repo.refunded_by_reason()),
        breaches=(
            *(Breach(rule.kind, breaches.get(rule.kind, 0)) for rule in SLA_RULES),
            Breach(SHIPMENT_BREACH, await repo.overdue_shipments(now)),
        ),
    )
