"""Provider commands, run after the commit that wrote them.

A use case writes ``payment.refund`` / ``carrier.waybill`` commands into the outbox in its
own transaction. This runner picks due commands, calls the provider with the command's
idempotency key (so a retry after a crash never pays or ships twice), and applies the answer
in a new transaction. A provider that does not answer leaves the command queued, with backoff.
"""

from __future__ import annotations

from datetime import timedelta

from workflow.claims import ShipmentStatus
from workflow.errors import DomainError
from workflow.ports import (
    Carrier,
    PaymentGateway,
    ProviderUnavailable,
    RefundResult,
    UnitOfWorkFactory,
)
from workflow.services.common import Env
from workflow.services.refunds import record_refund_result
from workflow.services.returns import apply_waybill, tracking_update, waybill_wanted

BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1))
# A refund still pending this long after its request: its callback is taken as lost.
RECONCILE_AFTER = timedelta(minutes=30)


async def run_provider_commands(
    uows: UnitOfWorkFactory,
    env: Env,
    payment: PaymentGateway,
    carrier: Carrier,
    limit: int = 100,
) -> int:
    """Run due commands; returns how many completed."""
    async with uows() as uow:
        commands = await uow.outbox.due_commands(env.clock.now(), limit)
    done = 0
    for outbox_id, attempts, command in commands:
        try:
            if command.kind == "payment.refund":
                p = command.params
                await payment.request_refund(
                    command.idempotency_key, p["order_ref"], p["amount"], p["currency"]
                )
                async with uows() as uow:
                    await uow.outbox.command_done(outbox_id, env.clock.now())
                    await uow.commit()
            elif command.kind == "carrier.waybill":
                claim_id = int(command.params["claim_id"])
                async with uows() as uow:
                    wanted = await waybill_wanted(uow, claim_id)
                if not wanted:  # withdrawn meanwhile (say, while the carrier was down)
                    async with uows() as uow:
                        await uow.outbox.command_done(outbox_id, env.clock.now())
                        await uow.commit()
                    continue
                reference = f"{command.params['shipment_kind']}-{claim_id}"
                waybill = await carrier.create_waybill(command.idempotency_key, reference)
                async with uows() as uow:
                    await apply_waybill(uow, env, claim_id, waybill)
                    await uow.outbox.command_done(outbox_id, env.clock.now())
                    await uow.commit()
            else:
                raise ValueError(f"unknown command {command.kind}")
            done += 1
        except (ProviderUnavailable, DomainError) as exc:
            async with uows() as uow:
                retry_at = env.clock.now() + BACKOFF[min(attempts, len(BACKOFF) - 1)]
                await uow.outbox.command_retry(outbox_id, f"{type(exc).__name__}: {exc}", retry_at)
                await uow.commit()
    return done


async def deliver_refund_result(uows: UnitOfWorkFactory, env: Env, result: RefundResult) -> None:
    """The gateway's callback endpoint: one transaction per callback, idempotent."""
    async with uows() as uow:
        if await record_refund_result(uow, env, result):
            await uow.commit()


async def reconcile_refunds(
    uows: UnitOfWorkFactory,
    env: Env,
    payment: PaymentGateway,
    overdue_after: timedelta = RECONCILE_AFTER,
    limit: int = 200,
) -> int:
    """Refunds whose callback never came: ask the gateway for their outcome and apply it as
    the callback would have (idempotent: a late callback afterwards changes nothing). A
    refund that failed this way is reported to staff like any failed refund. Returns how
    many refunds were settled here."""
    async with uows() as uow:
        keys = await uow.money.stale_pending_refunds(env.clock.now() - overdue_after, limit)
    settled = 0
    for key in keys:
        try:
            result = await payment.status(key)
        except ProviderUnavailable:
            return settled  # the gateway is down: the next run asks again
        if result is None:
            continue  # still being processed by the gateway
        async with uows() as uow:
            if await record_refund_result(uow, env, result):
                await uow.commit()
                settled += 1
    return settled


async def poll_tracking(
    uows: UnitOfWorkFactory, env: Env, carrier: Carrier, tracking_numbers: list[str]
) -> int:
    """Apply the newest tracking status of each parcel; returns how many claims moved."""
    moved = 0
    for number in tracking_numbers:
        events = await carrier.tracking(number)
        if not events:
            continue
        latest = ShipmentStatus(events[-1].status)
        if latest is ShipmentStatus.CREATED:
            continue
        async with uows() as uow:
            if await tracking_update(uow, env, number, latest):
                await uow.commit()
                moved += 1
    return moved
