"""The time-driven work, on APScheduler 3 (AsyncIOScheduler, in-memory job store).

Every bot process runs the same few interval jobs. The 3.x job store cannot be shared between
processes, so nothing about *which claim is due* lives in the scheduler: deadlines are indexed
columns on the rows, and each job claims due rows in short batches (``SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). Running N processes never runs a transition twice;
a job that is still running when its next turn comes is skipped (quietly: during a long
database outage a turn may wait minutes) and missed turns are coalesced into one. A job
never ends its schedule by failing: the failure is logged and the job runs again at its next
turn — a database outage as one line a turn, a bug with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.conversations.context import Services
from bot.delivery import deliver_pending
from storage.engine import unavailable
from workflow.ports import Carrier
from workflow.services import backoffice
from workflow.simulated import SimulatedPaymentGateway

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
    """The back office's jobs (``workflow.services.backoffice.jobs``) and the delivery of
    messages to chats; each returns how many things it moved."""

    async def delivery() -> int:
        return await deliver_pending(services, bot)

    return {**backoffice.jobs(services.uows, services.env, payment, carrier), "delivery": delivery}


def _guarded(name: str, job: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
    running = False

    async def run() -> None:
        nonlocal running
        if running:
            return  # the last turn still runs (e.g. waits for the database): this one is let go
        running = True
        try:
            moved = await job()
            if moved:
                log.info("job %s moved %s", name, moved)
        except Exception as exc:
            if unavailable(exc):
                log.warning(
                    "job %s: the database is unavailable (%s: %s); it runs again at its next turn",
                    name,
                    type(exc).__name__,
                    str(exc).strip().split("\n")[0],
                )
            else:
                log.exception("job %s failed; it runs again at its next turn", name)
        finally:
            running = False

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
        # A second instance may start only to find the first still running and return at
        # once: APScheduler's own skip (max_instances=1) would log a warning every turn.
        job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None}
    )
    for name, job in jobs(services, bot, payment, carrier).items():
        scheduler.add_job(
            _guarded(name, job), "interval", seconds=getattr(every, name), id=name, name=name
        )
    return scheduler
