"""Test data through the real import path: orders go in as the platform would send them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from storage import tables as t
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from workflow.orders import LineImport, OrderImport


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
    paid = now - delivered_ago - timedelta(days=3)
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
