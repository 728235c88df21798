"""Sweeps that tell and move nothing: the buyer's return reminder and the staff SLA alert.

Each handler runs on a claim the sweep has locked, re-checks under the lock that the alert is
still due (a step since may have cleared it), writes one outbox message under its dedupe key
and clears the deadline, in the sweep's transaction. No state changes, so no audit row: the
outbox row is the trace.
"""

from __future__ import annotations

from workflow.claims import SYSTEM, ShipmentKind
from workflow.ports import UnitOfWork
from workflow.reminders import return_reminder, return_reminder_due, sla_breach, sla_breached
from workflow.services.common import Env, load_claim


async def remind_return(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Sweep: remind the buyer to hand the return parcel over before its deadline."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    if not return_reminder_due(claim, now):
        return False
    parcel = next(
        (
            s
            for s in reversed(await uow.shipments.for_claim(claim.id))
            if s.kind == ShipmentKind.RETURN.value
        ),
        None,
    )
    await uow.outbox.add(return_reminder(claim, parcel), now)
    claim.remind_due_at = None
    return True


async def alert_staff(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Sweep: a case has waited for a person on staff longer than the review SLA."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    if not sla_breached(claim, now):
        return False
    await uow.outbox.add(sla_breach(claim, now), now)
    claim.staff_due_at = None
    return True
