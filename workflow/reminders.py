"""Reminders and alerts that move no state: when they fall due, and what they say.

Two deadlines on the claim follow its state; :func:`follow_state` is applied by every
transition, so they are set on entering a state and cleared on leaving it:

* ``remind_due_at`` — while the buyer is to send the return back (the states from which
  ``ship_return`` fires), ``policy.return_reminder_before`` ahead of ``return_by`` (never in
  the past); the buyer is then reminded of the deadline once.
* ``staff_due_at`` — while only a person on staff can move the case
  (:data:`lifecycle.WAITING_FOR_STAFF`), ``policy.review_sla`` after entering the state; staff
  are then alerted once that the case waits longer than the SLA. While the case waits for a
  parcel to be delivered (:data:`IN_TRANSIT`: a replacement, a return handed over), it is
  ``policy.parcel_overdue`` after the parcel went out: a lost parcel is never scanned, and
  without the alert nobody would ever hear of the case again.

Each message's dedupe key names the claim's version, which the reminder does not change and
every transition does: one message per stay in a state, however often a sweep is retried.
"""

from __future__ import annotations

from datetime import datetime

from workflow import lifecycle
from workflow.claims import ClaimRecord, OutboxMessage, ShipmentRecord
from workflow.rules import ReviewPolicy

RETURN_REMINDER = "reminder.return"
SLA_BREACH = "staff.sla_breach"

# The buyer is to hand the return parcel over (read off the table, like every list of states).
AWAITING_PARCEL: tuple[str, ...] = lifecycle.sources_of("ship_return")
STAFF_STATES: tuple[str, ...] = tuple(sorted(lifecycle.WAITING_FOR_STAFF))
# A parcel is on its way and only its delivery scan moves the claim on (or staff booking it in).
IN_TRANSIT: tuple[str, ...] = (
    *lifecycle.sources_of("deliver_replacement"),
    *lifecycle.sources_of("receive_return"),
)
# Where the staff alert (``staff_due_at``) is armed: the staff SLA, or an overdue parcel.
STAFF_ALERT_STATES: tuple[str, ...] = (*STAFF_STATES, *IN_TRANSIT)


def follow_state(claim: ClaimRecord, policy: ReviewPolicy, now: datetime) -> None:
    """Set or clear the alert deadlines for the state the claim has just entered."""
    if claim.status in STAFF_STATES:
        claim.staff_due_at = now + policy.review_sla
    elif claim.status in IN_TRANSIT:
        claim.staff_due_at = now + policy.parcel_overdue
    else:
        claim.staff_due_at = None
    if claim.status in AWAITING_PARCEL and claim.return_by is not None:
        claim.remind_due_at = max(now, claim.return_by - policy.return_reminder_before)
    else:
        claim.remind_due_at = None


def return_reminder_due(claim: ClaimRecord, now: datetime) -> bool:
    """Due, still waiting for the parcel, and the deadline not yet passed (then it expires)."""
    return (
        claim.remind_due_at is not None
        and claim.remind_due_at <= now
        and claim.status in AWAITING_PARCEL
        and claim.return_by is not None
        and now < claim.return_by
    )


def sla_breached(claim: ClaimRecord, now: datetime) -> bool:
    return (
        claim.staff_due_at is not None
        and claim.staff_due_at <= now
        and claim.status in STAFF_ALERT_STATES
    )


def return_reminder(claim: ClaimRecord, parcel: ShipmentRecord | None) -> OutboxMessage:
    """To the buyer: the deadline again, with the return waybill (as the waybill message had)."""
    assert claim.return_by is not None
    return OutboxMessage(
        dedupe_key=f"reminder:{claim.id}:v{claim.version}:return:buyer:{claim.buyer_id}",
        recipient_kind="buyer",
        recipient_id=claim.buyer_id,
        template=RETURN_REMINDER,
        params={
            "claim_id": claim.id,
            "return_by": claim.return_by.isoformat(),
            "tracking_number": parcel.tracking_number if parcel else "",
            "qr_payload": parcel.qr_payload if parcel else "",
        },
        claim_id=claim.id,
    )


def sla_breach(claim: ClaimRecord, now: datetime) -> OutboxMessage:
    """To staff: the case has waited in its state since its last step (``updated_at``)."""
    waited = now - claim.updated_at
    return OutboxMessage(
        dedupe_key=f"reminder:{claim.id}:v{claim.version}:sla:staff",
        recipient_kind="staff",
        recipient_id=None,
        template=f"{SLA_BREACH}.{claim.status}",
        params={
            "claim_id": claim.id,
            "state": claim.status,
            "since": claim.updated_at.isoformat(),
            "waited_hours": int(waited.total_seconds() // 3600),
        },
        claim_id=claim.id,
    )
