"""Provider effects: refunds whose callback was lost are reconciled with the gateway."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage import tables as t
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.services import filing, review
from workflow.services.backoffice import run_until_quiet
from workflow.services.common import Env
from workflow.services.effects import (
    RECONCILE_AFTER,
    deliver_refund_result,
    reconcile_refunds,
    run_provider_commands,
)
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway
from workflow.sweeps import run_all


async def _refund_requested(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock, payment: SimulatedPaymentGateway
) -> int:
    """An order never shipped: the system opens a refund-only claim, it is approved and its
    refund is asked of the gateway. Returns the claim's id."""
    now = clock.now()
    await place(uows, now, order("R-1", now, delivered=False))
    clock.advance(env.policy.shipping_sla + timedelta(days=1))
    await run_all(uows, env)
    assert await run_provider_commands(uows, env, payment, SimulatedCarrier(clock)) == 1
    async with uows() as uow:
        [claim] = (await uow.session.scalars(select(t.Claim))).all()
        assert claim.status == "refunding"
        return claim.id


async def _claim(uows: UnitOfWorkFactory, claim_id: int) -> t.Claim:
    async with uows() as uow:
        claim = await uow.session.get(t.Claim, claim_id)
        assert claim is not None
        return claim


async def _awaiting_return(
    uows: UnitOfWorkFactory,
    env: Env,
    clock: ManualClock,
    payment: SimulatedPaymentGateway,
    carrier: SimulatedCarrier,
    ref: str,
) -> t.Claim:
    """A no-reason return filed by the buyer and approved: its waybill issued, the claim
    waiting for the parcel."""
    [placed] = await place(uows, clock.now(), order(ref, clock.now()))
    draft = ClaimDraft(
        ClaimType.RETURN_REFUND,
        Reason.NO_REASON_7_DAYS,
        (LineRequest(placed.line_ids[0], 1),),
        "",
        (),
    )
    async with uows() as uow:
        claim = await filing.file_claim(uow, env, Actor(Role.BUYER, placed.buyer_id), draft)
        await uow.commit()
    await run_until_quiet(uows, env, payment, carrier)
    awaiting = await _claim(uows, claim.id)
    assert awaiting.status == "awaiting_return"
    return awaiting


async def test_a_lost_callback_is_reconciled_once_and_a_late_one_changes_nothing(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    payment = SimulatedPaymentGateway(clock, seed=3)
    claim_id = await _refund_requested(uows, env, clock, payment)
    # The gateway has answered (5 minutes, give or take) but the callback never came.
    clock.advance(timedelta(minutes=10))
    assert await reconcile_refunds(uows, env, payment) == 0  # not overdue yet
    clock.advance(RECONCILE_AFTER)
    assert await reconcile_refunds(uows, env, payment) == 1
    claim = await _claim(uows, claim_id)
    assert claim.status == "refunded"
    version = claim.version
    assert await reconcile_refunds(uows, env, payment) == 0
    # The callback arrives after all: the refund was already applied, nothing moves.
    await payment.deliver_callbacks(lambda r: deliver_refund_result(uows, env, r))
    claim = await _claim(uows, claim_id)
    assert (claim.status, claim.version) == ("refunded", version)
    async with uows() as uow:
        [order_row] = (await uow.session.scalars(select(t.Order))).all()
        assert order_row.refunded_amount == order_row.paid_amount


async def test_a_reconciled_failure_is_reported_to_staff(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    payment = SimulatedPaymentGateway(clock, seed=3, failure_rate=1.0)
    claim_id = await _refund_requested(uows, env, clock, payment)
    clock.advance(RECONCILE_AFTER + timedelta(minutes=10))
    assert await reconcile_refunds(uows, env, payment) == 1
    async with uows() as uow:
        [refund] = (await uow.session.scalars(select(t.Refund))).all()
        told = [
            m for m in await uow.outbox.messages(claim_id) if m.template == "staff.refund_failed"
        ]
    assert refund.status == "failed" and refund.failure == "card_declined"
    assert len(told) == 1


async def test_a_refund_the_gateway_is_still_working_on_is_left_pending(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    payment = SimulatedPaymentGateway(clock, seed=3, delay=timedelta(hours=6))
    claim_id = await _refund_requested(uows, env, clock, payment)
    clock.advance(RECONCILE_AFTER + timedelta(minutes=10))
    assert await reconcile_refunds(uows, env, payment) == 0
    assert (await _claim(uows, claim_id)).status == "refunding"
    clock.advance(timedelta(hours=6))
    assert await reconcile_refunds(uows, env, payment) == 1
    assert (await _claim(uows, claim_id)).status == "refunded"


async def _exchange_approved(uows: UnitOfWorkFactory, env: Env, clock: ManualClock) -> int:
    """A wrong item with a photo: an exchange the rules approve, its replacement's waybill
    now asked of the carrier. Returns the claim's id."""
    [placed] = await place(uows, clock.now(), order("X-1", clock.now()))
    draft = ClaimDraft(
        ClaimType.EXCHANGE, Reason.WRONG_ITEM, (LineRequest(placed.line_ids[0], 1),), "", ("p",)
    )
    async with uows() as uow:
        claim = await filing.file_claim(uow, env, Actor(Role.BUYER, placed.buyer_id), draft)
        await uow.commit()
    await run_all(uows, env)
    assert (await _claim(uows, claim.id)).status == "approved"
    return claim.id


async def test_no_replacement_is_shipped_for_an_exchange_withdrawn_while_the_carrier_was_down(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """The carrier's API is down when the exchange is approved; the buyer, seeing nothing
    happen, withdraws the claim. Once the carrier is back, the replacement's waybill is not
    asked for: no parcel goes out to a buyer who no longer wants it."""
    payment = SimulatedPaymentGateway(clock)
    carrier = SimulatedCarrier(clock, unavailable_rate=1.0)
    claim_id = await _exchange_approved(uows, env, clock)
    assert await run_provider_commands(uows, env, payment, carrier) == 0  # retried later
    async with uows() as uow:
        buyer = Actor(Role.BUYER, (await _claim(uows, claim_id)).buyer_id)
        await review.withdraw(uow, env, buyer, claim_id)
        await uow.commit()
    carrier.unavailable_rate = 0.0
    clock.advance(timedelta(hours=2))
    await run_provider_commands(uows, env, payment, carrier)
    assert carrier.parcels == {}  # no label printed, no replacement handed to the carrier
    async with uows() as uow:
        assert await uow.outbox.due_commands(clock.now() + timedelta(days=1), 10) == []
        assert await uow.shipments.for_claim(claim_id) == []
    assert (await _claim(uows, claim_id)).status == "withdrawn"


async def test_a_return_handed_over_a_minute_before_its_deadline_is_not_expired(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """The buyer drops the parcel off a minute before the deadline; the back office next runs
    two minutes later, its expiry sweep before the carrier's scan is read. The claim is on
    its way, not expired: a claim expires only once a scan has had time to come."""
    payment = SimulatedPaymentGateway(clock)
    carrier = SimulatedCarrier(clock)
    claim = await _awaiting_return(uows, env, clock, payment, carrier, "G-1")
    assert claim.return_by is not None
    clock.advance(env.policy.return_deadline - timedelta(minutes=1))
    async with uows() as uow:
        [parcel] = await uow.shipments.for_claim(claim.id)
    carrier.hand_over(parcel.tracking_number)
    clock.advance(timedelta(minutes=2))
    assert (await run_all(uows, env))["return_expiry"] == 0  # the sweeps run first
    await run_until_quiet(uows, env, payment, carrier)
    assert (await _claim(uows, claim.id)).status == "return_in_transit"


async def test_a_return_parcel_that_arrives_after_its_claim_expired_is_told_not_lost(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """The buyer sends the item back after the return deadline expired the claim. The parcel
    reaches the warehouse all the same: staff are told to book it in and settle with the
    buyer, the buyer that it arrived and will be looked into (once each), and the parcel is
    no longer tracked as on its way."""
    payment = SimulatedPaymentGateway(clock)
    carrier = SimulatedCarrier(clock)
    claim = await _awaiting_return(uows, env, clock, payment, carrier, "L-1")
    clock.advance(env.policy.return_deadline + env.policy.return_scan_grace + timedelta(hours=1))
    await run_until_quiet(uows, env, payment, carrier)
    assert (await _claim(uows, claim.id)).status == "expired"
    async with uows() as uow:
        [parcel] = await uow.shipments.for_claim(claim.id)
    carrier.hand_over(parcel.tracking_number)
    clock.advance(carrier.transit + timedelta(hours=1))
    for _ in range(2):  # polled again: nobody is told twice
        await run_until_quiet(uows, env, payment, carrier)
    async with uows() as uow:
        told = [
            (m.recipient_kind, m.template, m.payload["tracking_number"])
            for m in await uow.outbox.messages(claim.id)
            if "tracking_number" in m.payload and m.template.endswith(".late_return")
        ]
        [parcel] = await uow.shipments.for_claim(claim.id)
        assert parcel.status == "delivered"
        assert await uow.shipments.open_tracking_numbers() == []
    assert told == [
        ("buyer", "claim.late_return", parcel.tracking_number),
        ("staff", "staff.late_return", parcel.tracking_number),
    ]
    assert (await _claim(uows, claim.id)).status == "expired"
