"""Platform review: automatic by the rules, or by staff; and what approval sets in motion."""

from __future__ import annotations

from datetime import timedelta

from workflow.claims import (
    MAX_EVIDENCE_ITEMS,
    SYSTEM,
    Actor,
    ClaimRecord,
    ClaimType,
    Liability,
    ProviderCommand,
    Reason,
    Role,
    Source,
)
from workflow.errors import AlreadyHandled, InvalidAmount, InvalidClaim
from workflow.ledger import DEFAULT_LIABILITY
from workflow.lifecycle import can_fire
from workflow.ports import UnitOfWork
from workflow.rules import Decision, ReviewFacts, Verdict, decide
from workflow.services.common import Env, load_claim, require_role, require_staff, transition
from workflow.services.refunds import request_refunds

MAX_NOTE_CHARS = 1000


async def auto_review(uow: UnitOfWork, env: Env, claim_id: int) -> Decision | None:
    """Run the rules on a submitted claim. Returns None if it was reviewed already."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    if not can_fire(claim, "auto_approve", SYSTEM.role):
        return None
    now = env.clock.now()
    delivered, shipped, ship_by = None, None, None
    for line in await uow.claims.lines(claim.id):
        order_line = await uow.orders.line(line.order_line_id)
        order = await uow.orders.get(order_line.order_id) if order_line else None
        if order is None:
            continue
        if order.delivered_at is not None and (delivered is None or order.delivered_at < delivered):
            delivered = order.delivered_at
        if order.shipped_at is not None and (shipped is None or order.shipped_at < shipped):
            shipped = order.shipped_at
        if ship_by is None or order.ship_by < ship_by:
            ship_by = order.ship_by
    facts = ReviewFacts(
        claim_type=ClaimType(claim.claim_type),
        reason=Reason(claim.reason),
        source=Source(claim.source),
        amount=claim.claimed_amount
        if claim.filing_id is None
        else await uow.claims.filing_total(claim.filing_id),
        now=now,
        delivered_at=delivered,
        shipped_at=shipped,
        ship_by=ship_by or now,
        buyer_claims_last_30_days=await uow.claims.count_by_buyer_since(
            claim.buyer_id, now - timedelta(days=30)
        )
        - 1,
        evidence_count=await uow.claims.evidence_count(claim.id),
        filed_at=claim.created_at,
        currency=claim.currency,
    )
    decision = decide(facts, env.policy)
    claim.review_rule = decision.rule
    claim.review_note = decision.why
    claim.liability = DEFAULT_LIABILITY[facts.reason].value
    await transition(
        uow,
        env,
        claim,
        decision.verdict.trigger,
        SYSTEM,
        rule=decision.rule,
        note=decision.why,
        # a rejection tells the parties why, in their words (bot: ``rule_reason.<rule>``)
        params={"rule": decision.rule} if decision.verdict is Verdict.REJECT else None,
    )
    claim.review_due_at = (
        now + env.policy.review_sla if decision.verdict is Verdict.MANUAL else None
    )
    if decision.verdict is Verdict.APPROVE:
        await after_approval(uow, env, claim)
    return decision


async def approve(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    claim_id: int,
    version: int | None = None,
    liability: Liability | None = None,
    note: str | None = None,
) -> ClaimRecord:
    require_staff(actor)
    claim = await load_claim(uow, actor, claim_id, version)
    if liability is not None:
        claim.liability = liability.value
    await transition(uow, env, claim, "approve", actor, note=_note(note))
    claim.review_due_at = None
    claim.info_due_at = None
    await after_approval(uow, env, claim)
    return claim


async def reject(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None, reason: str
) -> ClaimRecord:
    require_staff(actor)
    if not reason.strip():
        raise InvalidClaim("reason_required")
    claim = await load_claim(uow, actor, claim_id, version)
    await transition(
        uow, env, claim, "reject", actor, note=_note(reason), params={"reason": reason}
    )
    claim.review_due_at = None
    claim.info_due_at = None
    return claim


async def request_info(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None, question: str
) -> ClaimRecord:
    require_staff(actor)
    if not question.strip():
        raise InvalidClaim("question_required")
    claim = await load_claim(uow, actor, claim_id, version)
    due = env.clock.now() + env.policy.info_deadline
    await transition(
        uow,
        env,
        claim,
        "request_info",
        actor,
        note=_note(question),
        params={"question": question, "due": due.isoformat()},
    )
    claim.info_due_at = due
    return claim


async def provide_info(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    claim_id: int,
    version: int | None,
    text: str,
    evidence: tuple[str, ...] = (),
) -> ClaimRecord:
    require_role(actor, Role.BUYER)
    if not text.strip() and not evidence:
        raise InvalidClaim("answer_required")
    claim = await load_claim(uow, actor, claim_id, version)
    if evidence:
        if len(evidence) > MAX_EVIDENCE_ITEMS:
            raise InvalidClaim("too_much_evidence", limit=MAX_EVIDENCE_ITEMS)
        await uow.claims.add_evidence(claim.id, evidence, env.clock.now())
    await transition(uow, env, claim, "provide_info", actor, note=_note(text))
    claim.info_due_at = None
    claim.review_due_at = env.clock.now() + env.policy.review_sla
    return claim


async def add_to_answer(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, evidence: tuple[str, ...]
) -> ClaimRecord:
    """More pictures of the album the buyer's answer came in: Telegram delivers an album as
    one update per picture, so the answer (:func:`provide_info`) holds the first and the rest
    join it. Only onto the buyer's own claim, and only while the answer is its last step."""
    require_role(actor, Role.BUYER)
    claim = await load_claim(uow, actor, claim_id)
    [*_, last] = await uow.claims.timeline(claim.id)
    if last.trigger != "provide_info":
        raise AlreadyHandled(claim.id, last.version, claim.version)
    await uow.claims.add_evidence(claim.id, evidence, env.clock.now())
    return claim


async def info_overdue(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Sweep: the buyer did not answer in time; the case goes back to a person."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    due = claim.info_due_at is not None and claim.info_due_at <= now
    if not (due and can_fire(claim, "info_overdue", SYSTEM.role)):
        return False
    await transition(uow, env, claim, "info_overdue", SYSTEM, rule="info_deadline")
    claim.info_due_at = None
    claim.review_due_at = now + env.policy.review_sla
    return True


async def withdraw(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None = None
) -> ClaimRecord:
    require_role(actor, Role.BUYER)
    claim = await load_claim(uow, actor, claim_id, version)
    await transition(uow, env, claim, "withdraw", actor)
    return claim


async def grant_goodwill(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    claim_id: int,
    version: int | None,
    amount: int,
    liability: Liability = Liability.PLATFORM,
) -> ClaimRecord:
    """A partial refund without a return, at staff's discretion."""
    require_staff(actor)
    claim = await load_claim(uow, actor, claim_id, version)
    if amount <= 0 or amount > claim.claimed_amount:
        raise InvalidAmount(str(amount))
    claim.liability = liability.value
    await transition(
        uow, env, claim, "grant_goodwill", actor, params={"amount": amount, "refund": amount}
    )
    claim.review_due_at = None
    claim.info_due_at = None
    await request_refunds(uow, env, claim, amount)
    return claim


async def after_approval(uow: UnitOfWork, env: Env, claim: ClaimRecord) -> None:
    """Execution starts: a refund, a return waybill, or a replacement shipment."""
    ctype = ClaimType(claim.claim_type)
    if ctype is ClaimType.REFUND_ONLY:
        await transition(
            uow,
            env,
            claim,
            "start_refund",
            SYSTEM,
            params={"amount": claim.claimed_amount, "refund": claim.claimed_amount},
        )
        await request_refunds(uow, env, claim, claim.claimed_amount)
        return
    kind = "return" if ctype is ClaimType.RETURN_REFUND else "replacement"
    await uow.outbox.add_command(
        ProviderCommand(
            idempotency_key=f"waybill:{claim.id}:{kind}",
            kind="carrier.waybill",
            params={"claim_id": claim.id, "shipment_kind": kind},
        ),
        env.clock.now(),
    )


def _note(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_NOTE_CHARS:
        raise InvalidClaim("note_too_long", limit=MAX_NOTE_CHARS, length=len(text))
    return text
