"""Reminders and staff alerts: told once, at the right time, never after the reason is gone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from bot import i18n
from storage import tables as t
from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow import lifecycle
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.ports import Waybill
from workflow.reminders import RETURN_REMINDER, SLA_BREACH, STAFF_ALERT_STATES, STAFF_STATES
from workflow.services import filing, returns, review
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_all, run_sweep

STAFF = Actor(Role.AGENT, 1)
REMINDER = next(s for s in SWEEPS if s.name == "return_reminder")
SLA_ALERT = next(s for s in SWEEPS if s.name == "staff_sla_alert")


async def _file(
    uows: UnitOfWorkFactory, env: Env, ref: str, claim_type: ClaimType, price: int
) -> int:
    [placed] = await place(
        uows,
        env.clock.now(),
        order(ref, env.clock.now(), buyer=ref, lines=((ref, "C1", 1, price, 1),)),
    )
    async with uows() as uow:
        claim = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(claim_type, Reason.NO_REASON_7_DAYS, (LineRequest(placed.line_ids[0], 1),)),
        )
        await uow.commit()
    return claim.id


async def _awaiting_return(uows: UnitOfWorkFactory, env: Env, ref: str = "R-1") -> int:
    """A no-reason return, approved by the rules, with its waybill issued just now."""
    claim_id = await _file(uows, env, ref, ClaimType.RETURN_REFUND, 500)
    await run_sweep(uows, env, SWEEPS[0])  # auto_review: approved
    async with uows() as uow:
        assert await returns.apply_waybill(
            uow, env, claim_id, Waybill("sim", f"T-{ref}", f"qr:{ref}")
        )
        await uow.commit()
    return claim_id


async def _in_review(uows: UnitOfWorkFactory, env: Env, ref: str = "M-1") -> int:
    """A high-value claim the rules send to a person."""
    claim_id = await _file(uows, env, ref, ClaimType.RETURN_REFUND, 500_000)
    await run_sweep(uows, env, SWEEPS[0])
    return claim_id


async def _messages(uows: UnitOfWorkFactory, template: str) -> list[t.Outbox]:
    async with uows() as uow:
        return [m for m in await uow.outbox.messages() if m.template.startswith(template)]


async def _claim(uows: UnitOfWorkFactory, claim_id: int) -> t.Claim:
    async with uows() as uow:
        claim = await uow.claims.get(claim_id)
    assert claim is not None
    return claim


# ---- the buyer's return reminder ----


async def test_the_buyer_is_reminded_once_ahead_of_the_return_deadline(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _awaiting_return(uows, env)
    claim = await _claim(uows, claim_id)
    assert claim.status == "awaiting_return"
    assert claim.return_by == clock.now() + env.policy.return_deadline
    assert claim.remind_due_at == claim.return_by - env.policy.return_reminder_before

    clock.advance(
        env.policy.return_deadline - env.policy.return_reminder_before - timedelta(minutes=1)
    )
    assert (await run_all(uows, env))["return_reminder"] == 0  # a minute early
    assert await _messages(uows, RETURN_REMINDER) == []

    clock.advance(timedelta(minutes=1))
    assert (await run_all(uows, env))["return_reminder"] == 1
    assert (await run_all(uows, env))["return_reminder"] == 0  # never twice
    [reminder] = await _messages(uows, RETURN_REMINDER)
    assert reminder.recipient_kind == "buyer"
    assert reminder.recipient_id == claim.buyer_id
    assert reminder.claim_id == claim_id
    assert reminder.payload == {
        "claim_id": claim_id,
        "return_by": claim.return_by.isoformat(),
        "tracking_number": "T-R-1",
        "qr_payload": "qr:R-1",
    }
    after = await _claim(uows, claim_id)
    assert after.remind_due_at is None
    assert (after.status, after.version) == (claim.status, claim.version)  # nothing moved

    # the deadline passes, and the time a carrier's scan may take: it expires
    clock.advance(env.policy.return_reminder_before + env.policy.return_scan_grace)
    moved = await run_all(uows, env)
    assert (moved["return_expiry"], moved["return_reminder"]) == (1, 0)
    assert len(await _messages(uows, RETURN_REMINDER)) == 1
    assert (await _claim(uows, claim_id)).remind_due_at is None


async def test_no_reminder_once_the_parcel_is_handed_over(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _awaiting_return(uows, env)
    claim = await _claim(uows, claim_id)
    clock.advance(timedelta(days=1))
    async with uows() as uow:
        await returns.mark_return_shipped(uow, env, Actor(Role.BUYER, claim.buyer_id), claim_id)
        await uow.commit()
    shipped = await _claim(uows, claim_id)
    assert (shipped.status, shipped.remind_due_at, shipped.return_by) == (
        "return_in_transit",
        None,
        None,
    )
    clock.advance(env.policy.return_deadline)
    assert (await run_all(uows, env))["return_reminder"] == 0
    assert await _messages(uows, RETURN_REMINDER) == []


async def test_a_reminder_nearer_than_the_deadline_allows_is_due_at_once(
    uows: UnitOfWorkFactory, clock: ManualClock
) -> None:
    env = Env(clock=clock, policy=replace(Env(clock=clock).policy, return_deadline=timedelta(1)))
    claim_id = await _awaiting_return(uows, env)
    claim = await _claim(uows, claim_id)
    assert claim.remind_due_at == clock.now()  # not two days before a one-day deadline
    assert (await run_all(uows, env))["return_reminder"] == 1
    assert len(await _messages(uows, RETURN_REMINDER)) == 1


async def test_no_reminder_once_the_deadline_has_passed(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _awaiting_return(uows, env)
    clock.advance(env.policy.return_deadline)  # no sweep ran in between
    assert await run_sweep(uows, env, REMINDER) == 0  # the return expires instead
    assert await _messages(uows, RETURN_REMINDER) == []
    clock.advance(env.policy.return_scan_grace)  # once a scan has had time to come
    assert await run_sweep(uows, env, REMINDER) == 0
    assert (await run_all(uows, env))["return_expiry"] == 1
    assert (await _claim(uows, claim_id)).remind_due_at is None


async def test_a_withdrawn_return_is_not_reminded_of(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _awaiting_return(uows, env)
    claim = await _claim(uows, claim_id)
    async with uows() as uow:
        await review.withdraw(uow, env, Actor(Role.BUYER, claim.buyer_id), claim_id)
        await uow.commit()
    assert (await _claim(uows, claim_id)).remind_due_at is None
    clock.advance(env.policy.return_deadline)
    assert (await run_all(uows, env))["return_reminder"] == 0
    assert await _messages(uows, RETURN_REMINDER) == []


# ---- staff alerted when a case waits longer than the review SLA ----


async def test_staff_are_alerted_once_when_a_case_waits_past_the_sla(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    entered = clock.now()
    claim_id = await _in_review(uows, env)
    claim = await _claim(uows, claim_id)
    assert claim.status == "needs_review"
    assert claim.staff_due_at == entered + env.policy.review_sla

    clock.advance(env.policy.review_sla - timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 0
    assert await _messages(uows, SLA_BREACH) == []

    clock.advance(timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 1
    assert (await run_all(uows, env))["staff_sla_alert"] == 0
    clock.advance(env.policy.review_sla * 3)
    assert (await run_all(uows, env))["staff_sla_alert"] == 0  # once per stay, not a nag

    [alert] = await _messages(uows, SLA_BREACH)
    assert alert.template == f"{SLA_BREACH}.needs_review"
    assert (alert.recipient_kind, alert.recipient_id, alert.claim_id) == ("staff", None, claim_id)
    assert alert.payload == {
        "claim_id": claim_id,
        "state": "needs_review",
        "since": entered.isoformat(),
        "waited_hours": int(env.policy.review_sla.total_seconds() // 3600),
    }
    after = await _claim(uows, claim_id)
    assert (after.status, after.version, after.staff_due_at) == (
        "needs_review",
        claim.version,
        None,
    )


async def test_no_alert_when_staff_acted_in_time(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _in_review(uows, env)
    clock.advance(env.policy.review_sla - timedelta(hours=1))
    async with uows() as uow:
        await review.request_info(uow, env, STAFF, claim_id, None, "The label, please")
        await uow.commit()
    assert (await _claim(uows, claim_id)).staff_due_at is None  # the buyer's turn now
    clock.advance(timedelta(hours=2))
    assert (await run_all(uows, env))["staff_sla_alert"] == 0
    assert await _messages(uows, SLA_BREACH) == []

    # Back with staff: a new stay, a new SLA from the answer on, and one alert for it.
    clock.advance(timedelta(hours=1))
    answered = clock.now()
    claim = await _claim(uows, claim_id)
    async with uows() as uow:
        await review.provide_info(uow, env, Actor(Role.BUYER, claim.buyer_id), claim_id, None, "ok")
        await uow.commit()
    assert (await _claim(uows, claim_id)).staff_due_at == answered + env.policy.review_sla
    clock.advance(env.policy.review_sla - timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 0
    clock.advance(timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 1
    [alert] = await _messages(uows, SLA_BREACH)
    assert alert.payload["since"] == answered.isoformat()

    async with uows() as uow:
        await review.approve(uow, env, STAFF, claim_id)
        await uow.commit()
    assert (await _claim(uows, claim_id)).staff_due_at is None


async def test_a_retried_alert_is_not_told_twice(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _in_review(uows, env)
    clock.advance(env.policy.review_sla)
    assert (await run_all(uows, env))["staff_sla_alert"] == 1
    # As if the deadline had not been cleared (a retry of the same stay, a little later).
    clock.advance(timedelta(minutes=5))
    async with uows() as uow:
        await uow.session.execute(
            update(t.Claim).where(t.Claim.id == claim_id).values(staff_due_at=clock.now())
        )
        await uow.commit()
    await run_all(uows, env)
    assert len(await _messages(uows, SLA_BREACH)) == 1


async def test_two_sweepers_at_once_alert_each_case_once(
    uows: UnitOfWorkFactory, db_url: str, env: Env, clock: ManualClock
) -> None:
    claims = [await _in_review(uows, env, f"M-{n}") for n in range(24)]
    reminders = [await _awaiting_return(uows, env, f"R-{n}") for n in range(12)]
    # Past the review SLA; the reminders due, their returns not yet expired.
    clock.advance(env.policy.return_deadline - env.policy.return_reminder_before)
    assert env.policy.review_sla < env.policy.return_deadline - env.policy.return_reminder_before
    other = make_engine(db_url)
    try:
        second = UnitOfWorkFactory(other)
        for sweep, expected in ((SLA_ALERT, claims), (REMINDER, reminders)):
            moved = await asyncio.gather(
                run_sweep(uows, env, sweep, batch=5), run_sweep(second, env, sweep, batch=5)
            )
            assert sum(moved) == len(expected)
    finally:
        await other.dispose()
    alerts = await _messages(uows, SLA_BREACH)
    assert sorted(m.claim_id for m in alerts) == sorted(claims)
    told = await _messages(uows, RETURN_REMINDER)
    assert sorted(m.claim_id for m in told) == sorted(reminders)


async def test_staff_are_told_once_of_a_parcel_that_never_arrives(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """A replacement the carrier never delivers (a lost parcel) and a return the buyer said
    they handed over that never reaches the warehouse: no scan will ever move these claims,
    so a week after the parcel went out staff are told, once each, rather than the claims
    waiting for ever unnoticed."""
    [placed] = await place(uows, clock.now(), order("X-1", clock.now(), buyer="X-1"))
    async with uows() as uow:
        exchange = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(
                ClaimType.EXCHANGE,
                Reason.WRONG_ITEM,
                (LineRequest(placed.line_ids[0], 1),),
                "",
                ("photo",),
            ),
        )
        await uow.commit()
    returned = await _awaiting_return(uows, env)
    buyer = Actor(Role.BUYER, (await _claim(uows, returned)).buyer_id)
    async with uows() as uow:
        assert await returns.apply_waybill(uow, env, exchange.id, Waybill("sim", "T-X", "qr:X"))
        await returns.mark_return_shipped(uow, env, buyer, returned)
        await uow.commit()
    assert (await _claim(uows, exchange.id)).status == "replacement_shipped"
    assert (await _claim(uows, returned)).status == "return_in_transit"

    clock.advance(timedelta(days=7) - timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 0
    clock.advance(timedelta(minutes=1))
    assert (await run_all(uows, env))["staff_sla_alert"] == 2
    clock.advance(timedelta(days=30))
    assert (await run_all(uows, env))["staff_sla_alert"] == 0  # once, not a nag
    alerts = {m.claim_id: m for m in await _messages(uows, SLA_BREACH)}
    assert {k: (m.template, m.recipient_kind) for k, m in alerts.items()} == {
        exchange.id: (f"{SLA_BREACH}.replacement_shipped", "staff"),
        returned: (f"{SLA_BREACH}.return_in_transit", "staff"),
    }
    assert alerts[exchange.id].payload["waited_hours"] == 7 * 24
    for claim_id in (exchange.id, returned):  # told, nothing moved
        assert (await _claim(uows, claim_id)).status in ("replacement_shipped", "return_in_transit")


def test_every_state_waiting_for_staff_has_words_for_its_alert() -> None:
    assert set(STAFF_STATES) == lifecycle.WAITING_FOR_STAFF
    for lang in i18n.LANGUAGES:
        for state in STAFF_ALERT_STATES:
            assert i18n.exists(lang, f"notify.{SLA_BREACH}.{state}"), (lang, state)
        assert i18n.exists(lang, f"notify.{RETURN_REMINDER}"), lang
