"""Read models: what a party may see of a claim, gathered in one place with the same checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflow.claims import Actor, AuditEvent, ClaimRecord, LedgerPosting, OrderRecord, Role
from workflow.errors import NotFound
from workflow.money import Money
from workflow.ports import ClaimableLine, UnitOfWork
from workflow.rules import ReviewPolicy, claim_window_open
from workflow.services.common import ensure_party

# The currency shown for an account with no entries yet.
DEFAULT_CURRENCY = "CNY"


@dataclass(frozen=True, slots=True)
class LineView:
    claim_line_id: int
    order_ref: str
    sku: str
    title: str
    quantity: int
    amount: int
    inspection: str | None


@dataclass(frozen=True, slots=True)
class ShipmentView:
    kind: str
    carrier: str
    tracking_number: str
    qr_payload: str
    status: str


@dataclass(frozen=True, slots=True)
class ClaimView:
    claim: ClaimRecord
    lines: tuple[LineView, ...]
    timeline: tuple[AuditEvent, ...]
    shipments: tuple[ShipmentView, ...]
    consignor_ids: tuple[int, ...]
    rating: tuple[int, str] | None = None  # the buyer's (score, comment) once the case closed
    # The claim also covers items of consignors not in ``consignor_ids`` (a consignor's view
    # of a claim filed before claims were kept to one consignor): they cannot answer it alone.
    shared: bool = False

    @property
    def amount(self) -> int:
        """What the lines shown are worth (the claimed amount, for a viewer who sees them all)."""
        return sum(line.amount for line in self.lines)

    @property
    def next_deadline(self) -> tuple[str, datetime] | None:
        """The deadline that matters now, by name (info_due_at, return_by, respond_by…)."""
        c = self.claim
        for name in ("info_due_at", "return_by", "respond_by", "review_due_at"):
            value = getattr(c, name)
            if value is not None:
                return name, value
        return None


async def claim_view(uow: UnitOfWork, actor: Actor, claim_id: int) -> ClaimView:
    """The claim as ``actor`` may see it.

    A consignor sees only the lines of their own items, and only themselves among the
    claim's consignors. Filing keeps every claim to one consignor's items, so this changes
    nothing for a claim filed today; it is the second lock on the same door.
    """
    claim = await uow.claims.get(claim_id)
    if claim is None:
        raise NotFound("claim", claim_id)
    await ensure_party(uow, actor, claim)
    own_only = actor.party_id if actor.role is Role.CONSIGNOR else None
    lines, shared = [], False
    for line in await uow.claims.lines(claim.id):
        order_line = await uow.orders.line(line.order_line_id)
        if order_line is None:
            continue
        order = await uow.orders.get(order_line.order_id)
        item = await uow.orders.item(order_line.item_id)
        if own_only is not None and (item is None or item.consignor_id != own_only):
            shared = True
            continue
        lines.append(
            LineView(
                claim_line_id=line.id,
                order_ref=order.external_ref if order else "?",
                sku=item.sku if item else "?",
                title=item.title if item else "?",
                quantity=line.quantity,
                amount=line.amount,
                inspection=line.inspection,
            )
        )
    shipments = tuple(
        ShipmentView(s.kind, getattr(s, "carrier", ""), s.tracking_number, s.qr_payload, s.status)
        for s in await uow.shipments.for_claim(claim.id)
    )
    return ClaimView(
        claim=claim,
        lines=tuple(lines),
        timeline=tuple(await uow.claims.timeline(claim.id)),
        shipments=shipments,
        consignor_ids=(
            (own_only,) if own_only is not None else tuple(await uow.claims.consignor_ids(claim.id))
        ),
        rating=await uow.claims.rating(claim.id),
        shared=shared,
    )


@dataclass(frozen=True, slots=True)
class LineChoice:
    line_id: int
    title: str
    quantity: int
    claimable: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class OrderChoice:
    """One of a buyer's orders, as the claim dialog offers it."""

    order_id: int
    order_ref: str
    currency: str
    delivered_at: datetime | None
    lines: tuple[LineChoice, ...]

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None

    def ineligible_reason(self, now: datetime, policy: ReviewPolicy) -> str | None:
        """None if the buyer can file a claim on it; else why not (a locale key suffix)."""
        if not claim_window_open(self.delivered_at, now, policy):
            return "window_closed"
        if not any(line.claimable > 0 for line in self.lines):
            return "all_claimed"
        return None


async def buyer_orders(
    uow: UnitOfWork, buyer_id: int, offset: int, limit: int
) -> tuple[list[OrderChoice], int]:
    """A page of the buyer's orders with what is still claimable, and the total count."""
    orders = await uow.orders.for_buyer(buyer_id, offset, limit)
    lines = await uow.orders.claimable_lines([o.id for o in orders])
    return [_choice(o, lines) for o in orders], await uow.orders.count_for_buyer(buyer_id)


async def buyer_order(uow: UnitOfWork, buyer_id: int, order_id: int) -> OrderChoice:
    order = await uow.orders.get(order_id)
    if order is None or order.buyer_id != buyer_id:
        raise NotFound("order", order_id)
    return _choice(order, await uow.orders.claimable_lines([order.id]))


def _choice(order: OrderRecord, lines: list[ClaimableLine]) -> OrderChoice:
    return OrderChoice(
        order.id,
        order.external_ref,
        order.currency,
        order.delivered_at,
        tuple(
            LineChoice(x.line_id, x.title, x.quantity, x.quantity - x.claimed, x.unit_price)
            for x in lines
            if x.order_id == order.id
        ),
    )


@dataclass(frozen=True, slots=True)
class ConsignorBalance:
    """A consignor's account: settled and spendable (available), held back (pending), one
    sum per currency they were paid in (items sold in yuan and in yen make two, never one),
    and the latest ledger entries, newest first."""

    available: tuple[Money, ...]
    pending: tuple[Money, ...]
    entries: tuple[LedgerPosting, ...]


async def consignor_balance(
    uow: UnitOfWork, consignor_id: int, now: datetime, limit: int = 10
) -> ConsignorBalance:
    sums = await uow.money.balance(consignor_id, now) or {DEFAULT_CURRENCY: (0, 0)}
    entries = tuple(await uow.money.entries_for_consignor(consignor_id, limit))
    return ConsignorBalance(
        tuple(Money(available, currency) for currency, (available, _) in sums.items()),
        tuple(Money(pending, currency) for currency, (_, pending) in sums.items()),
        entries,
    )


@dataclass(frozen=True, slots=True)
class ItemStock:
    """One of a consignor's items: its listing status and quantities."""

    item_id: int
    sku: str
    title: str
    status: str
    on_hand: int
    sold: int
    damaged: int


async def consignor_items(
    uow: UnitOfWork, consignor_id: int, offset: int, limit: int
) -> tuple[list[ItemStock], int]:
    """A page of the consignor's items (by SKU) and how many they have in all."""
    items = list(await uow.orders.items_for_consignor(consignor_id, offset, limit))
    sold = await uow.orders.sold_quantities([item.id for item in items])
    page = [
        ItemStock(
            item.id,
            item.sku,
            item.title,
            item.status,
            item.quantity_on_hand,
            sold.get(item.id, 0),
            item.damaged_quantity,
        )
        for item in items
    ]
    return page, await uow.orders.count_items_for_consignor(consignor_id)
