"""The dashboard's numbers on both engines, from claims made through the real services.

Each aggregate is checked twice: against numbers worked out by hand for a small history, and
against a plain-Python recount of every row (an oracle that shares no code with the SQL).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import tables as t
from storage.stats import SqlStats
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow import lifecycle, stats
from workflow.claims import (
    Actor,
    ClaimDraft,
    ClaimType,
    Inspection,
    LineRequest,
    Reason,
    RefundStatus,
    Role,
)
from workflow.orders import OrderImport
from workflow.services import filing, returns, review
from workflow.services.backoffice import run_until_quiet
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway

STAFF = Actor(Role.AGENT, 1)


def _categorised(o: OrderImport, *categories: str) -> OrderImport:
    return replace(
        o, lines=tuple(replace(ln, category=c) for ln, c in zip(o.lines, categories, strict=True))
    )


@dataclass(frozen=True)
class History:
    """Claim ids of the story :func:`history` tells, by what happened to them."""

    closed: int  # a no-reason return, refunded intact and closed a day later
    rejected: int  # refund-only for a quality issue, rejected by staff at once
    awaiting_return: int  # approved, parcel not sent yet (2 units)
    needs_review: int  # not as described: waiting for staff, past its review SLA at the end
    withdrawn: int  # approved return, withdrawn by the buyer at once
    exchange: int  # wrong item with a photo: approved, replacement on its way
    started: datetime
    ended: datetime


async def _file(uows: UnitOfWorkFactory, env: Env, buyer_id: int, draft: ClaimDraft) -> int:
    async with uows() as uow:
        claim = await filing.file_claim(uow, env, Actor(Role.BUYER, buyer_id), draft)
        await uow.commit()
        return claim.id


async def history(uows: UnitOfWorkFactory, env: Env, clock: ManualClock) -> History:
    """Four orders, six claims over two days, one unshipped order past its deadline.

    Units sold: consignor C1 (Lin): 2 bags + 3 apparel; C2 (Park): 1 + 4 ceramics.
    """
    started = clock.now()
    payment = SimulatedPaymentGateway(clock, seed=7)
    carrier = SimulatedCarrier(clock, seed=7)
    o1, o2, o3 = await place(
        uows,
        started,
        _categorised(
            order(
                "ST-1",
                started,
                buyer="B1",
                lines=(("SKU-A", "C1", 2, 10_000, 1_000), ("SKU-B", "C2", 1, 5_000, 500)),
            ),
            "bags",
            "ceramics",
        ),
        _categorised(
            order("ST-2", started, buyer="B2", lines=(("SKU-C", "C1", 3, 2_000, 200),)),
            "apparel",
        ),
        _categorised(
            order("ST-3", started, buyer="B3", lines=(("SKU-D", "C2", 4, 1_000, 100),)),
            "ceramics",
        ),
    )

    def draft(ctype: ClaimType, reason: Reason, line: int, qty: int, *photos: str) -> ClaimDraft:
        return ClaimDraft(ctype, reason, (LineRequest(line, qty),), "", photos)

    rr, ro, ex = ClaimType.RETURN_REFUND, ClaimType.REFUND_ONLY, ClaimType.EXCHANGE
    closed = await _file(
        uows, env, o1.buyer_id, draft(rr, Reason.NO_REASON_7_DAYS, o1.line_ids[0], 1)
    )
    rejected = await _file(
        uows, env, o1.buyer_id, draft(ro, Reason.QUALITY_ISSUE, o1.line_ids[1], 1, "p1")
    )
    awaiting = await _file(
        uows, env, o2.buyer_id, draft(rr, Reason.NO_REASON_7_DAYS, o2.line_ids[0], 2)
    )
    waiting = await _file(
        uows, env, o3.buyer_id, draft(rr, Reason.NOT_AS_DESCRIBED, o3.line_ids[0], 1)
    )
    withdrawn = await _file(
        uows, env, o3.buyer_id, draft(rr, Reason.NO_REASON_7_DAYS, o3.line_ids[0], 1)
    )
    exchange = await _file(
        uows, env, o2.buyer_id, draft(ex, Reason.WRONG_ITEM, o2.line_ids[0], 1, "p2")
    )
    await run_until_quiet(uows, env, payment, carrier)
    async with uows() as uow:
        await review.reject(uow, env, STAFF, rejected, None, "the photo shows no defect")
        await review.withdraw(uow, env, Actor(Role.BUYER, o3.buyer_id), withdrawn)
        await uow.commit()

    clock.advance(timedelta(days=1, hours=1))
    buyer = Actor(Role.BUYER, o1.buyer_id)
    async with uows() as uow:
        await returns.mark_return_shipped(uow, env, buyer, closed, None)
        await uow.commit()
    async with uows() as uow:
        await returns.receive_return(uow, env, STAFF, closed)
        await uow.commit()
    async with uows() as uow:
        [line] = await uow.claims.lines(closed)
        await returns.inspect_return(uow, env, STAFF, closed, None, {line.id: Inspection.INTACT})
        await uow.commit()
    await run_until_quiet(uows, env, payment, carrier)  # the refund request goes out
    clock.advance(timedelta(hours=1))
    await run_until_quiet(uows, env, payment, carrier)  # confirmed, settled, closed

    # An order paid now and not shipped within its 2-day SLA: a breach once the clock moves
    # (the back office does not run again, so no claim is opened for it).
    await place(uows, clock.now(), order("ST-4", clock.now(), buyer="B4", delivered=False))
    clock.advance(timedelta(days=1, hours=1))
    return History(closed, rejected, awaiting, waiting, withdrawn, exchange, started, clock.now())


async def dashboard(uows: UnitOfWorkFactory, now: datetime, days: int = 7) -> stats.Dashboard:
    async with uows() as uow:
        return await stats.collect(SqlStats(uow.session), now, days)


# ---- pure computations ----


@pytest.mark.parametrize(
    "values",
    [[5], [1, 2], [3, 1, 2], [7, 7, 7, 1], [0, 10, 10, 10, 2, 2], list(range(1, 100)), [4, 9]],
)
def test_median_from_a_histogram_is_the_median_of_the_values(values: list[int]) -> None:
    assert stats.median_from_histogram(Counter(values)) == statistics.median(values)


def test_median_of_nothing_is_none() -> None:
    assert stats.median_from_histogram({}) is None
    assert stats.median_from_histogram({3: 0}) is None


def test_days_without_claims_are_zeros_and_the_window_ends_today() -> None:
    now = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)
    series = stats.day_series(now, 3, {date(2026, 3, 9): 4}, {date(2026, 3, 10): 1})
    assert [(d.day.day, d.opened, d.resolved) for d in series] == [(8, 0, 0), (9, 4, 0), (10, 0, 1)]
    assert stats.window_start(now, 3) == datetime(2026, 3, 8, tzinfo=UTC)


def test_every_reason_is_listed_with_its_refunds_per_currency() -> None:
    totals = stats.reason_totals(
        {"wrong_item": 2}, [("wrong_item", "CNY", 500), ("wrong_item", "USD", 7)]
    )
    assert [r.reason for r in totals] == [r.value for r in Reason]
    [wrong] = [r for r in totals if r.reason == "wrong_item"]
    assert wrong == stats.ReasonTotal("wrong_item", 2, (("CNY", 500), ("USD", 7)))


def test_states_come_from_the_lifecycle_table() -> None:
    assert set(stats.OPEN_STAGES) == lifecycle.OPEN_STATES
    assert set(stats.RESOLVED_STAGES) == lifecycle.TERMINAL_STATES
    assert set(stats.DROPPED_STAGES) == lifecycle.DROPPED_STATES
    [review_rule] = [r for r in stats.SLA_RULES if r.kind == "review"]
    assert set(review_rule.states) == lifecycle.WAITING_FOR_STAFF


def test_a_window_of_no_days_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        stats.check_days(0)


# ---- on the databases ----


async def test_hand_counted_history(uows: UnitOfWorkFactory, env: Env, clock: ManualClock) -> None:
    h = await history(uows, env, clock)
    d = await dashboard(uows, clock.now(), days=4)

    async with uows() as uow:
        status = {c.id: c.status for c in (await uow.session.scalars(select(t.Claim))).all()}
    assert status[h.closed] == "closed"
    assert status[h.rejected] == "rejected"
    assert status[h.withdrawn] == "withdrawn"
    assert status[h.awaiting_return] == "awaiting_return"
    assert status[h.needs_review] == "needs_review"
    open_now = {c.state for c in d.stages}
    assert {"awaiting_return", "needs_review"} <= open_now
    assert d.open_claims == 3  # awaiting return, needs review, the exchange (wherever it is)

    first = h.started.date()
    assert [(x.day, x.opened, x.resolved) for x in d.daily] == [
        (first - timedelta(days=1), 0, 0),
        (first, 6, 2),  # rejected and withdrawn the day they were filed
        (first + timedelta(days=1), 0, 1),  # the intact return, closed the next day
        (first + timedelta(days=2), 0, 0),
    ]

    # Return rate: C1 has 2 units back (awaiting return) + 1 (closed) of 6 sold (the unshipped
    # order's apparel unit counts as sold); C2's only return claim not dropped is 1 unit of 5
    # (the withdrawn one does not count).
    rates = {r.key: r for r in d.by_consignor}
    c1 = rates["C1"]
    assert (c1.name, c1.units_sold, c1.units_returned, c1.claims) == ("Consignor C1", 6, 3, 2)
    assert (rates["C2"].units_sold, rates["C2"].units_returned, rates["C2"].claims) == (5, 1, 1)
    assert c1.rate == pytest.approx(0.5)
    categories = {r.key: (r.units_sold, r.units_returned) for r in d.by_category}
    assert categories == {"bags": (2, 1), "apparel": (4, 2), "ceramics": (5, 1)}
    assert (d.units_sold, d.units_returned) == (11, 4)
    # bags and apparel both return half; apparel has more units back, so it ranks first.
    assert [r.key for r in stats.highest_rates(d.by_category, 2)] == ["apparel", "bags"]

    reasons = {r.reason: r for r in d.reasons}
    assert reasons["no_reason_7_days"].claims == 3
    assert reasons["no_reason_7_days"].refunded == (("CNY", 10_000),)
    assert reasons["quality_issue"].claims == 1
    assert reasons["quality_issue"].refunded == ()
    assert reasons["damaged_in_transit"].claims == 0

    breaches = {b.kind: b.count for b in d.breaches}
    assert breaches["review"] == 1  # filed 2 days ago, review SLA 24 h
    assert breaches[stats.SHIPMENT_BREACH] == 1
    assert breaches["return"] == 0  # 7 days to send it back

    overall = d.resolution[0]
    assert overall.claim_type is None
    assert overall.claims == 3
    assert overall.median_hours == pytest.approx(0.0)  # two of three ended within the minute
    [refund_only] = [r for r in d.resolution if r.claim_type == "refund_only"]
    assert (refund_only.claims, refund_only.median_hours) == (1, 0.0)
    [returned] = [r for r in d.resolution if r.claim_type == "return_refund"]
    assert returned.claims == 2
    # The withdrawn one took no time; the closed one 26 hours: the median is the mean, 13 h.
    assert returned.median_hours == pytest.approx(13.0, abs=1 / 60)


async def test_numbers_match_a_recount_of_every_row(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    await history(uows, env, clock)
    clock.advance(timedelta(days=9))  # past the return deadline: a breach the sweep would end
    now = clock.now()
    d = await dashboard(uows, now, days=14)

    async with uows() as uow:
        s = uow.session
        claims = (await s.scalars(select(t.Claim))).all()
        lines = (
            await s.execute(
                select(
                    t.ClaimLine.claim_id, t.ClaimLine.quantity, t.Item.consignor_id, t.Item.category
                )
                .join(t.OrderLine, t.OrderLine.id == t.ClaimLine.order_line_id)
                .join(t.Item, t.Item.id == t.OrderLine.item_id)
            )
        ).all()
        sold = (
            await s.execute(
                select(t.OrderLine.quantity, t.Consignor.external_ref, t.Item.category)
                .join(t.Item, t.Item.id == t.OrderLine.item_id)
                .join(t.Consignor, t.Consignor.id == t.Item.consignor_id)
            )
        ).all()
        refunds = (await s.scalars(select(t.Refund))).all()
        consignor_ref = {c.id: c.external_ref for c in (await s.scalars(select(t.Consignor))).all()}
        orders = (await s.scalars(select(t.Order))).all()

    by_id = {c.id: c for c in claims}
    open_counts = Counter(
        (c.status, c.claim_type) for c in claims if c.status in lifecycle.OPEN_STATES
    )
    assert {(x.state, x.claim_type): x.claims for x in d.stages} == open_counts

    since = stats.window_start(now, 14)
    opened = Counter(c.created_at.date() for c in claims if c.created_at >= since)
    resolved = Counter(
        c.closed_at.date()
        for c in claims
        if c.status in lifecycle.TERMINAL_STATES and c.closed_at and c.closed_at >= since
    )
    assert {x.day: x.opened for x in d.daily if x.opened} == opened
    assert {x.day: x.resolved for x in d.daily if x.resolved} == resolved

    done = [c for c in claims if c.status in lifecycle.TERMINAL_STATES]
    minutes = [int((c.closed_at - c.created_at).total_seconds() // 60) for c in done]
    assert d.resolution[0].median_hours == pytest.approx(statistics.median(minutes) / 60)

    counted = [
        ln
        for ln in lines
        if by_id[ln.claim_id].claim_type == "return_refund"
        and by_id[ln.claim_id].status not in lifecycle.DROPPED_STATES
    ]
    units_back: dict[str, int] = defaultdict(int)
    for ln in counted:
        units_back[consignor_ref[ln.consignor_id]] += ln.quantity
    units_sold: dict[str, int] = defaultdict(int)
    for quantity, ref, _category in sold:
        units_sold[ref] += quantity
    assert {r.key: (r.units_sold, r.units_returned) for r in d.by_consignor} == {
        ref: (units_sold[ref], units_back.get(ref, 0)) for ref in units_sold
    }

    reasons = Counter(c.reason for c in claims)
    assert {r.reason: r.claims for r in d.reasons if r.claims} == reasons
    refunded: dict[str, int] = defaultdict(int)
    for r in refunds:
        if r.status == RefundStatus.SUCCEEDED:
            refunded[by_id[r.claim_id].reason] += r.amount
    assert {r.reason: dict(r.refunded).get("CNY", 0) for r in d.reasons if r.refunded} == refunded

    expected_breaches = {
        rule.kind: sum(
            1
            for c in claims
            if c.status in rule.states
            and getattr(c, rule.deadline) is not None
            and getattr(c, rule.deadline) < now
        )
        for rule in stats.SLA_RULES
    }
    expected_breaches[stats.SHIPMENT_BREACH] = sum(
        1 for o in orders if o.shipping_state == "pending" and o.ship_by < now
    )
    assert {b.kind: b.count for b in d.breaches} == expected_breaches
    assert expected_breaches["return"] == 1  # the unsent return is 9 days past its deadline


async def test_an_empty_platform_has_zeros_not_errors(
    uows: UnitOfWorkFactory, clock: ManualClock
) -> None:
    d = await dashboard(uows, clock.now(), days=3)
    assert d.open_claims == 0
    assert [x.opened for x in d.daily] == [0, 0, 0]
    assert all(r.median_hours is None and r.claims == 0 for r in d.resolution)
    assert d.by_consignor == () and d.by_category == ()
    assert d.return_rate == 0.0
    assert all(b.count == 0 for b in d.breaches)
    assert len(d.reasons) == len(Reason)


async def test_the_export_reads_every_claim_in_batches(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    h = await history(uows, env, clock)
    async with uows() as uow:
        rows = [r async for r in SqlStats(uow.session).claim_rows(batch=4)]
    assert [r.id for r in rows] == sorted(
        [h.closed, h.rejected, h.awaiting_return, h.needs_review, h.withdrawn, h.exchange]
    )
    [closed] = [r for r in rows if r.id == h.closed]
    assert (closed.refunded, closed.currency, closed.claimed_amount) == (10_000, "CNY", 10_000)
    assert closed.closed_at is not None and closed.closed_at.tzinfo is not None
    assert all(r.refunded == 0 for r in rows if r.id != h.closed)
