"""Refunds: requested after commit by idempotency key, confirmed later by the gateway.

A refund row is written per order the claim touches (a claim may span several orders),
``pending`` until the gateway's callback says ``succeeded`` or ``failed``. The ceiling — never
more than paid minus what was refunded or is pending — is checked with the order row locked.
"""

from __future__ import annotations

from collections import defaultdict

from workflow.claims import SYSTEM, Actor, ClaimRecord, OutboxMessage, ProviderCommand, RefundStatus
from workflow.errors import RefundCeilingExceeded
from workflow.ledger import split
from workflow.lifecycle import can_fire
from workflow.ports import RefundResult, UnitOfWork
from workflow.services.common import Env, load_claim, require_staff, transition


async def _amounts_per_order(uow: UnitOfWork, claim: ClaimRecord, total: int) -> dict[int, int]:
    """The refund split across the claim's orders, in proportion to each order's claimed value."""
    per_order: dict[int, int] = defaultdict(int)
    for line in await uow.claims.lines(claim.id):
        order_line = await uow.orders.line(line.order_line_id)
        assert order_line is not None
        per_order[order_line.order_id] += line.amount
    orders = sorted(per_order)
    parts = split(total, [per_order[o] for o in orders])
    return {o: p for o, p in zip(orders, parts, strict=True) if p > 0}


async def request_refunds(
    uow: UnitOfWork, env: Env, claim: ClaimRecord, total: int, attempt: int = 1
) -> None:
    """Write pending refund rows and their payment commands (sent after commit)."""
    claim.refund_amount = total
    for order_id, amount in (await _amounts_per_order(uow, claim, total)).items():
        await _reserve(uow, env, claim, order_id, amount, attempt)
    if total == 0:
        # Nothing is owed to the buyer (their liability covers it all): no payment to wait for.
        await transition(
            uow,
            env,
            claim,
            "refund_succeeded",
            SYSTEM,
            rule="nothing_to_refund",
            note="nothing to refund",
            params={"refund": 0},
        )
        claim.settle_due_at = env.clock.now() + env.policy.settlement_hold


async def _reserve(
    uow: UnitOfWork, env: Env, claim: ClaimRecord, order_id: int, amount: int, attempt: int
) -> None:
    """One pending refund for one order, under the ceiling checked with the order locked."""
    order = await uow.orders.get(order_id, lock=True)
    assert order is not None
    pending = sum(
        r.amount
        for r in await uow.money.refunds_for_order(order_id)
        if r.status == RefundStatus.PENDING
    )
    available = order.paid_amount - order.refunded_amount - pending
    if amount > available:
        raise RefundCeilingExceeded(order_id, amount, available)
    now = env.clock.now()
    key = f"refund:{claim.id}:{order_id}:{attempt}"
    await uow.money.add_refund(claim.id, order_id, amount, claim.currency, key, attempt, now)
    params = {
        "claim_id": claim.id,
        "order_ref": order.external_ref,
        "amount": amount,
        "currency": claim.currency,
    }
    await uow.outbox.add_command(ProviderCommand(key, "payment.refund", params), now)


async def record_refund_result(uow: UnitOfWork, env: Env, result: RefundResult) -> bool:
    """Apply a gateway callback. Repeated callbacks for one key change nothing (returns False)."""
    refund = await uow.money.refund_by_key(result.idempotency_key, lock=True)
    if refund is None or refund.status != RefundStatus.PENDING:
        return False
    now = env.clock.now()
    refund.provider_ref = result.provider_ref
    if not result.succeeded:
        refund.status = RefundStatus.FAILED.value
        refund.failure = result.failure or "declined"
        await uow.outbox.add(
            OutboxMessage(
                dedupe_key=f"refund-failed:{refund.idempotency_key}",
                recipient_kind="staff",
                recipient_id=None,
                template="staff.refund_failed",
                params={"claim_id": refund.claim_id, "failure": refund.failure},
                claim_id=refund.claim_id,
            ),
            now,
        )
        return True
    order = await uow.orders.get(refund.order_id, lock=True)
    assert order is not None
    refund.status = RefundStatus.SUCCEEDED.value
    order.refunded_amount += refund.amount
    claim = await load_claim(uow, SYSTEM, refund.claim_id)
    refunds = await uow.money.refunds_for_claim(claim.id)
    latest: dict[int, str] = {}
    for r in sorted(refunds, key=lambda r: r.attempt):
        latest[r.order_id] = r.status
    if can_fire(claim, "refund_succeeded", SYSTEM.role) and all(
        s == RefundStatus.SUCCEEDED for s in latest.values()
    ):
        await transition(
            uow,
            env,
            claim,
            "refund_succeeded",
            SYSTEM,
            params={"amount": claim.refund_amount, "refund": claim.refund_amount},
        )
        claim.settle_due_at = now + env.policy.settlement_hold
    return True


async def failed_refunds(uow: UnitOfWork, claim_id: int) -> list[tuple[int, int, int]]:
    """(order id, attempt, amount) of every order of the claim whose latest refund failed."""
    latest: dict[int, tuple[int, str, int]] = {}
    for r in await uow.money.refunds_for_claim(claim_id):
        if r.order_id not in latest or r.attempt > latest[r.order_id][0]:
            latest[r.order_id] = (r.attempt, r.status, r.amount)
    return [
        (order_id, attempt, amount)
        for order_id, (attempt, status, amount) in sorted(latest.items())
        if status == RefundStatus.FAILED
    ]


async def retry_failed_refunds(uow: UnitOfWork, env: Env, actor: Actor, claim_id: int) -> int:
    """Send a new attempt for every order whose latest refund failed; returns how many."""
    if actor.role is not SYSTEM.role:
        require_staff(actor)
    claim = await load_claim(uow, actor, claim_id)
    failed = await failed_refunds(uow, claim.id)
    for order_id, attempt, amount in failed:
        await _reserve(uow, env, claim, order_id, amount, attempt + 1)
    return len(failed)
