"""What every use case shares: the environment, loading with checks, and one transition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflow import lifecycle
from workflow.claims import Actor, AuditEvent, ClaimRecord, Role
from workflow.errors import AlreadyHandled, Forbidden, NotFound
from workflow.notifications import ClaimTransitioned, messages_for
from workflow.ports import Clock, UnitOfWork
from workflow.reminders import follow_state
from workflow.rules import ReviewPolicy


@dataclass(frozen=True, slots=True)
class Env:
    """Process-wide collaborators a use case needs besides its unit of work."""

    clock: Clock
    policy: ReviewPolicy = field(default_factory=ReviewPolicy)
    carrier_name: str = "simulated-express"


async def load_claim(
    uow: UnitOfWork, actor: Actor, claim_id: int, expected_version: int | None = None
) -> ClaimRecord:
    """Load and lock a claim the actor may act on, at the version their button was drawn for."""
    claim = await uow.claims.get(claim_id, lock=True)
    if claim is None:
        raise NotFound("claim", claim_id)
    await ensure_party(uow, actor, claim)
    if expected_version is not None and claim.version != expected_version:
        raise AlreadyHandled(claim.id, expected_version, claim.version)
    return claim


async def ensure_party(uow: UnitOfWork, actor: Actor, claim: ClaimRecord) -> None:
    """Buyers see their own claims, consignors claims about their items, staff all of them.

    A claim that is not the actor's is reported as not found, so ids cannot be probed.
    """
    if actor.role is Role.BUYER:
        if claim.buyer_id != actor.party_id:
            raise NotFound("claim", claim.id)
    elif actor.role is Role.CONSIGNOR:
        if actor.party_id not in await uow.claims.consignor_ids(claim.id):
            raise NotFound("claim", claim.id)
    elif actor.role not in (Role.SYSTEM, Role.CARRIER) and not actor.is_staff:
        raise Forbidden("unknown role")


async def transition(
    uow: UnitOfWork,
    env: Env,
    claim: ClaimRecord,
    trigger: str,
    actor: Actor,
    *,
    rule: str | None = None,
    note: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Fire one step of the table and write its audit row and its messages, atomically.

    The claim's version goes up by one per step; the audit row is unique per (claim,
    version), and the UPDATE is guarded by the loaded version, so two racing callers can
    never both record the same step. The reminder and staff-alert deadlines follow the new
    state here (:func:`workflow.reminders.follow_state`), so no step can forget them.
    """
    now = env.clock.now()
    before, after = lifecycle.fire(claim, trigger, actor.role)
    claim.version += 1
    claim.updated_at = now
    if after in lifecycle.TERMINAL_STATES:
        claim.closed_at = now
    follow_state(claim, env.policy, now)
    await uow.claims.add_audit(
        AuditEvent(
            claim_id=claim.id,
            version=claim.version,
            from_status=before,
            to_status=after,
            trigger=trigger,
            actor=actor.label(),
            at=now,
            rule=rule,
            note=note,
        )
    )
    await notify(uow, env, claim, before, trigger, actor, params or {})


async def notify(
    uow: UnitOfWork,
    env: Env,
    claim: ClaimRecord,
    before: str,
    trigger: str,
    actor: Actor,
    params: dict[str, Any],
) -> None:
    event = ClaimTransitioned(
        claim_id=claim.id,
        version=claim.version,
        from_status=before,
        to_status=claim.status,
        trigger=trigger,
        actor=actor.role.value,
        buyer_id=claim.buyer_id,
        consignor_ids=tuple(await uow.claims.consignor_ids(claim.id)),
        # Amounts are minor units of the claim's currency: the messages say which.
        params={"currency": claim.currency, **params},
        actor_party=actor.party_id,
        origin_chat=actor.chat,
    )
    now = env.clock.now()
    for message in messages_for(event):
        await uow.outbox.add(message, now)


def require_staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("staff only")


def require_role(actor: Actor, role: Role) -> None:
    if actor.role is not role:
        raise Forbidden(f"{role.value} only")
