"""Bulk import of platform orders: buyers, consignors, items, orders, lines and sale credits.

Orders are written in chunks, one transaction per chunk, with set-based Core statements
(one SELECT per kind of row to find what exists, one multi-row INSERT per kind to add the
rest), so 100,000 rows take seconds, not an ORM round trip each. An order whose reference
exists is left alone: importing the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import tables as t
from workflow.claims import LedgerKind, ListingStatus
from workflow.orders import OrderImport, RowError

# Sale credits become available once the no-reason return window has passed after delivery.
CREDIT_HOLD = timedelta(days=7)
UNDELIVERED_HOLD = timedelta(days=30)


@dataclass
class ImportReport:
    imported: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def _chunks(
    items: Iterable[OrderImport | RowError], size: int
) -> Iterator[list[OrderImport | RowError]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def import_orders(
    engine: AsyncEngine,
    parsed: Iterable[OrderImport | RowError],
    now: datetime,
    chunk_size: int = 1000,
    progress: Any = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import parsed orders; ``progress(n)`` is called with the number of orders handled.

    ``report``, if given, is filled in as each chunk commits: when reading ``parsed`` fails
    partway, it still says what was imported before.
    """
    report = ImportReport() if report is None else report
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for chunk in _chunks(parsed, chunk_size):
        orders = [o for o in chunk if isinstance(o, OrderImport)]
        report.errors.extend(e for e in chunk if isinstance(e, RowError))
        if orders:
            async with sessions() as session, session.begin():
                imported, errors = await _import_chunk(session, orders, now)
            report.imported += imported
            report.unchanged += len(orders) - imported - len(errors)
            report.errors.extend(errors)
        if progress is not None:
            progress(len(chunk))
    report.errors.sort(key=lambda e: e.line_no)
    return report


async def _ids(
    session: AsyncSession, column: Any, key: Any, values: Sequence[str]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(values), 500):
        part = values[start : start + 500]
        rows = await session.execute(select(key, column).where(key.in_(part)))
        found.update(dict(rows.tuples().all()))
    return found


async def _insert_returning(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], key: Any
) -> dict[Any, int]:
    if not rows:
        return {}
    result = await session.execute(insert(table).returning(table.c[key.key], table.c.id), rows)
    return dict(result.tuples().all())


async def _import_chunk(
    session: AsyncSession, orders: list[OrderImport], now: datetime
) -> tuple[int, list[RowError]]:
    existing = await _ids(session, t.Order.id, t.Order.external_ref, [o.order_ref for o in orders])
    fresh = [o for o in orders if o.order_ref not in existing]
    if not fresh:
        return 0, []

    buyers = await _ids(
        session, t.Buyer.id, t.Buyer.external_ref, sorted({o.buyer_ref for o in fresh})
    )
    new_buyers = {o.buyer_ref: o.buyer_name for o in fresh if o.buyer_ref not in buyers}
    buyers |= await _insert_returning(
        session,
        t.table_of(t.Buyer),
        [{"external_ref": r, "name": n} for r, n in new_buyers.items()],
        t.Buyer.external_ref,
    )

    lines = [line for o in fresh for line in o.lines]
    consignors = await _ids(
        session,
        t.Consignor.id,
        t.Consignor.external_ref,
        sorted({ln.consignor_ref for ln in lines}),
    )
    new_consignors = {
        ln.consignor_ref: ln.consignor_name for ln in lines if ln.consignor_ref not in consignors
    }
    consignors |= await _insert_returning(
        session,
        t.table_of(t.Consignor),
        [{"external_ref": r, "name": n} for r, n in new_consignors.items()],
        t.Consignor.external_ref,
    )

    item_rows = await session.execute(
        select(t.Item.sku, t.Item.id, t.Item.consignor_id).where(
            t.Item.sku.in_(sorted({ln.sku for ln in lines}))
        )
    )
    items: dict[str, tuple[int, int]] = {sku: (i, c) for sku, i, c in item_rows.tuples()}

    errors: list[RowError] = []
    accepted: list[OrderImport] = []
    new_items: dict[str, dict[str, Any]] = {}
    for order in fresh:
        clash = next(
            (
                ln.sku
                for ln in order.lines
                if (ln.sku in items and items[ln.sku][1] != consignors[ln.consignor_ref])
                or (
                    ln.sku in new_items
                    and new_items[ln.sku]["consignor_id"] != consignors[ln.consignor_ref]
                )
            ),
            None,
        )
        if clash is not None:
            errors.append(
                RowError(
                    order.first_line_no,
                    order.order_ref,
                    f"sku {clash} belongs to another consignor",
                )
            )
            continue
        accepted.append(order)
        for ln in order.lines:
            if ln.sku not in items and ln.sku not in new_items:
                new_items[ln.sku] = {
                    "consignor_id": consignors[ln.consignor_ref],
                    "sku": ln.sku,
                    "title": ln.title,
                    "category": ln.category,
                    "status": ListingStatus.SOLD.value,
                    "quantity_on_hand": 0,
                    "damaged_quantity": 0,
                }
    created = await _insert_returning(
        session, t.table_of(t.Item), list(new_items.values()), t.Item.sku
    )
    items |= {sku: (i, new_items[sku]["consignor_id"]) for sku, i in created.items()}

    order_ids = await _insert_returning(
        session,
        t.table_of(t.Order),
        [
            {
                "external_ref": o.order_ref,
                "buyer_id": buyers[o.buyer_ref],
                "currency": o.currency,
                "paid_amount": o.paid_amount,
                "refunded_amount": 0,
                "shipping_state": o.shipping_state,
                "paid_at": o.paid_at,
                "ship_by": o.ship_by,
                "shipped_at": o.shipped_at,
                "delivered_at": o.delivered_at,
            }
            for o in accepted
        ],
        t.Order.external_ref,
    )
    line_rows = [
        {
            "order_id": order_ids[o.order_ref],
            "item_id": items[ln.sku][0],
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "commission": ln.commission,
        }
        for o in accepted
        for ln in o.lines
    ]
    result = await session.execute(
        insert(t.table_of(t.OrderLine)).returning(
            t.OrderLine.id, t.OrderLine.order_id, t.OrderLine.item_id
        ),
        line_rows,
    )
    line_ids = {(order_id, item_id): line_id for line_id, order_id, item_id in result.tuples()}

    entries: list[dict[str, Any]] = []
    for o in accepted:
        available = (
            (o.delivered_at + CREDIT_HOLD) if o.delivered_at else (o.paid_at + UNDELIVERED_HOLD)
        )
        for ln in o.lines:
            line_id = line_ids[(order_ids[o.order_ref], items[ln.sku][0])]
            for kind, amount in (
                (LedgerKind.SALE_CREDIT, ln.unit_price * ln.quantity),
                (LedgerKind.COMMISSION, -ln.commission),
            ):
                entries.append(
                    {
                        "consignor_id": items[ln.sku][1],
                        "kind": kind.value,
                        "amount": amount,
                        "currency": o.currency,
                        "idempotency_key": f"sale:{line_id}:{kind.value}",
                        "claim_id": None,
                        "order_line_id": line_id,
                        "memo": f"order {o.order_ref}",
                        "available_at": available,
                        "created_at": now,
                    }
                )
    if entries:
        await session.execute(insert(t.table_of(t.LedgerEntry)), entries)
    return len(accepted), errors
