"""The system notices orders not shipped in time, once each, and acts per policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from storage import tables as t
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import run_all


async def _messages(uows: UnitOfWorkFactory) -> list[tuple[str, str]]:
    async with uows() as uow:
        rows = (
            await uow.session.scalars(select(t.Outbox).where(t.Outbox.channel == "message"))
        ).all()
        return sorted((r.recipient_kind or "", r.template) for r in rows)


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


async def test_per_policy_the_buyer_is_offered_a_claim_instead(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    offering = replace(env, policy=replace(env.policy, overdue_opens_claim=False))
    now = clock.now()
    await place(uows, now, order("OV-2", now, delivered=False))
    clock.advance(timedelta(days=2))
    assert (await run_all(uows, offering))["overdue_shipment"] == 1
    async with uows() as uow:
        assert (await uow.session.scalars(select(t.Claim))).all() == []
    assert await _messages(uows) == [
        ("buyer", "order.overdue_offer"),
        ("consignor", "order.overdue"),
        ("staff", "staff.order_overdue"),
    ]


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
