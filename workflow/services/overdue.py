"""Overdue-shipment detection: the system itself notices an order not shipped in time.

The source article's fourth trigger. Per policy the system opens a refund-only claim on the
buyer's behalf (source ``system``; the auto-review's overdue-shipment rule then approves it)
— one claim per consignor whose items are in the order, as every claim concerns one
consignor's items — or offers the buyer to open one; consignors and staff are told either
way. Each order is acted on once (``overdue_flagged_at``), and that is a row of the order's
audit trail: the system flagged it, when, and whether a claim was opened or offered (a claim
opened also has its own audit rows).
"""

from __future__ import annotations

from workflow.claims import (
    SYSTEM,
    ClaimDraft,
    ClaimType,
    LineRequest,
    OrderEvent,
    OrderEventKind,
    OutboxMessage,
    OverdueOutcome,
    Reason,
    Source,
)
from workflow.errors import DomainError
from workflow.ports import UnitOfWork
from workflow.services.common import Env
from workflow.services.filing import file_claims


async def flag_overdue_order(uow: UnitOfWork, env: Env, order_id: int) -> bool:
    order = await uow.orders.get(order_id, lock=True)
    now = env.clock.now()
    if order is None or order.overdue_flagged_at is not None or order.shipped_at is not None:
        return False
    if order.ship_by > now:
        return False
    order.overdue_flagged_at = now
    requests = []
    consignors: set[int] = set()
    for line in await uow.orders.lines(order.id):
        claimable = line.quantity - await uow.claims.claimed_quantity(line.id)
        if claimable > 0:
            requests.append(LineRequest(line.id, claimable))
        item = await uow.orders.item(line.item_id)
        if item is not None:
            consignors.add(item.consignor_id)
    params = {"order_ref": order.external_ref, "ship_by": order.ship_by.isoformat()}
    claim_ids: list[int | None] = []
    note: str | None = None
    if requests and env.policy.overdue_opens_claim:
        draft = ClaimDraft(
            ClaimType.REFUND_ONLY, Reason.NOT_RECEIVED, tuple(requests), source=Source.SYSTEM
        )
        try:
            claims = await file_claims(uow, env, SYSTEM, draft, buyer_id=order.buyer_id)
        except DomainError as exc:
            claims, note = [], f"filing refused: {exc}"
        claim_ids = [claim.id for claim in claims]
    if claim_ids:
        note = "claims " + ", ".join(f"#{claim_id}" for claim_id in claim_ids)
    await uow.orders.add_event(
        OrderEvent(
            order.id,
            OrderEventKind.FLAGGED_OVERDUE,
            SYSTEM.label(),
            now,
            outcome=_outcome(bool(requests), bool(claim_ids)),
            note=note,
        )
    )
    # Staff hear of it once per claim (in the claim's own thread), or once for the order.
    messages = [
        OutboxMessage(
            f"overdue:{order.id}:staff" + (f":{claim_id}" if claim_id else ""),
            "staff",
            None,
            "staff.order_overdue",
            params,
            claim_id,
        )
        for claim_id in claim_ids or [None]
    ]
    if not claim_ids:
        # Offered a claim only when there is something left to claim: an order already under
        # claims in full is news, but "send /new" would lead the buyer nowhere.
        buyer, consignor = (
            ("order.overdue_offer", "order.overdue")
            if requests
            else ("order.overdue_claimed", "order.overdue_claimed_consignor")
        )
        messages.append(
            OutboxMessage(f"overdue:{order.id}:buyer", "buyer", order.buyer_id, buyer, params)
        )
        messages += [
            OutboxMessage(f"overdue:{order.id}:consignor:{c}", "consignor", c, consignor, params)
            for c in sorted(consignors)
        ]
    for message in messages:
        await uow.outbox.add(message, now)
    return True


def _outcome(claimable: bool, opened: bool) -> OverdueOutcome:
    if opened:
        return OverdueOutcome.CLAIM_OPENED
    return OverdueOutcome.CLAIM_OFFERED if claimable else OverdueOutcome.ALREADY_CLAIMED
