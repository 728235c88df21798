"""Repositories: typed queries over one session. They add and flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Executable,
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement, TextClause

from storage import tables as t
from workflow import lifecycle
from workflow.claims import (
    STAFF_ROLES,
    AuditEvent,
    CarrierClaimPosting,
    ClaimDraft,
    LedgerKind,
    LedgerPosting,
    OrderEvent,
    OrderEventKind,
    OutboxMessage,
    ProviderCommand,
    RefundStatus,
    ShipmentStatus,
    ShippingState,
)
from workflow.notifications import TOLD_WITH
from workflow.ports import Binding, ClaimableLine, StaffMember, TokenRecord, Waybill

# A party's message that found no chat of theirs at fan-out (``outbox.last_error``): it waits
# for the party's first chat, and goes to it when they bind, if it is not older than this.
NO_CHAT = "no chat to deliver to"
HELD_FOR_A_CHAT = timedelta(days=30)

DEADLINE_COLUMNS = (
    "review_due_at",
    "info_due_at",
    "return_by",
    "respond_by",
    "settle_due_at",
    "remind_due_at",
    "staff_due_at",
)


# ---- statements every update runs, built once ----------------------------------------------
# Building a statement and its cache key costs about as much as running it on SQLite, so the
# statements on the path of every Telegram update are built once, with bound parameters.


# Upserts as text: SQLAlchemy never caches its ON CONFLICT constructs (the dialects' inserts
# opt out of the statement cache), so they were compiled again on every update. The syntax is
# the same on SQLite (3.35+) and PostgreSQL.
def _upsert(sql: str, *typed: BindParameter[Any]) -> TextClause:
    """An upsert as text; ``:now`` is a UTC timestamp, ``typed`` other typed parameters."""
    return text(sql).bindparams(bindparam("now", type_=t.UTCDateTime()), *typed)


_SEEN_UPDATE = _upsert(
    "INSERT INTO processed_updates (channel, update_id, processed_at)"
    " VALUES (:channel, :update_id, :now) ON CONFLICT DO NOTHING"
)
_TOUCH_USER = _upsert(
    "INSERT INTO chat_users (channel, external_id, first_name, language, unreachable, updated_at)"
    " VALUES (:channel, :external_id, :first_name, :language, false, :now)"
    " ON CONFLICT (channel, external_id) DO UPDATE SET first_name = excluded.first_name,"
    " unreachable = false, updated_at = excluded.updated_at RETURNING language"
)
_ADD_OUTBOX = _upsert(
    "INSERT INTO outbox (channel, dedupe_key, recipient_kind, recipient_id, template, payload,"
    " claim_id, created_at, available_at, attempts) VALUES (:channel, :dedupe_key,"
    " :recipient_kind, :recipient_id, :template, :payload, :claim_id, :now, :now, 0)"
    " ON CONFLICT DO NOTHING",
    bindparam("payload", type_=t.table_of(t.Outbox).c.payload.type),
)
_DIALOGS = t.table_of(t.Conversation)
_THIS_DIALOG = (
    _DIALOGS.c.channel == bindparam("b_channel"),
    _DIALOGS.c.external_id == bindparam("b_external_id"),
)
_CONVERSATION = select(_DIALOGS.c.flow, _DIALOGS.c.step, _DIALOGS.c.data).where(*_THIS_DIALOG)
_NEW_CONVERSATION = insert(_DIALOGS).values(
    channel=bindparam("b_channel"),
    external_id=bindparam("b_external_id"),
    flow=bindparam("b_flow"),
    step=bindparam("b_step"),
    data=bindparam("b_data"),
    updated_at=bindparam("now"),
)
_SAVE_CONVERSATION = (
    update(_DIALOGS)
    .where(*_THIS_DIALOG)
    .values(
        flow=bindparam("b_flow"),
        step=bindparam("b_step"),
        data=bindparam("b_data"),
        updated_at=bindparam("now"),
    )
)
_END_CONVERSATION = delete(_DIALOGS).where(*_THIS_DIALOG)
_BINDINGS = (
    select(t.Identity.party_kind, t.Identity.party_id)
    .where(
        t.Identity.channel == bindparam("channel"),
        t.Identity.external_id == bindparam("external_id"),
    )
    .order_by(t.Identity.id)
)
_ORDER = select(t.Order).where(t.Order.id == bindparam("order_id"))
_CLAIMED = (
    select(func.coalesce(func.sum(t.ClaimLine.quantity), 0))
    .join(t.Claim, t.Claim.id == t.ClaimLine.claim_id)
    .where(t.ClaimLine.order_line_id == t.OrderLine.id)
    .where(t.Claim.status.not_in(sorted(lifecycle.DROPPED_STATES)))
    .scalar_subquery()
)
_CLAIMABLE_LINES = (
    select(
        t.OrderLine.id,
        t.OrderLine.order_id,
        func.coalesce(t.Item.title, "?"),
        t.OrderLine.quantity,
        _CLAIMED,
        t.OrderLine.unit_price,
    )
    .outerjoin(t.Item, t.Item.id == t.OrderLine.item_id)
    .where(t.OrderLine.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(t.OrderLine.order_id, t.OrderLine.id)
)


@dataclass(frozen=True, slots=True)
class DialogState:
    """A user's dialog in progress, as stored: its flow, the step it waits at, its draft."""

    flow: str
    step: str
    data: dict[str, Any]


def _rowcount(result: object) -> int:
    """Rows an UPDATE or DELETE touched (a conditional update won when it is 1)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _lease_free(now: datetime) -> ColumnElement[bool]:
    """A topic's ``sync_after`` lease is free: never taken, or run out (or a wait over)."""
    return or_(t.ClaimTopic.sync_after.is_(None), t.ClaimTopic.sync_after <= now)


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def _core(self, stmt: Executable, params: dict[str, Any]) -> CursorResult[Any]:
        """A Core statement on the unit of work's connection, past the ORM session's
        execution path (half the cost per statement). No autoflush: only for tables the
        session holds no pending changes for (the chat tables, identities)."""
        connection = await self.s.connection()
        return await connection.execute(stmt, params)

    @property
    def is_postgres(self) -> bool:
        return self.s.bind.dialect.name == "postgresql"

    def _locked(self, stmt: Select[Any], lock: bool, skip_locked: bool = False) -> Select[Any]:
        # SQLite has no row locks; its writers are serialised by BEGIN IMMEDIATE instead.
        if not lock:
            return stmt
        # A locking read must see the row as committed now, not a copy already in the session.
        stmt = stmt.execution_options(populate_existing=True)
        return stmt.with_for_update(skip_locked=skip_locked) if self.is_postgres else stmt


class PartyRepo(_Repo):
    async def buyer(self, buyer_id: int) -> t.Buyer | None:
        return await self.s.get(t.Buyer, buyer_id)

    async def consignor(self, consignor_id: int) -> t.Consignor | None:
        return await self.s.get(t.Consignor, consignor_id)


class OrderRepo(_Repo):
    async def get(self, order_id: int, *, lock: bool = False) -> t.Order | None:
        stmt = self._locked(_ORDER, lock)
        return (await self.s.execute(stmt, {"order_id": order_id})).scalar_one_or_none()

    async def line(self, line_id: int) -> t.OrderLine | None:
        return await self.s.get(t.OrderLine, line_id)

    async def lines(self, order_id: int) -> Sequence[t.OrderLine]:
        stmt = select(t.OrderLine).where(t.OrderLine.order_id == order_id).order_by(t.OrderLine.id)
        return (await self.s.scalars(stmt)).all()

    async def item(self, item_id: int, *, lock: bool = False) -> t.Item | None:
        stmt = self._locked(select(t.Item).where(t.Item.id == item_id), lock)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def for_buyer(self, buyer_id: int, offset: int, limit: int) -> Sequence[t.Order]:
        stmt = (
            select(t.Order)
            .where(t.Order.buyer_id == buyer_id)
            .order_by(t.Order.paid_at.desc(), t.Order.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.s.scalars(stmt)).all()

    async def count_for_buyer(self, buyer_id: int) -> int:
        stmt = select(func.count()).select_from(t.Order).where(t.Order.buyer_id == buyer_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def claimable_lines(self, order_ids: Sequence[int]) -> list[ClaimableLine]:
        if not order_ids:
            return []
        params = {"order_ids": sorted(set(order_ids))}
        return [ClaimableLine(*row) for row in await self.s.execute(_CLAIMABLE_LINES, params)]

    async def items_for_consignor(
        self, consignor_id: int, offset: int, limit: int
    ) -> Sequence[t.Item]:
        """A consignor's items, by SKU (a stable order for paging)."""
        stmt = (
            select(t.Item)
            .where(t.Item.consignor_id == consignor_id)
            .order_by(t.Item.sku, t.Item.id)
            .offset(offset)
            .limit(limit)
        )
        return (await self.s.scalars(stmt)).all()

    async def count_items_for_consignor(self, consignor_id: int) -> int:
        stmt = select(func.count()).select_from(t.Item).where(t.Item.consignor_id == consignor_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def sold_quantities(self, item_ids: Sequence[int]) -> dict[int, int]:
        """Units of each item sold (summed over order lines); items never sold are absent."""
        if not item_ids:
            return {}
        stmt = (
            select(t.OrderLine.item_id, func.sum(t.OrderLine.quantity))
            .where(t.OrderLine.item_id.in_(item_ids))
            .group_by(t.OrderLine.item_id)
        )
        return {int(row[0]): int(row[1]) for row in await self.s.execute(stmt)}

    async def items_of(self, consignor_id: int, limit: int) -> Sequence[t.Item]:
        stmt = (
            select(t.Item)
            .where(t.Item.consignor_id == consignor_id)
            .order_by(t.Item.sku)
            .limit(limit)
        )
        return (await self.s.scalars(stmt)).all()

    async def overdue(self, now: datetime, limit: int) -> list[int]:
        stmt = (
            select(t.Order.id)
            .where(
                t.Order.shipping_state == ShippingState.PENDING.value,
                t.Order.ship_by <= now,
                t.Order.overdue_flagged_at.is_(None),
            )
            .order_by(t.Order.ship_by)
            .limit(limit)
        )
        return list((await self.s.scalars(self._locked(stmt, lock=True, skip_locked=True))).all())

    async def add_event(self, event: OrderEvent) -> None:
        self.s.add(
            t.OrderEvent(
                order_id=event.order_id,
                kind=event.kind.value,
                actor=event.actor,
                outcome=event.outcome,
                note=event.note,
                at=event.at,
            )
        )

    async def events(self, order_id: int) -> Sequence[OrderEvent]:
        return await self._events(t.OrderEvent.order_id == order_id)

    async def events_by_ref(self, external_ref: str) -> Sequence[OrderEvent]:
        by_ref = select(t.Order.id).where(t.Order.external_ref == external_ref)
        return await self._events(t.OrderEvent.order_id.in_(by_ref.scalar_subquery()))

    async def _events(self, where: ColumnElement[bool]) -> Sequence[OrderEvent]:
        stmt = select(t.OrderEvent).where(where).order_by(t.OrderEvent.at, t.OrderEvent.id)
        return [
            OrderEvent(
                order_id=row.order_id,
                kind=OrderEventKind(row.kind),
                actor=row.actor,
                at=row.at,
                outcome=row.outcome,
                note=row.note,
            )
            for row in await self.s.scalars(stmt)
        ]


class ClaimRepo(_Repo):
    async def get(self, claim_id: int, *, lock: bool = False) -> t.Claim | None:
        stmt = self._locked(select(t.Claim).where(t.Claim.id == claim_id), lock)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def add(
        self, buyer_id: int, draft: ClaimDraft, currency: str, amount: int, now: datetime
    ) -> t.Claim:
        claim = t.Claim(
            version=1,
            status=lifecycle.INITIAL,
            buyer_id=buyer_id,
            claim_type=draft.claim_type.value,
            reason=draft.reason.value,
            source=draft.source.value,
            liability=None,
            description=draft.description,
            currency=currency,
            claimed_amount=amount,
            created_at=now,
            updated_at=now,
            review_due_at=now,
        )
        self.s.add(claim)
        await self.s.flush()
        return claim

    async def add_line(
        self, claim_id: int, order_line_id: int, quantity: int, amount: int
    ) -> t.ClaimLine:
        line = t.ClaimLine(
            claim_id=claim_id, order_line_id=order_line_id, quantity=quantity, amount=amount
        )
        self.s.add(line)
        await self.s.flush()
        return line

    async def lines(self, claim_id: int) -> Sequence[t.ClaimLine]:
        stmt = select(t.ClaimLine).where(t.ClaimLine.claim_id == claim_id).order_by(t.ClaimLine.id)
        return (await self.s.scalars(stmt)).all()

    async def add_evidence(self, claim_id: int, refs: Sequence[str], now: datetime) -> None:
        self.s.add_all(t.Evidence(claim_id=claim_id, ref=ref, created_at=now) for ref in refs)
        await self.s.flush()

    async def evidence_count(self, claim_id: int) -> int:
        stmt = select(func.count()).select_from(t.Evidence).where(t.Evidence.claim_id == claim_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def claimed_quantity(self, order_line_id: int) -> int:
        stmt = (
            select(func.coalesce(func.sum(t.ClaimLine.quantity), 0))
            .join(t.Claim, t.Claim.id == t.ClaimLine.claim_id)
            .where(t.ClaimLine.order_line_id == order_line_id)
            .where(t.Claim.status.not_in(sorted(lifecycle.DROPPED_STATES)))
        )
        return int((await self.s.execute(stmt)).scalar_one())

    async def count_by_buyer_since(self, buyer_id: int, since: datetime) -> int:
        filing = func.coalesce(t.Claim.filing_id, t.Claim.id)
        stmt = select(func.count(filing.distinct())).where(
            t.Claim.buyer_id == buyer_id, t.Claim.created_at >= since
        )
        return int((await self.s.execute(stmt)).scalar_one())

    async def filing_total(self, filing_id: int) -> int:
        stmt = select(func.coalesce(func.sum(t.Claim.claimed_amount), 0)).where(
            t.Claim.filing_id == filing_id
        )
        return int((await self.s.execute(stmt)).scalar_one())

    async def due(
        self, deadline: str, now: datetime, states: Sequence[str], limit: int
    ) -> list[int]:
        if deadline not in DEADLINE_COLUMNS:
            raise ValueError(deadline)
        column = getattr(t.Claim, deadline)
        stmt = (
            select(t.Claim.id)
            .where(column <= now, t.Claim.status.in_(states))
            .order_by(column)
            .limit(limit)
        )
        stmt = self._locked(stmt, lock=True, skip_locked=True)
        return list((await self.s.scalars(stmt)).all())

    async def add_audit(self, event: AuditEvent) -> None:
        self.s.add(
            t.ClaimEvent(
                claim_id=event.claim_id,
                version=event.version,
                from_status=event.from_status,
                to_status=event.to_status,
                trigger=event.trigger,
                actor=event.actor,
                rule=event.rule,
                note=event.note,
                at=event.at,
            )
        )

    async def timeline(self, claim_id: int) -> Sequence[AuditEvent]:
        stmt = (
            select(t.ClaimEvent)
            .where(t.ClaimEvent.claim_id == claim_id)
            .order_by(t.ClaimEvent.version)
        )
        return [
            AuditEvent(
                claim_id=row.claim_id,
                version=row.version,
                from_status=row.from_status,
                to_status=row.to_status,
                trigger=row.trigger,
                actor=row.actor,
                at=row.at,
                rule=row.rule,
                note=row.note,
            )
            for row in await self.s.scalars(stmt)
        ]

    async def for_buyer(self, buyer_id: int, offset: int, limit: int) -> Sequence[t.Claim]:
        stmt = (
            select(t.Claim)
            .where(t.Claim.buyer_id == buyer_id)
            .order_by(t.Claim.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.s.scalars(stmt)).all()

    async def count_for_buyer(self, buyer_id: int) -> int:
        stmt = select(func.count()).select_from(t.Claim).where(t.Claim.buyer_id == buyer_id)
        return int((await self.s.execute(stmt)).scalar_one())

    async def in_states(self, states: Sequence[str], offset: int, limit: int) -> Sequence[t.Claim]:
        stmt = (
            select(t.Claim)
            .where(t.Claim.status.in_(states))
            .order_by(t.Claim.updated_at, t.Claim.id)
            .offset(offset)
            .limit(limit)
        )
        return (await self.s.scalars(stmt)).all()

    async def count_in_states(self, states: Sequence[str]) -> int:
        stmt = select(func.count()).select_from(t.Claim).where(t.Claim.status.in_(states))
        return int((await self.s.execute(stmt)).scalar_one())

    async def rating(self, claim_id: int) -> tuple[int, str] | None:
        """The buyer's rating of a closed claim (score, comment), if they gave one."""
        row = await self.s.get(t.ClaimRating, claim_id)
        return None if row is None else (row.score, row.comment)

    async def add_rating(self, claim_id: int, score: int, comment: str, now: datetime) -> None:
        self.s.add(t.ClaimRating(claim_id=claim_id, score=score, comment=comment, created_at=now))
        await self.s.flush()

    async def find(self, term: str) -> list[int]:
        """Claims on an order reference, of a buyer reference, or with a tracking number,
        newest first (the caller shows as many as fit and says how many more there are).
        The term as typed, or in capitals or small letters (references and tracking numbers
        are printed in capitals and typed in any case): each an index lookup, never a scan."""
        terms = sorted({term, term.upper(), term.lower()})
        by_order = (
            select(t.ClaimLine.claim_id)
            .join(t.OrderLine, t.OrderLine.id == t.ClaimLine.order_line_id)
            .join(t.Order, t.Order.id == t.OrderLine.order_id)
            .where(t.Order.external_ref.in_(terms))
        )
        by_buyer = (
            select(t.Claim.id)
            .join(t.Buyer, t.Buyer.id == t.Claim.buyer_id)
            .where(t.Buyer.external_ref.in_(terms))
        )
        by_tracking = select(t.Shipment.claim_id).where(
            t.Shipment.tracking_number.in_(terms), t.Shipment.claim_id.is_not(None)
        )
        ids: set[int] = set()
        for stmt in (by_order, by_buyer, by_tracking):
            ids |= {int(i) for i in (await self.s.scalars(stmt)).all() if i is not None}
        return sorted(ids, reverse=True)

    async def consignor_ids(self, claim_id: int) -> list[int]:
        stmt = (
            select(t.Item.consignor_id)
            .join(t.OrderLine, t.OrderLine.item_id == t.Item.id)
            .join(t.ClaimLine, t.ClaimLine.order_line_id == t.OrderLine.id)
            .where(t.ClaimLine.claim_id == claim_id)
            .distinct()
            .order_by(t.Item.consignor_id)
        )
        return list((await self.s.scalars(stmt)).all())


class MoneyRepo(_Repo):
    async def add_refund(
        self,
        claim_id: int,
        order_id: int,
        amount: int,
        currency: str,
        key: str,
        attempt: int,
        now: datetime,
    ) -> t.Refund:
        refund = t.Refund(
            claim_id=claim_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            status=RefundStatus.PENDING.value,
            idempotency_key=key,
            attempt=attempt,
            created_at=now,
            updated_at=now,
        )
        self.s.add(refund)
        await self.s.flush()
        return refund

    async def refund_by_key(self, key: str, *, lock: bool = False) -> t.Refund | None:
        stmt = self._locked(select(t.Refund).where(t.Refund.idempotency_key == key), lock)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def stale_pending_refunds(self, before: datetime, limit: int) -> Sequence[str]:
        """Keys of refunds still pending since before ``before``: their callback is overdue."""
        stmt = (
            select(t.Refund.idempotency_key)
            .where(t.Refund.status == "pending", t.Refund.updated_at <= before)
            .order_by(t.Refund.updated_at, t.Refund.id)
            .limit(limit)
        )
        return list((await self.s.scalars(stmt)).all())

    async def refunds_for_claim(self, claim_id: int) -> Sequence[t.Refund]:
        stmt = select(t.Refund).where(t.Refund.claim_id == claim_id).order_by(t.Refund.id)
        return (await self.s.scalars(stmt)).all()

    async def refunds_for_order(self, order_id: int) -> Sequence[t.Refund]:
        stmt = select(t.Refund).where(t.Refund.order_id == order_id).order_by(t.Refund.id)
        return (await self.s.scalars(stmt)).all()

    async def post(self, posting: LedgerPosting, now: datetime | None = None) -> bool:
        existing = await self.s.scalar(
            select(t.LedgerEntry.id).where(t.LedgerEntry.idempotency_key == posting.idempotency_key)
        )
        if existing is not None:
            return False
        self.s.add(
            t.LedgerEntry(
                consignor_id=posting.consignor_id,
                kind=posting.kind.value,
                amount=posting.amount,
                currency=posting.currency,
                idempotency_key=posting.idempotency_key,
                claim_id=posting.claim_id,
                order_line_id=posting.order_line_id,
                memo=posting.memo,
                available_at=posting.available_at,
                created_at=now or posting.available_at,
            )
        )
        await self.s.flush()
        return True

    async def entries_for_claim(self, claim_id: int) -> Sequence[LedgerPosting]:
        stmt = (
            select(t.LedgerEntry)
            .where(t.LedgerEntry.claim_id == claim_id)
            .order_by(t.LedgerEntry.id)
        )
        return [_posting(row) for row in await self.s.scalars(stmt)]

    async def sale_available_at(self, order_line_id: int) -> datetime | None:
        stmt = select(func.max(t.LedgerEntry.available_at)).where(
            t.LedgerEntry.order_line_id == order_line_id,
            t.LedgerEntry.kind == LedgerKind.SALE_CREDIT.value,
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def undone_on_line(self, order_line_id: int, except_claim: int) -> tuple[int, int]:
        def total(kind: LedgerKind) -> ColumnElement[int]:
            return func.coalesce(
                func.sum(t.LedgerEntry.amount).filter(t.LedgerEntry.kind == kind.value), 0
            )

        stmt = select(total(LedgerKind.RETURN_REVERSAL), total(LedgerKind.COMMISSION)).where(
            t.LedgerEntry.order_line_id == order_line_id,
            t.LedgerEntry.claim_id.is_not(None),
            t.LedgerEntry.claim_id != except_claim,
        )
        reversed_value, commission = (await self.s.execute(stmt)).one()
        return int(reversed_value), int(commission)

    async def entries_for_consignor(
        self, consignor_id: int, limit: int = 20
    ) -> Sequence[LedgerPosting]:
        stmt = (
            select(t.LedgerEntry)
            .where(t.LedgerEntry.consignor_id == consignor_id)
            .order_by(t.LedgerEntry.id.desc())
            .limit(limit)
        )
        return [_posting(row) for row in await self.s.scalars(stmt)]

    async def balance(self, consignor_id: int, now: datetime) -> dict[str, tuple[int, int]]:
        available = func.coalesce(
            func.sum(t.LedgerEntry.amount).filter(t.LedgerEntry.available_at <= now), 0
        )
        pending = func.coalesce(
            func.sum(t.LedgerEntry.amount).filter(t.LedgerEntry.available_at > now), 0
        )
        stmt = (
            select(t.LedgerEntry.currency, available, pending)
            .where(t.LedgerEntry.consignor_id == consignor_id)
            .group_by(t.LedgerEntry.currency)
            .order_by(t.LedgerEntry.currency)
        )
        return {str(c): (int(a), int(p)) for c, a, p in (await self.s.execute(stmt)).tuples()}

    async def add_carrier_claim(self, posting: CarrierClaimPosting, now: datetime) -> None:
        exists = await self.s.scalar(
            select(t.CarrierClaim.id).where(t.CarrierClaim.claim_id == posting.claim_id)
        )
        if exists is None:
            self.s.add(
                t.CarrierClaim(
                    claim_id=posting.claim_id,
                    carrier=posting.carrier,
                    amount=posting.amount,
                    currency=posting.currency,
                    created_at=now,
                )
            )
            await self.s.flush()


def _posting(row: t.LedgerEntry) -> LedgerPosting:
    return LedgerPosting(
        consignor_id=row.consignor_id,
        kind=LedgerKind(row.kind),
        amount=row.amount,
        currency=row.currency,
        idempotency_key=row.idempotency_key,
        available_at=row.available_at,
        claim_id=row.claim_id,
        order_line_id=row.order_line_id,
        memo=row.memo,
    )


class ShipmentRepo(_Repo):
    async def add(
        self, kind: str, claim_id: int | None, order_id: int | None, waybill: Waybill, now: datetime
    ) -> t.Shipment:
        shipment = t.Shipment(
            claim_id=claim_id,
            order_id=order_id,
            kind=kind,
            carrier=waybill.carrier,
            status="created",
            tracking_number=waybill.tracking_number,
            qr_payload=waybill.qr_payload,
            created_at=now,
            updated_at=now,
        )
        self.s.add(shipment)
        await self.s.flush()
        return shipment

    async def for_claim(self, claim_id: int) -> Sequence[t.Shipment]:
        stmt = select(t.Shipment).where(t.Shipment.claim_id == claim_id).order_by(t.Shipment.id)
        return (await self.s.scalars(stmt)).all()

    async def by_tracking(self, tracking_number: str) -> t.Shipment | None:
        stmt = select(t.Shipment).where(t.Shipment.tracking_number == tracking_number)
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def open_tracking_numbers(self) -> list[str]:
        stmt = (
            select(t.Shipment.tracking_number)
            .where(t.Shipment.status != ShipmentStatus.DELIVERED.value)
            .order_by(t.Shipment.id)
        )
        return list((await self.s.scalars(stmt)).all())


class OutboxRepo(_Repo):
    """Messages and provider commands, each written once under its key.

    A party's messages about one claim written in one transaction (a step and the steps it
    set off at once) are told as one: each after the first names the first's key under
    :data:`~workflow.notifications.TOLD_WITH`, and delivery joins them. Messages of another
    transaction never join: the first of each transaction is found by its own transaction.
    """

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._transaction: object | None = None
        # (recipient kind, recipient id, claim) → key of its first message in this transaction
        self._firsts: dict[tuple[str, int | None, int], str] = {}

    def _firsts_now(self) -> dict[tuple[str, int | None, int], str]:
        """The first messages of the transaction in progress (a new one starts afresh)."""
        transaction = self.s.sync_session.get_transaction()
        if transaction is not self._transaction:
            self._transaction, self._firsts = transaction, {}
        return self._firsts

    async def add(self, message: OutboxMessage, now: datetime) -> None:
        params, group, first = message.params, None, None
        if message.claim_id is not None:
            group = (message.recipient_kind, message.recipient_id, message.claim_id)
            first = self._firsts_now().get(group)
            if first is not None:
                params = {**params, TOLD_WITH: first}
        written = await self._add(
            "message",
            message.dedupe_key,
            message.template,
            params,
            now,
            message.recipient_kind,
            message.recipient_id,
            message.claim_id,
        )
        if written and group is not None and first is None:
            self._firsts_now()[group] = message.dedupe_key

    async def add_command(self, command: ProviderCommand, now: datetime) -> None:
        channel = command.kind.split(".", 1)[0]
        await self._add(
            channel,
            command.idempotency_key,
            command.kind,
            command.params,
            now,
            None,
            None,
            command.params.get("claim_id"),
        )

    async def _add(
        self,
        channel: str,
        key: str,
        template: str,
        payload: dict[str, Any],
        now: datetime,
        recipient_kind: str | None,
        recipient_id: int | None,
        claim_id: int | None,
    ) -> bool:
        """Whether it was written (not already there under its key)."""
        params = {
            "channel": channel,
            "dedupe_key": key,
            "recipient_kind": recipient_kind,
            "recipient_id": recipient_id,
            "template": template,
            "payload": payload,
            "claim_id": claim_id,
            "now": now,
        }
        # A message or command already written under its key is not written again.
        result = await self.s.execute(_ADD_OUTBOX, params)
        return _rowcount(result) > 0

    async def due_commands(
        self, now: datetime, limit: int
    ) -> list[tuple[int, int, ProviderCommand]]:
        stmt = (
            select(t.Outbox)
            .where(
                t.Outbox.channel.in_(("payment", "carrier")),
                t.Outbox.sent_at.is_(None),
                t.Outbox.available_at <= now,
            )
            .order_by(t.Outbox.id)
            .limit(limit)
        )
        stmt = self._locked(stmt, lock=True, skip_locked=True)
        rows = (await self.s.scalars(stmt)).all()
        return [
            (row.id, row.attempts, ProviderCommand(row.dedupe_key, row.template, dict(row.payload)))
            for row in rows
        ]

    async def command_done(self, outbox_id: int, now: datetime) -> None:
        row = await self.s.get(t.Outbox, outbox_id)
        if row is not None:
            row.sent_at = now
            row.attempts += 1

    async def command_retry(self, outbox_id: int, error: str, retry_at: datetime) -> None:
        row = await self.s.get(t.Outbox, outbox_id)
        if row is not None:
            row.attempts += 1
            row.last_error = error[:2000]
            row.available_at = retry_at

    async def messages(self, claim_id: int | None = None) -> Sequence[t.Outbox]:
        stmt = select(t.Outbox).where(t.Outbox.channel == "message").order_by(t.Outbox.id)
        if claim_id is not None:
            stmt = stmt.where(t.Outbox.claim_id == claim_id)
        return (await self.s.scalars(stmt)).all()


class AccountRepo(_Repo):
    async def bindings(self, channel: str, external_id: int) -> list[Binding]:
        params = {"channel": channel, "external_id": external_id}
        return [Binding(kind, party) for kind, party in await self._core(_BINDINGS, params)]

    async def bind(self, channel: str, external_id: int, binding: Binding, now: datetime) -> bool:
        stmt = select(t.Identity).where(
            t.Identity.channel == channel,
            t.Identity.external_id == external_id,
            t.Identity.party_kind == binding.party_kind,
        )
        existing = (await self.s.execute(stmt)).scalar_one_or_none()
        if existing is not None:
            changed = existing.party_id != binding.party_id
            existing.party_id = binding.party_id
            await self.s.flush()  # bindings() reads with Core, past the session
            if changed:
                await self._release_held(binding, now)
            return changed
        self.s.add(
            t.Identity(
                channel=channel,
                external_id=external_id,
                party_kind=binding.party_kind,
                party_id=binding.party_id,
                created_at=now,
            )
        )
        await self.s.flush()
        await self._release_held(binding, now)
        return True

    async def _release_held(self, binding: Binding, now: datetime) -> None:
        """The party's recent messages that found no chat (the overdue sweep filed a claim for
        a buyer before they bound one) are fanned out again, in order, now that one exists.
        One transaction with the binding: the fan-out that follows sees both or neither."""
        await self.s.execute(
            update(t.Outbox)
            .where(
                t.Outbox.channel == "message",
                t.Outbox.recipient_kind == binding.party_kind,
                t.Outbox.recipient_id == binding.party_id,
                t.Outbox.sent_at.is_not(None),
                t.Outbox.last_error == NO_CHAT,
                t.Outbox.created_at >= now - HELD_FOR_A_CHAT,
            )
            .values(sent_at=None, last_error=None)
        )

    async def externals_of(self, channel: str, party_kind: str, party_id: int) -> list[int]:
        stmt = (
            select(t.Identity.external_id)
            .where(
                t.Identity.channel == channel,
                t.Identity.party_kind == party_kind,
                t.Identity.party_id == party_id,
            )
            .order_by(t.Identity.id)
        )
        return list((await self.s.scalars(stmt)).all())

    async def externals_of_many(
        self, channel: str, parties: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], list[int]]:
        """``externals_of`` for many parties in one query (delivery fans out in batches)."""
        wanted = set(parties)
        out: dict[tuple[str, int], list[int]] = {p: [] for p in wanted}
        ids = sorted({party_id for _, party_id in wanted})
        if not ids:
            return out
        stmt = (
            select(t.Identity.party_kind, t.Identity.party_id, t.Identity.external_id)
            .where(t.Identity.channel == channel, t.Identity.party_id.in_(ids))
            .order_by(t.Identity.id)
        )
        for kind, party_id, external in (await self.s.execute(stmt)).all():
            if (kind, party_id) in out:
                out[(kind, party_id)].append(int(external))
        return out

    async def all_staff_externals(self, channel: str) -> list[int]:
        """The chats of everyone on staff now (a member whose role was taken away is not)."""
        stmt = (
            select(t.Identity.external_id)
            .join(t.Staff, t.Staff.id == t.Identity.party_id)
            .where(
                t.Identity.channel == channel,
                t.Identity.party_kind == "staff",
                t.Staff.role.in_(sorted(r.value for r in STAFF_ROLES)),
            )
            .order_by(t.Identity.id)
        )
        return list((await self.s.scalars(stmt)).all())

    async def add_token(
        self, token_hash: str, binding: Binding, now: datetime, expires_at: datetime
    ) -> None:
        self.s.add(
            t.BindingToken(
                token_hash=token_hash,
                party_kind=binding.party_kind,
                party_id=binding.party_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self.s.flush()

    async def token(self, token_hash: str) -> TokenRecord | None:
        stmt = self._locked(
            select(t.BindingToken).where(t.BindingToken.token_hash == token_hash), True
        )
        row = (await self.s.execute(stmt)).scalar_one_or_none()
        if row is None:
            return None
        return TokenRecord(
            row.id, row.party_kind, row.party_id, row.expires_at, row.used_at, row.used_by
        )

    async def use_token(self, token_id: int, external_id: int, now: datetime) -> None:
        row = await self.s.get(t.BindingToken, token_id)
        if row is not None:
            row.used_at = now
            row.used_by = external_id

    async def staff(self, staff_id: int) -> StaffMember | None:
        row = await self.s.get(t.Staff, staff_id)
        return None if row is None else StaffMember(row.id, row.name, row.role)

    async def add_staff(self, name: str, role: str) -> StaffMember:
        row = t.Staff(name=name, role=role)
        self.s.add(row)
        await self.s.flush()
        return StaffMember(row.id, row.name, row.role)

    async def set_staff_role(self, staff_id: int, role: str) -> None:
        row = await self.s.get(t.Staff, staff_id)
        if row is not None:
            row.role = role


class ChatRepo(_Repo):
    """What the chat front end keeps: users' languages, dialogs in progress, handled updates."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._conversations: dict[tuple[str, int], DialogState | None] = {}

    async def users(self, channel: str, external_ids: Iterable[int]) -> dict[int, t.ChatUser]:
        """Many chat users in one query, by external id."""
        ids = sorted(set(external_ids))
        if not ids:
            return {}
        stmt = select(t.ChatUser).where(
            t.ChatUser.channel == channel, t.ChatUser.external_id.in_(ids)
        )
        return {u.external_id: u for u in (await self.s.scalars(stmt)).all()}

    async def seen_update(self, channel: str, update_id: int, now: datetime) -> bool:
        """Record an update as handled in this transaction; True if it was handled before."""
        params = {"channel": channel, "update_id": update_id, "now": now}
        result = await self._core(_SEEN_UPDATE, params)  # one statement
        return _rowcount(result) == 0

    async def user(self, channel: str, external_id: int) -> t.ChatUser | None:
        stmt = select(t.ChatUser).where(
            t.ChatUser.channel == channel, t.ChatUser.external_id == external_id
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def touch_user(
        self, channel: str, external_id: int, first_name: str, now: datetime, language: str
    ) -> str | None:
        """Note the user's contact and lock their row: one user's updates are handled one at
        a time. Returns the language stored for them.

        One upsert: created on first contact with the language their client reports; else
        their name refreshed, and they are reachable again (they just wrote). Updating the row
        takes its lock (on SQLite the write transaction already serialises), so a double press
        or two quick messages of the same user can never run a dialog step twice in parallel.
        """
        params = {
            "channel": channel,
            "external_id": external_id,
            "first_name": first_name[:200],
            "language": language,
            "now": now,
        }
        language_now: str | None = (await self._core(_TOUCH_USER, params)).scalar_one()
        return language_now

    async def conversation(self, channel: str, external_id: int) -> DialogState | None:
        """The user's dialog in progress. Read once per unit of work: every write to it goes
        through this repository, which keeps its copy current."""
        key = (channel, external_id)
        if key not in self._conversations:
            params = {"b_channel": channel, "b_external_id": external_id}
            row = (await self._core(_CONVERSATION, params)).first()
            self._conversations[key] = None if row is None else DialogState(*row)
        return self._conversations[key]

    def forget(self) -> None:
        """After a rollback nothing read before holds."""
        self._conversations.clear()

    async def save_conversation(
        self,
        channel: str,
        external_id: int,
        flow: str,
        step: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        known = await self.conversation(channel, external_id)
        params = {
            "b_channel": channel,
            "b_external_id": external_id,
            "b_flow": flow,
            "b_step": step,
            "b_data": dict(data),
            "now": now,
        }
        await self._core(_NEW_CONVERSATION if known is None else _SAVE_CONVERSATION, params)
        self._conversations[(channel, external_id)] = DialogState(flow, step, dict(data))

    async def end_conversation(self, channel: str, external_id: int) -> bool:
        if await self.conversation(channel, external_id) is None:
            return False
        params = {"b_channel": channel, "b_external_id": external_id}
        await self._core(_END_CONVERSATION, params)
        self._conversations[(channel, external_id)] = None
        return True


class DeliveryRepo(_Repo):
    """Outbox messages on their way to chats: fanned out into one delivery per chat, leased
    by one sender at a time, sent in ``id`` order per chat, each outcome recorded."""

    async def due_messages(self, now: datetime, limit: int) -> Sequence[t.Outbox]:
        """Outbox messages not yet fanned out to their chats (``sent_at`` marks the fan-out)."""
        stmt = (
            select(t.Outbox)
            .where(
                t.Outbox.channel == "message",
                t.Outbox.sent_at.is_(None),
                t.Outbox.available_at <= now,
            )
            .order_by(t.Outbox.id)
            .limit(limit)
        )
        return (await self.s.scalars(self._locked(stmt, lock=True, skip_locked=True))).all()

    async def pending(self, limit: int, exclude: Iterable[int] = ()) -> Sequence[t.Delivery]:
        """The oldest pending deliveries (but ``exclude``), due or not: a chat's head decides
        for the chat. Locked without SKIP LOCKED, in id order: a second sender waits for the
        first one's leases instead of seeing a chat with a hole in it."""
        stmt = select(t.Delivery).where(t.Delivery.status == "pending")
        skip = sorted(set(exclude))
        if skip:
            stmt = stmt.where(t.Delivery.id.not_in(skip))
        stmt = stmt.order_by(t.Delivery.id).limit(limit)
        return (await self.s.scalars(self._locked(stmt, lock=True))).all()

    async def add_many(self, rows: list[tuple[int, int, str]], now: datetime) -> None:
        """Deliveries (outbox id, chat id, status) in one statement; repeats add nothing."""
        if not rows:
            return
        values = [
            {
                "outbox_id": outbox_id,
                "chat_id": chat_id,
                "status": status,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for outbox_id, chat_id, status in rows
        ]
        if self.is_postgres:
            await self.s.execute(
                postgres_insert(t.Delivery).values(values).on_conflict_do_nothing()
            )
        else:
            await self.s.execute(sqlite_insert(t.Delivery).values(values).on_conflict_do_nothing())

    async def heads(self, chat_ids: Iterable[int]) -> dict[int, int]:
        """The oldest pending delivery of each chat, as committed (locks do not hide it)."""
        chats = sorted(set(chat_ids))
        if not chats:
            return {}
        stmt = (
            select(t.Delivery.chat_id, func.min(t.Delivery.id))
            .where(t.Delivery.status == "pending", t.Delivery.chat_id.in_(chats))
            .group_by(t.Delivery.chat_id)
        )
        return {int(chat): int(first) for chat, first in (await self.s.execute(stmt)).all()}

    async def outboxes(self, ids: Iterable[int]) -> dict[int, t.Outbox]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        stmt = select(t.Outbox).where(t.Outbox.id.in_(wanted))
        return {o.id: o for o in (await self.s.scalars(stmt)).all()}

    async def get_many(self, ids: Iterable[int]) -> Sequence[t.Delivery]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        stmt = select(t.Delivery).where(t.Delivery.id.in_(wanted)).order_by(t.Delivery.id)
        return (await self.s.scalars(stmt.execution_options(populate_existing=True))).all()

    async def give_up_chat(self, chat_id: int, status: str, error: str) -> int:
        """Every pending delivery of one chat ends as ``status`` (the chat blocked the bot)."""
        result = await self.s.execute(
            update(t.Delivery)
            .where(t.Delivery.chat_id == chat_id, t.Delivery.status == "pending")
            .values(status=status, last_error=error, leased_until=None)
        )
        return _rowcount(result)

    async def counts(self) -> dict[str, int]:
        stmt = select(t.Delivery.status, func.count()).group_by(t.Delivery.status)
        return {str(status): int(n) for status, n in (await self.s.execute(stmt)).all()}


class TopicRepo(_Repo):
    """The staff group's forum topic of each case, and who on staff took the case.

    A row without ``thread_id`` records only who took the case (no topic yet, or none any
    more because someone deleted it).
    """

    async def get(self, claim_id: int) -> t.ClaimTopic | None:
        stmt = select(t.ClaimTopic).where(t.ClaimTopic.claim_id == claim_id)
        return (
            await self.s.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def _ensure(self, claim_id: int, chat_id: int, now: datetime) -> None:
        insert_ = postgres_insert if self.is_postgres else sqlite_insert
        await self.s.execute(
            insert_(t.ClaimTopic)
            .values(claim_id=claim_id, chat_id=chat_id, name="", closed=False, updated_at=now)
            .on_conflict_do_nothing()
        )

    async def take(
        self, claim_id: int, staff_id: int, chat_id: int, now: datetime, how: str = "take"
    ) -> int | None:
        """Name ``staff_id`` as the one working the case unless someone already is; returns
        the staff id who holds it afterwards (a conditional update: two takers, one wins).
        A take that wins is recorded in ``claim_holds`` (``how``: "take" or "acted")."""
        await self._ensure(claim_id, chat_id, now)
        won = await self.s.execute(
            update(t.ClaimTopic)
            .where(t.ClaimTopic.claim_id == claim_id, t.ClaimTopic.taken_by.is_(None))
            .values(taken_by=staff_id, updated_at=now)
        )
        if _rowcount(won):
            self._held(claim_id, staff_id, None, how, now)
        row = await self.get(claim_id)
        return None if row is None else row.taken_by

    async def take_over(
        self, claim_id: int, staff_id: int, previous: int, chat_id: int, now: datetime
    ) -> int | None:
        """Name ``staff_id`` instead of ``previous``, if ``previous`` still holds the case;
        returns who holds it afterwards (someone else took it over first: not this caller)."""
        await self._ensure(claim_id, chat_id, now)
        won = await self.s.execute(
            update(t.ClaimTopic)
            .where(t.ClaimTopic.claim_id == claim_id, t.ClaimTopic.taken_by == previous)
            .values(taken_by=staff_id, updated_at=now)
        )
        if _rowcount(won):
            self._held(claim_id, staff_id, previous, "take_over", now)
        row = await self.get(claim_id)
        return None if row is None else row.taken_by

    def _held(
        self, claim_id: int, staff_id: int, previous: int | None, how: str, now: datetime
    ) -> None:
        self.s.add(
            t.ClaimHold(claim_id=claim_id, staff_id=staff_id, previous_id=previous, how=how, at=now)
        )

    async def holds(self, claim_id: int) -> list[t.ClaimHold]:
        """Who held the case, oldest first (the audit of taking and taking over)."""
        stmt = select(t.ClaimHold).where(t.ClaimHold.claim_id == claim_id).order_by(t.ClaimHold.id)
        return list((await self.s.scalars(stmt)).all())

    async def staff_name(self, staff_id: int) -> str | None:
        return (
            await self.s.execute(select(t.Staff.name).where(t.Staff.id == staff_id))
        ).scalar_one_or_none()

    async def taken_by_name(self, claim_id: int) -> str | None:
        stmt = (
            select(t.Staff.name)
            .join(t.ClaimTopic, t.ClaimTopic.taken_by == t.Staff.id)
            .where(t.ClaimTopic.claim_id == claim_id)
        )
        return (await self.s.execute(stmt)).scalar_one_or_none()

    async def opened(
        self, claim_id: int, chat_id: int, thread_id: int, name: str, now: datetime
    ) -> None:
        """A new topic for the case: it shows no card and no evidence yet."""
        await self._ensure(claim_id, chat_id, now)
        await self.changed(
            claim_id,
            now,
            chat_id=chat_id,
            thread_id=thread_id,
            name=name,
            closed=False,
            card_message_id=None,
            card_version=None,
            evidence_upto=0,
            synced_version=None,
            sync_attempts=0,
            sync_after=None,
            sync_error=None,
        )

    async def forget(self, claim_id: int, now: datetime) -> None:
        """Someone deleted the topic: the case has none (who took it is kept), nor anything
        a sync of it was waiting for."""
        await self.changed(
            claim_id,
            now,
            thread_id=None,
            card_message_id=None,
            card_version=None,
            evidence_upto=0,
            sync_after=None,
        )

    async def lease_opening(
        self, claim_id: int, chat_id: int, now: datetime, until: datetime
    ) -> bool:
        """Lease the opening of the case's topic in ``chat_id`` to the caller until ``until``
        unless it has one there or another process is opening it: a conditional update, of
        two processes one wins. The lease is ``sync_after``, free while there is no topic (a
        row without one is never due for a sync); :meth:`opened` clears it."""
        await self._ensure(claim_id, chat_id, now)
        topic = t.ClaimTopic
        won = await self.s.execute(
            update(topic)
            .where(
                topic.claim_id == claim_id,
                or_(topic.thread_id.is_(None), topic.chat_id != chat_id),
                _lease_free(now),
            )
            .values(chat_id=chat_id, thread_id=None, sync_after=until, updated_at=now)
        )
        return _rowcount(won) == 1

    # What sync may record of a topic: its columns but the key, the time and the holder
    # (who holds a case changes only by taking it).
    _FIELDS = frozenset(c.name for c in t.ClaimTopic.__table__.columns) - {
        "claim_id",
        "updated_at",
        "taken_by",
    }

    async def changed(self, claim_id: int, now: datetime, **values: Any) -> None:
        """Record what the bot changed on a topic, or how far its sync got."""
        if not values.keys() <= self._FIELDS:
            raise ValueError(f"not a topic field: {sorted(values.keys() - self._FIELDS)}")
        await self.s.execute(
            update(t.ClaimTopic)
            .where(t.ClaimTopic.claim_id == claim_id)
            .values(updated_at=now, **values)
        )

    async def due(self, chat_id: int, now: datetime, limit: int = 50) -> list[int]:
        """Cases whose open topic in ``chat_id`` shows less than there is: the case moved on
        (its version), or the buyer sent more evidence and the card is there to lead it (the
        card's delivery may still be retrying) — unless a failed sync waits."""
        topic = t.ClaimTopic
        newer_evidence = topic.card_message_id.is_not(None) & exists().where(
            t.Evidence.claim_id == topic.claim_id, t.Evidence.id > topic.evidence_upto
        )
        stmt = (
            select(topic.claim_id)
            .join(t.Claim, t.Claim.id == topic.claim_id)
            .where(
                topic.closed.is_(False),
                topic.chat_id == chat_id,
                topic.thread_id.is_not(None),
                or_(topic.sync_after.is_(None), topic.sync_after <= now),
                or_(
                    topic.synced_version.is_(None),
                    topic.synced_version != t.Claim.version,
                    newer_evidence,
                ),
            )
            .order_by(topic.claim_id)
            .limit(limit)
        )
        return list((await self.s.scalars(stmt)).all())

    async def lease_sync(self, claim_id: int, chat_id: int, now: datetime, until: datetime) -> bool:
        """Lease the open topic's sync to the caller until ``until`` (``sync_after`` moved
        past it, so the topic is not due meanwhile) unless a failed sync waits or another
        process has it: a conditional update, of two processes one wins."""
        topic = t.ClaimTopic
        won = await self.s.execute(
            update(topic)
            .where(
                topic.claim_id == claim_id,
                topic.chat_id == chat_id,
                topic.closed.is_(False),
                topic.thread_id.is_not(None),
                _lease_free(now),
            )
            .values(sync_after=until, updated_at=now)
        )
        return _rowcount(won) == 1

    async def evidence_after(
        self, claim_id: int, after_id: int, limit: int = 50
    ) -> list[tuple[int, str]]:
        """The buyer's evidence not yet shown in the topic: (id, file reference), oldest first."""
        stmt = (
            select(t.Evidence.id, t.Evidence.ref)
            .where(t.Evidence.claim_id == claim_id, t.Evidence.id > after_id)
            .order_by(t.Evidence.id)
            .limit(limit)
        )
        return [(row.id, row.ref) for row in (await self.s.execute(stmt)).all()]
