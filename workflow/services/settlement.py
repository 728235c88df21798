"""Settlement: post what the outcome and liability imply, then close the case."""

from __future__ import annotations

from workflow.claims import SYSTEM, ClaimRecord, ClaimType, Inspection, Liability, ListingStatus
from workflow.ledger import Outcome, SettledLine, settlement_postings
from workflow.lifecycle import can_fire
from workflow.ports import UnitOfWork
from workflow.services.common import Env, load_claim, transition


async def outcome_of(uow: UnitOfWork, env: Env, claim: ClaimRecord) -> Outcome:
    lines = []
    shipped: list[bool] = []
    for line in await uow.claims.lines(claim.id):
        order_line = await uow.orders.line(line.order_line_id)
        assert order_line is not None
        # Locked: what other claims on the line undid is read below, and a claim on the same
        # line settling in another process at once must wait for it, not read past it.
        order = await uow.orders.get(order_line.order_id, lock=True)
        assert order is not None
        shipped.append(order.shipped_at is not None)
        item = await uow.orders.item(order_line.item_id)
        assert item is not None
        reversed_before, commission_before = await uow.money.undone_on_line(
            order_line.id, except_claim=claim.id
        )
        lines.append(
            SettledLine(
                claim_line_id=line.id,
                order_line_id=order_line.id,
                consignor_id=item.consignor_id,
                quantity=line.quantity,
                ordered_quantity=order_line.quantity,
                unit_price=order_line.unit_price,
                line_commission=order_line.commission,
                inspection=Inspection(line.inspection) if line.inspection else None,
                sale_available_at=await uow.money.sale_available_at(order_line.id),
                units_undone_before=(
                    -reversed_before // order_line.unit_price if order_line.unit_price else 0
                ),
                commission_returned_before=commission_before,
            )
        )
    timeline = await uow.claims.timeline(claim.id)
    goodwill = any(event.trigger == "grant_goodwill" for event in timeline)
    return Outcome(
        claim_id=claim.id,
        claim_type=ClaimType(claim.claim_type),
        currency=claim.currency,
        liability=Liability(claim.liability or Liability.PLATFORM.value),
        lines=tuple(lines),
        goodwill_amount=claim.refund_amount if goodwill else None,
        compensation_amount=claim.compensation_amount,
        carrier=env.carrier_name,
        never_shipped=(
            bool(shipped) and not any(shipped) and claim.claim_type == ClaimType.REFUND_ONLY
        ),
    )


async def _relist(uow: UnitOfWork, claim_id: int) -> None:
    """Goods of an order never shipped are still on the shelf: they are for sale again."""
    for line in await uow.claims.lines(claim_id):
        order_line = await uow.orders.line(line.order_line_id)
        assert order_line is not None
        item = await uow.orders.item(order_line.item_id, lock=True)
        assert item is not None
        item.quantity_on_hand += line.quantity
        item.status = ListingStatus.RELISTED.value


async def settle(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Post the claim's ledger entries and carrier claim, then settle and close it.

    Idempotent: every posting has its own key, and a claim no longer settleable is skipped.
    """
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    if not can_fire(claim, "settle", SYSTEM.role):
        return False
    if claim.settle_due_at is not None and claim.settle_due_at > now:
        return False
    outcome = await outcome_of(uow, env, claim)
    postings, carrier_claims = settlement_postings(outcome, available_at=now)
    if outcome.never_shipped and outcome.sale_undone:
        await _relist(uow, claim.id)
    for posting in postings:
        await uow.money.post(posting, now)
    for carrier_claim in carrier_claims:
        await uow.money.add_carrier_claim(carrier_claim, now)
    consignor_total = sum(p.amount for p in postings)
    await transition(
        uow,
        env,
        claim,
        "settle",
        SYSTEM,
        params={"consignor_total": consignor_total, "currency": claim.currency},
    )
    claim.settle_due_at = None
    await transition(uow, env, claim, "close", SYSTEM)
    return True
