"""One round of the back office: sweeps, provider commands, payment callbacks, parcel scans.

The bot runs rounds on a timer; tests and the demo run them until nothing moves. Delivery of
messages to chats is the front end's part and is not in here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from workflow.ports import Carrier, UnitOfWorkFactory
from workflow.services.common import Env
from workflow.services.effects import (
    deliver_refund_result,
    poll_tracking,
    reconcile_refunds,
    run_provider_commands,
)
from workflow.simulated import SimulatedPaymentGateway
from workflow.sweeps import run_all

Job = Callable[[], Awaitable[int]]


def jobs(
    uows: UnitOfWorkFactory, env: Env, payment: SimulatedPaymentGateway, carrier: Carrier
) -> dict[str, Job]:
    """The back office as named jobs, in the order a round runs them; each returns how many
    things it moved. The bot schedules each on its own interval (and adds delivery)."""

    async def sweeps() -> int:
        return sum((await run_all(uows, env)).values())

    async def providers() -> int:
        return await run_provider_commands(uows, env, payment, carrier)

    async def payment_callbacks() -> int:
        return await payment.deliver_callbacks(lambda r: deliver_refund_result(uows, env, r))

    async def reconciliation() -> int:
        return await reconcile_refunds(uows, env, payment)

    async def tracking() -> int:
        async with uows() as uow:
            numbers = await uow.shipments.open_tracking_numbers()
        return await poll_tracking(uows, env, carrier, numbers)

    return {
        "sweeps": sweeps,
        "providers": providers,
        "payment_callbacks": payment_callbacks,
        "reconciliation": reconciliation,
        "tracking": tracking,
    }


async def run_round(
    uows: UnitOfWorkFactory, env: Env, payment: SimulatedPaymentGateway, carrier: Carrier
) -> int:
    """Everything due now, once; returns how many things moved."""
    moved = 0
    for job in jobs(uows, env, payment, carrier).values():
        moved += await job()
    return moved


async def until_quiet(step: Callable[[], Awaitable[int]], rounds: int = 20) -> int:
    """Repeat ``step`` (which returns how many things moved) until a round moves nothing."""
    total = 0
    for _ in range(rounds):
        moved = await step()
        total += moved
        if not moved:
            break
    return total


async def run_until_quiet(
    uows: UnitOfWorkFactory,
    env: Env,
    payment: SimulatedPaymentGateway,
    carrier: Carrier,
    rounds: int = 20,
) -> int:
    return await until_quiet(lambda: run_round(uows, env, payment, carrier), rounds)
