"""The time-driven work, on APScheduler 3 (AsyncIOScheduler, in-memory job store).

Every bot process runs the same few interval jobs. The 3.x job store cannot be shared between
processes, so nothing about *which claim is due* lives in the scheduler: deadlines are indexed
columns on the rows, and each job claims due rows in short batches (``SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). Running N processes never runs a transition twice;
a job that is still running when its next turn comes is skipped (``max_instances=1``) and
missed turns are coalesced into one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.conversations.context import Services
from bot.delivery import deliver_pending
from workflow.ports import Carrier
from workflow.services.effects import (
    deliver_refund_result,
    poll_tracking,
    reconcile_refunds,
    run_provider_commands,
)
from workflow.simulated import SimulatedPaymentGateway
from workflow.sweeps import run_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intervals:
    """Seconds between runs of each job (defaults suit production; tests shorten them)."""

    sweeps: float = 30.0
    providers: float = 10.0
    payment_callbacks: float = 10.0
    tracking: float = 60.0
    delivery: float = 1.0
    reconciliation: float = 300.0


def jobs(
    services: Services, bot: Bot, payment: SimulatedPaymentGateway, carrier: Carrier
) -> dict[str, Callable[[], Awaitable[int]]]:
    """The back office as named jobs; each returns how many things it moved."""
    uows, env = services.uows, services.env

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

    async def delivery() -> int:
        return await deliver_pending(services, bot)

    return {
        "sweeps": sweeps,
        "providers": providers,
        "payment_callbacks": payment_callbacks,
        "reconciliation": reconciliation,
        "tracking": tracking,
        "delivery": delivery,
    }


def _guarded(name: str, job: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            moved = await job()
            if moved:
                log.info("job %s moved %s", name, moved)
        except Exception:
            log.exception("job %s failed; it runs again at its next turn", name)

    return run


def build_scheduler(
    services: Services,
    bot: Bot,
    payment: SimulatedPaymentGateway,
    carrier: Carrier,
    intervals: Intervals | None = None,
) -> AsyncIOScheduler:
    every = intervals or Intervals()
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    for name, job in jobs(services, bot, payment, carrier).items():
        scheduler.add_job(
            _guarded(name, job), "interval", seconds=getattr(every, name), id=name, name=name
        )
    return scheduler
