"""SQLAlchemy 2 typed models: the after-sales schema.

The models structurally satisfy the record protocols of :mod:`workflow.claims`, so services
work on them without knowing SQLAlchemy exists. Amounts are integer minor units. Deadlines are
indexed columns on the rows themselves (``review_due_at``, ``return_by``, …) so that sweeps in
any number of processes find due work with an index scan, not a job store.

The schema is created only by Alembic migrations (``storage/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both engines (SQLite keeps no zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


Id = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements (a Core insert reports its rowcount and skips
    the ORM's bulk-insert path)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Buyer(Base):
    __tablename__ = "buyers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Consignor(Base):
    __tablename__ = "consignors"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))


class Item(Base):
    """A consignment item: owned by a consignor, sold and managed by the platform."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    consignor_id: Mapped[int] = mapped_column(ForeignKey("consignors.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(64), default="general")
    status: Mapped[str] = mapped_column(String(16))
    quantity_on_hand: Mapped[int] = mapped_column(default=0)
    damaged_quantity: Mapped[int] = mapped_column(default=0)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_unshipped_due", "shipping_state", "ship_by"),
        # The overdue sweep's own index: orders already flagged leave it, so finding the
        # due ones costs the same among 10,000 orders as among 1,000,000.
        Index(
            "ix_orders_overdue_unflagged",
            "shipping_state",
            "ship_by",
            sqlite_where=text("overdue_flagged_at IS NULL"),
            postgresql_where=text("overdue_flagged_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    paid_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_state: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[datetime]
    ship_by: Mapped[datetime]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # Set once the overdue-shipment sweep has acted on the order, so it acts only once.
    overdue_flagged_at: Mapped[datetime | None]


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "item_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    quantity: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger)
    commission: Mapped[int] = mapped_column(BigInteger)


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_review_due", "review_due_at", "status"),
        Index("ix_claims_info_due", "info_due_at", "status"),
        Index("ix_claims_return_by", "return_by", "status"),
        Index("ix_claims_respond_by", "respond_by", "status"),
        Index("ix_claims_settle_due", "settle_due_at", "status"),
        Index("ix_claims_remind_due", "remind_due_at", "status"),
        Index("ix_claims_staff_due", "staff_due_at", "status"),
        Index("ix_claims_buyer_created", "buyer_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(32), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    claim_type: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    liability: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    claimed_amount: Mapped[int] = mapped_column(BigInteger)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger)
    compensation_amount: Mapped[int | None] = mapped_column(BigInteger)
    counter_offer_amount: Mapped[int | None] = mapped_column(BigInteger)
    review_rule: Mapped[str | None] = mapped_column(String(64))
    review_note: Mapped[str | None] = mapped_column(Text)
    # The first claim of a filing split by consignor (NULL: filed alone): review weighs the
    # claims filed together as one (their total, one filing in the buyer's count).
    filing_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    review_due_at: Mapped[datetime | None]
    info_due_at: Mapped[datetime | None]
    return_by: Mapped[datetime | None]
    respond_by: Mapped[datetime | None]
    settle_due_at: Mapped[datetime | None]
    # Reminders and alerts that move nothing: when the buyer is reminded to send the return
    # back, and when staff are alerted that a case waits for them longer than the review SLA.
    remind_due_at: Mapped[datetime | None]
    staff_due_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    # Optimistic locking: the version is bumped by the services (one per transition) and
    # every UPDATE is guarded by the version that was loaded.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class ClaimLine(Base):
    __tablename__ = "claim_lines"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int]
    amount: Mapped[int] = mapped_column(BigInteger)
    inspection: Mapped[str | None] = mapped_column(String(16))


class Evidence(Base):
    __tablename__ = "claim_evidence"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    ref: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]


class ClaimEvent(Base):
    """The audit trail: one row per transition, unique per claim version."""

    __tablename__ = "claim_events"
    __table_args__ = (UniqueConstraint("claim_id", "version"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    version: Mapped[int]
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class OrderEvent(Base):
    """The orders' audit trail: a change made to an order outside any claim (the overdue
    sweep flagging it), who made it, when, and what came of it. A claim's own steps stay in
    ``claim_events``, keyed by the claim's version. Each kind happens to an order once."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("order_id", "kind"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class Refund(Base):
    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    attempt: Mapped[int] = mapped_column(default=1)
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    failure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LedgerEntry(Base):
    """Append-only consignor ledger; balance = sum of entries, split by ``available_at``."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_consignor_available", "consignor_id", "available_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    consignor_id: Mapped[int] = mapped_column(ForeignKey("consignors.id"))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"))
    memo: Mapped[str] = mapped_column(String(200), default="")
    available_at: Mapped[datetime]
    created_at: Mapped[datetime]


class CarrierClaim(Base):
    __tablename__ = "carrier_claims"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    carrier: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    tracking_number: Mapped[str] = mapped_column(String(64), unique=True)
    qr_payload: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Outbox(Base):
    """Messages to parties and commands to providers, written with the change that causes them."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "channel", "sent_at", "available_at"),
        # A party's messages, found when they bind a first chat (those that found none wait).
        Index("ix_outbox_recipient", "recipient_kind", "recipient_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # "message" | "payment" | "carrier"
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient_kind: Mapped[str | None] = mapped_column(String(16))
    recipient_id: Mapped[int | None] = mapped_column(BigInteger)
    template: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    claim_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One outbox message on its way to one chat: the unit of flood control, retry and order.

    An outbox message fans out to every chat of its recipient; each (message, chat) pair is a
    row here, sent at most once on success (``sent_at``), retried after ``next_attempt_at``,
    held by one sender until ``leased_until``. Rows of one chat are sent in ``id`` order.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "chat_id"),
        Index("ix_deliveries_pending", "status", "chat_id", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed | unreachable
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


# ---- accounts: binding platform parties to chat identities ----


class Identity(Base):
    """A chat identity (a Telegram user) bound to a platform party: buyer, consignor or staff."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "party_kind"),
        Index("ix_identities_party", "party_kind", "party_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[int] = mapped_column(BigInteger)
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class BindingToken(Base):
    """A single-use, expiring binding link; only the token's SHA-256 is stored."""

    __tablename__ = "binding_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)


class ChatUser(Base):
    """What we know of a chat user regardless of bindings: language, reachability."""

    __tablename__ = "chat_users"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    unreachable: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class Conversation(Base):
    """A user's dialog in progress (e.g. a claim draft): it survives a restart of the bot."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[int] = mapped_column(BigInteger)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ProcessedUpdate(Base):
    """Update ids already handled: a redelivered update is recognised and ignored."""

    __tablename__ = "processed_updates"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(index=True)


class ClaimTopic(Base):
    """The staff group's forum topic for a case, and who on staff has taken the case.

    The topic records what it shows (``synced_version``, ``card_version``, ``evidence_upto``),
    so a topic whose case has moved on since, or got more evidence, is due for a sync
    (``bot.staff_group``) however the change came about; a failed sync waits until
    ``sync_after`` (backoff, or Telegram's ``retry_after``) and is tried again.
    """

    __tablename__ = "claim_topics"
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(128), default="")
    closed: Mapped[bool] = mapped_column(default=False)
    card_message_id: Mapped[int | None] = mapped_column(BigInteger)
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime]
    synced_version: Mapped[int | None]  # the case's version the topic was brought to last
    card_version: Mapped[int | None]  # the case's version its card was drawn for
    evidence_upto: Mapped[int] = mapped_column(BigInteger, default=0)  # last evidence id shown
    sync_attempts: Mapped[int] = mapped_column(default=0)  # failed syncs in a row
    sync_after: Mapped[datetime | None]
    sync_error: Mapped[str | None] = mapped_column(Text)


# Open topics by group (the sync's scan); declared on the columns, not their names.
Index("ix_claim_topics_open", ClaimTopic.closed, ClaimTopic.chat_id)


class ClaimHold(Base):
    """Who on staff held a case, and since when: one row per change of holder (a first take,
    a take by acting on an untaken case, a take-over from a colleague). Append-only."""

    __tablename__ = "claim_holds"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    how: Mapped[str] = mapped_column(String(16))  # "take", "acted", "take_over"
    at: Mapped[datetime]


class ClaimRating(Base):
    __tablename__ = "claim_ratings"
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), primary_key=True)
    score: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
