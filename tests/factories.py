"""Test data through the real import path: orders go in as the platform would send them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from storage import tables as t
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from workflow.claims import Actor, ClaimDraft, ClaimRecord, ClaimType, LineRequest, Reason, Role
from workflow.orders import LineImport, OrderImport
from workflow.services import filing
from workflow.services.common import Env


@dataclass(frozen=True)
class Placed:
    """Ids of what one imported order created, for tests to refer to."""

    order_id: int
    buyer_id: int
    line_ids: tuple[int, ...]
    item_ids: tuple[int, ...]
    consignor_ids: tuple[int, ...]


def order(
    ref: str,
    now: datetime,
    *,
    buyer: str = "B1",
    lines: tuple[tuple[str, str, int, int, int], ...] = (("SKU-1", "C1", 1, 10_000, 1_000),),
    delivered: bool = True,
    delivered_ago: timedelta = timedelta(days=2),
    currency: str = "CNY",
) -> OrderImport:
    """``lines``: (sku, consignor, quantity, unit price, commission) in minor units."""
    # Undelivered orders are recent (not yet past their shipping deadline) unless a test
    # moves the clock; delivered ones were paid a few days before delivery.
    paid = now - delivered_ago - timedelta(days=3) if delivered else now - timedelta(days=1)
    return OrderImport(
        order_ref=ref,
        buyer_ref=buyer,
        buyer_name=f"Buyer {buyer}",
        currency=currency,
        paid_at=paid,
        ship_by=paid + timedelta(days=2),
        shipped_at=paid + timedelta(days=1) if delivered else None,
        delivered_at=now - delivered_ago if delivered else None,
        lines=tuple(
            LineImport(sku, f"Item {sku}", "apparel", c, f"Consignor {c}", q, p, m)
            for sku, c, q, p, m in lines
        ),
    )


async def place(uows: UnitOfWorkFactory, now: datetime, *orders: OrderImport) -> list[Placed]:
    report = await import_orders(uows.engine, orders, now)
    assert not report.errors, report.errors
    placed = []
    async with uows() as uow:
        s = uow.session
        for o in orders:
            row = (
                await s.execute(select(t.Order).where(t.Order.external_ref == o.order_ref))
            ).scalar_one()
            lines = (
                await s.scalars(
                    select(t.OrderLine)
                    .where(t.OrderLine.order_id == row.id)
                    .order_by(t.OrderLine.id)
                )
            ).all()
            items = [await s.get(t.Item, ln.item_id) for ln in lines]
            placed.append(
                Placed(
                    order_id=row.id,
                    buyer_id=row.buyer_id,
                    line_ids=tuple(ln.id for ln in lines),
                    item_ids=tuple(ln.item_id for ln in lines),
                    consignor_ids=tuple(i.consignor_id for i in items if i is not None),
                )
            )
    return placed


async def bulk_open_claims(uows: UnitOfWorkFactory, now: datetime, chunk: int = 5000) -> int:
    """One submitted return claim per order line, written in bulk and due for review at ``now``.

    For load: 2,000 or 100,000 claims in seconds, each with its creation audit row, exactly
    as filing writes them (status, version 1, review_due_at).
    """
    from sqlalchemy import insert

    from workflow import lifecycle
    from workflow.services.filing import FILE_TRIGGER

    async with uows() as uow:
        rows = (
            await uow.session.execute(
                select(t.OrderLine.id, t.Order.buyer_id, t.OrderLine.unit_price)
                .join(t.Order, t.Order.id == t.OrderLine.order_id)
                .order_by(t.OrderLine.id)
            )
        ).all()
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        async with uows() as uow:
            result = await uow.session.execute(
                insert(t.Claim).returning(t.Claim.id),
                [
                    {
                        "version": 1,
                        "status": lifecycle.INITIAL,
                        "buyer_id": buyer,
                        "claim_type": "return_refund",
                        "reason": "no_reason_7_days",
                        "source": "buyer",
                        "description": "",
                        "currency": "CNY",
                        "claimed_amount": price,
                        "created_at": now,
                        "updated_at": now,
                        "review_due_at": now,
                    }
                    for _, buyer, price in part
                ],
            )
            ids = list(result.scalars())
            await uow.session.execute(
                insert(t.ClaimLine),
                [
                    {"claim_id": c, "order_line_id": line, "quantity": 1, "amount": price}
                    for c, (line, _, price) in zip(ids, part, strict=True)
                ],
            )
            await uow.session.execute(
                insert(t.ClaimEvent),
                [
                    {
                        "claim_id": c,
                        "version": 1,
                        "from_status": "",
                        "to_status": lifecycle.INITIAL,
                        "trigger": FILE_TRIGGER,
                        "actor": "buyer",
                        "at": now,
                    }
                    for c in ids
                ],
            )
            await uow.commit()
    return len(rows)


async def no_reason_return(uows: UnitOfWorkFactory, env: Env, placed: Placed) -> ClaimRecord:
    """The buyer of ``placed`` files a 7-day no-reason return of one unit of its first line,
    through the service (the way a test reaches a claim without the chat)."""
    async with uows() as uow:
        claim = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND,
                Reason.NO_REASON_7_DAYS,
                (LineRequest(placed.line_ids[0], 1),),
            ),
        )
        await uow.commit()
    return claim
