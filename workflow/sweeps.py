"""Time-driven work: each sweep claims due rows in short batches and fires their transitions.

The last sweeps move no state: they remind the buyer of the return deadline and alert staff to a
case waiting longer than the review SLA, or for a parcel that has not arrived in time
(:mod:`workflow.services.reminders`), once each.

Deadlines live in indexed columns of the claims themselves, so any number of processes can run
the same sweeps: on PostgreSQL a batch is claimed with ``FOR UPDATE SKIP LOCKED``; on SQLite the
batch's transaction starts with ``BEGIN IMMEDIATE``. Each handler re-checks state and deadline
under the lock, so a claim seen by two sweepers still moves exactly once (and an alert, which
clears its deadline and carries a dedupe key, is written exactly once). Memory stays flat:
one batch of ids and one unit of work at a time, no object per claim kept between batches.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from workflow.errors import DomainError
from workflow.lifecycle import sources_of
from workflow.ports import UnitOfWork, UnitOfWorkFactory
from workflow.reminders import AWAITING_PARCEL, STAFF_ALERT_STATES
from workflow.rules import ReviewPolicy
from workflow.services.common import Env
from workflow.services.overdue import flag_overdue_order
from workflow.services.reminders import alert_staff, remind_return
from workflow.services.returns import escalate_compensation, expire_return
from workflow.services.review import auto_review, info_overdue
from workflow.services.settlement import settle

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, Env, int], Awaitable[object]]


def _no_grace(policy: ReviewPolicy) -> timedelta:
    return timedelta(0)


@dataclass(frozen=True, slots=True)
class Sweep:
    name: str
    deadline: str
    states: tuple[str, ...]
    handler: Handler
    # How long after its deadline a row is due (the handler checks the same).
    grace: Callable[[ReviewPolicy], timedelta] = _no_grace


def _sweep(name: str, deadline: str, trigger: str, handler: Handler) -> Sweep:
    """A sweep over the claims from whose state ``trigger`` can fire (read off the table)."""
    return Sweep(name, deadline, sources_of(trigger), handler)


SWEEPS: tuple[Sweep, ...] = (
    _sweep("auto_review", "review_due_at", "auto_approve", auto_review),
    _sweep("info_overdue", "info_due_at", "info_overdue", info_overdue),
    Sweep(
        "return_expiry",
        "return_by",
        sources_of("expire"),
        expire_return,
        grace=lambda policy: policy.return_scan_grace,
    ),
    _sweep("compensation_escalation", "respond_by", "escalate_compensation", escalate_compensation),
    _sweep("settlement", "settle_due_at", "settle", settle),
    # Tell, move nothing; after the steps above, so a return that expired is not reminded of.
    Sweep("return_reminder", "remind_due_at", AWAITING_PARCEL, remind_return),
    Sweep("staff_sla_alert", "staff_due_at", STAFF_ALERT_STATES, alert_staff),
)


def _moved(result: object) -> bool:
    return result is not None and result is not False


async def run_sweep(uows: UnitOfWorkFactory, env: Env, sweep: Sweep, batch: int = 200) -> int:
    """Process every due row of one sweep; returns how many claims it moved (or told of)."""
    moved = 0
    failed: set[int] = set()
    while True:
        async with uows() as uow:
            ids = [
                i
                for i in await uow.claims.due(
                    sweep.deadline,
                    env.clock.now() - sweep.grace(env.policy),
                    sweep.states,
                    batch + len(failed),
                )
                if i not in failed
            ][:batch]
            if not ids:
                return moved
            try:
                results = [await sweep.handler(uow, env, claim_id) for claim_id in ids]
                await uow.commit()
                moved += sum(1 for r in results if _moved(r))
                progressed = any(_moved(r) for r in results)
            except Exception:  # a refusal, or a row this code cannot handle: see below
                await uow.rollback()
                progressed = False
        if progressed:
            continue
        # A batch that moved nothing as a whole: one by one, so a bad row cannot block the rest.
        one_by_one = 0
        for claim_id in ids:
            async with uows() as uow:
                try:
                    if _moved(await sweep.handler(uow, env, claim_id)):
                        await uow.commit()
                        one_by_one += 1
                    else:
                        failed.add(claim_id)
                except DomainError as exc:
                    log.warning("sweep %s: claim %s refused: %s", sweep.name, claim_id, exc)
                    failed.add(claim_id)
                except Exception:
                    # A row this code cannot handle (a value written by a newer version, a
                    # bug): left for a person or a fix, and no reason to stop the others.
                    log.exception("sweep %s: claim %s failed", sweep.name, claim_id)
                    await uow.rollback()
                    failed.add(claim_id)
        moved += one_by_one
        if not one_by_one and all(i in failed for i in ids):
            return moved


async def run_overdue_orders(uows: UnitOfWorkFactory, env: Env, batch: int = 200) -> int:
    """Orders not shipped by their deadline, in batches claimed like the claim sweeps; a batch
    that fails is taken one order at a time, so one bad order cannot hold up the rest."""
    moved = 0
    failed: set[int] = set()
    while True:
        async with uows() as uow:
            found = await uow.orders.overdue(env.clock.now(), batch + len(failed))
            ids = [i for i in found if i not in failed][:batch]
            if not ids:
                return moved
            try:
                flagged = [await flag_overdue_order(uow, env, order_id) for order_id in ids]
                await uow.commit()
            except Exception:
                await uow.rollback()
                flagged = []
        if flagged:
            moved += sum(flagged)
            if not any(flagged):
                return moved
            continue
        for order_id in ids:
            async with uows() as uow:
                try:
                    if await flag_overdue_order(uow, env, order_id):
                        await uow.commit()
                        moved += 1
                    else:
                        failed.add(order_id)
                except Exception:
                    log.exception("overdue sweep: order %s failed", order_id)
                    await uow.rollback()
                    failed.add(order_id)


async def run_all(uows: UnitOfWorkFactory, env: Env, batch: int = 200) -> dict[str, int]:
    moved = {"overdue_shipment": await run_overdue_orders(uows, env, batch)}
    moved |= {sweep.name: await run_sweep(uows, env, sweep, batch) for sweep in SWEEPS}
    return moved
