"""The system notices orders not shipped in time, once each, and acts per policy."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from storage import tables as t
from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.claims import (
    Actor,
    ClaimDraft,
    ClaimType,
    LineRequest,
    OrderEvent,
    OrderEventKind,
    OverdueOutcome,
    Reason,
    Role,
)
from workflow.services import filing
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import run_all, run_overdue_orders


async def _messages(uows: UnitOfWorkFactory) -> list[tuple[str, str]]:
    async with uows() as uow:
        rows = (
            await uow.session.scalars(select(t.Outbox).where(t.Outbox.channel == "message"))
        ).all()
        return sorted((r.recipient_kind or "", r.template) for r in rows)


async def _order_events(uows: UnitOfWorkFactory) -> list[OrderEvent]:
    async with uows() as uow:
        order_ids = (await uow.session.scalars(select(t.Order.id).order_by(t.Order.id))).all()
        return [event for i in order_ids for event in await uow.orders.events(i)]


async def test_an_unshipped_order_past_its_deadline_gets_a_refund_claim_once(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    now = clock.now()
    [p] = await place(uows, now, order("OV-1", now, delivered=False))
    assert (await run_all(uows, env))["overdue_shipment"] == 0  # not yet past ship_by
    clock.advance(timedelta(days=2))
    moved = await run_all(uows, env)
    assert moved["overdue_shipment"] == 1
    assert moved["auto_review"] == 1
    async with uows() as uow:
        [claim] = (await uow.session.scalars(select(t.Claim))).all()
        trail = [(e.trigger, e.rule) for e in await uow.claims.timeline(claim.id)]
    assert claim.source == "system"
    assert claim.buyer_id == p.buyer_id
    assert trail == [("file", None), ("auto_approve", "overdue_shipment"), ("start_refund", None)]
    assert ("staff", "staff.order_overdue") in await _messages(uows)
    assert (await run_all(uows, env))["overdue_shipment"] == 0  # once only
    # The flag itself is in the order's audit trail, once, naming the claim it opened.
    assert await _order_events(uows) == [
        OrderEvent(
            p.order_id,
            OrderEventKind.FLAGGED_OVERDUE,
            "system",
            now + timedelta(days=2),
            outcome=OverdueOutcome.CLAIM_OPENED,
            note=f"claims #{claim.id}",
        )
    ]


async def test_per_policy_the_buyer_is_offered_a_claim_instead(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    offering = replace(env, policy=replace(env.policy, overdue_opens_claim=False))
    now = clock.now()
    [p] = await place(uows, now, order("OV-2", now, delivered=False))
    clock.advance(timedelta(days=2))
    assert (await run_all(uows, offering))["overdue_shipment"] == 1
    async with uows() as uow:
        assert (await uow.session.scalars(select(t.Claim))).all() == []
    assert await _messages(uows) == [
        ("buyer", "order.overdue_offer"),
        ("consignor", "order.overdue"),
        ("staff", "staff.order_overdue"),
    ]
    # No claim, so no claim audit row: the order's own trail says who flagged it, when, and
    # that the buyer was offered a claim. A later sweep records nothing more.
    flagged = [
        OrderEvent(
            p.order_id,
            OrderEventKind.FLAGGED_OVERDUE,
            "system",
            now + timedelta(days=2),
            outcome=OverdueOutcome.CLAIM_OFFERED,
        )
    ]
    assert await _order_events(uows) == flagged
    clock.advance(timedelta(days=1))
    assert await run_overdue_orders(uows, offering) == 0
    assert (await run_all(uows, env))["overdue_shipment"] == 0
    assert await _order_events(uows) == flagged


async def test_an_order_the_buyer_already_claimed_whole_is_flagged_with_why_no_claim_opened(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    now = clock.now()
    [p] = await place(uows, now, order("OV-4", now, delivered=False))
    async with uows() as uow:
        await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.REFUND_ONLY, Reason.NOT_RECEIVED, (LineRequest(p.line_ids[0], 1),)
            ),
        )
        await uow.commit()
    clock.advance(timedelta(days=2))
    assert await run_overdue_orders(uows, env) == 1
    [event] = await _order_events(uows)
    assert (event.outcome, event.note) == (OverdueOutcome.ALREADY_CLAIMED, None)
    # Nobody is told they "may ask for a refund": there is nothing left to ask for.
    assert [m for m in await _messages(uows) if m[1].startswith("order.")] == [
        ("buyer", "order.overdue_claimed"),
        ("consignor", "order.overdue_claimed_consignor"),
    ]


async def test_a_parcel_in_transit_past_the_deadline_is_not_refunded_as_never_shipped(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """Shipped on time, not delivered yet, and the buyer says it has not arrived: the
    overdue-shipment rule does not approve it (the goods left); a person looks at it."""
    now = clock.now()
    unshipped = order("OV-5", now, delivered=False)
    in_transit = replace(unshipped, shipped_at=unshipped.paid_at + timedelta(hours=6))
    [p] = await place(uows, now, in_transit)
    clock.advance(timedelta(days=3))  # well past ship_by
    async with uows() as uow:
        claim = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.REFUND_ONLY, Reason.NOT_RECEIVED, (LineRequest(p.line_ids[0], 1),)
            ),
        )
        await uow.commit()
    moved = await run_all(uows, env)
    assert (moved["overdue_shipment"], moved["auto_review"]) == (0, 1)
    async with uows() as uow:
        trail = [(e.trigger, e.rule) for e in await uow.claims.timeline(claim.id)]
    assert trail == [("file", None), ("send_to_review", "default")]
    assert await _order_events(uows) == []


async def test_an_overdue_order_of_two_consignors_gets_one_claim_per_consignor(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    now = clock.now()
    [p] = await place(
        uows,
        now,
        order(
            "OV-3",
            now,
            delivered=False,
            lines=(("S-1", "C1", 1, 1_000, 100), ("S-2", "C2", 2, 3_000, 300)),
        ),
    )
    clock.advance(timedelta(days=2))
    assert (await run_all(uows, env))["overdue_shipment"] == 1
    async with uows() as uow:
        claims = (await uow.session.scalars(select(t.Claim).order_by(t.Claim.id))).all()
        owners = [await uow.claims.consignor_ids(c.id) for c in claims]
        rows = (
            await uow.session.scalars(select(t.Outbox).where(t.Outbox.channel == "message"))
        ).all()
    assert owners == [[p.consignor_ids[0]], [p.consignor_ids[1]]]
    assert [(c.claimed_amount, c.source) for c in claims] == [(1_000, "system"), (6_000, "system")]
    staff = sorted(r.claim_id or 0 for r in rows if r.template == "staff.order_overdue")
    assert staff == [c.id for c in claims]  # told once per claim, in each claim's thread
    told = {
        (r.recipient_id, r.claim_id) for r in rows if r.template == "consignor.submitted_by_system"
    }
    assert told == {(p.consignor_ids[0], claims[0].id), (p.consignor_ids[1], claims[1].id)}


async def test_two_sweepers_at_once_flag_and_record_each_order_once(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock, db_url: str
) -> None:
    offering = replace(env, policy=replace(env.policy, overdue_opens_claim=False))
    now = clock.now()
    placed = await place(
        uows, now, *(order(f"OV-R{i}", now, buyer=f"R{i}", delivered=False) for i in range(12))
    )
    clock.advance(timedelta(days=2))
    engine = make_engine(db_url)
    try:
        moved = await asyncio.gather(
            run_overdue_orders(uows, offering, batch=5),
            run_overdue_orders(UnitOfWorkFactory(engine), offering, batch=5),
        )
    finally:
        await engine.dispose()
    assert sum(moved) == 12
    events = await _order_events(uows)
    assert sorted(e.order_id for e in events) == sorted(p.order_id for p in placed)
