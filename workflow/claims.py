"""The after-sales vocabulary: parties, claims and what they refer to.

Enumerations name the domain's closed sets (types, reasons, sources, liabilities). The record
protocols describe what the services read and write on a stored row; storage's typed models
satisfy them structurally, so the domain never imports an ORM. Claim *states* are not listed
here: they exist only in :mod:`workflow.lifecycle`'s transition table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Role(StrEnum):
    """Who acts. Staff roles rank agent < supervisor < admin."""

    BUYER = "buyer"
    CONSIGNOR = "consignor"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"
    CARRIER = "carrier"


STAFF_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Actor:
    """A party acting in one use case: a role and, for people, the platform account id.

    ``chat`` is the chat a person acts from, when a front end knows it: the answer they get
    there is their record of their own step, so the stage message about it is not sent to
    that chat again (:mod:`workflow.notifications`). Not part of who the actor is.
    """

    role: Role
    party_id: int | None = None
    chat: int | None = field(default=None, compare=False)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def label(self) -> str:
        return (
            f"{self.role.value}:{self.party_id}" if self.party_id is not None else self.role.value
        )


SYSTEM = Actor(Role.SYSTEM)
CARRIER = Actor(Role.CARRIER)


class ClaimType(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"


class Reason(StrEnum):
    NOT_RECEIVED = "not_received"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    QUALITY_ISSUE = "quality_issue"
    NO_REASON_7_DAYS = "no_reason_7_days"
    OTHER = "other"


class Source(StrEnum):
    BUYER = "buyer"
    STAFF = "staff"
    SYSTEM = "system"
    CARRIER = "carrier"


class Liability(StrEnum):
    BUYER = "buyer"
    CONSIGNOR = "consignor"
    PLATFORM = "platform"
    CARRIER = "carrier"


class ListingStatus(StrEnum):
    LISTED = "listed"
    SOLD = "sold"
    RETURNED = "returned"
    RELISTED = "relisted"
    DAMAGED = "damaged"
    WRITTEN_OFF = "written_off"


class ShippingState(StrEnum):
    PENDING = "pending"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class ShipmentKind(StrEnum):
    OUTBOUND = "outbound"
    RETURN = "return"
    REPLACEMENT = "replacement"


class ShipmentStatus(StrEnum):
    CREATED = "created"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"


class Inspection(StrEnum):
    INTACT = "intact"
    DAMAGED = "damaged"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LedgerKind(StrEnum):
    SALE_CREDIT = "sale_credit"
    COMMISSION = "commission"
    RETURN_REVERSAL = "return_reversal"
    COMPENSATION = "compensation"
    ADJUSTMENT = "adjustment"
    PAYOUT = "payout"


MAX_DESCRIPTION_CHARS = 1000
MAX_EVIDENCE_ITEMS = 5


# ---- records the services read and write (storage's models satisfy these) ----


class BuyerRecord(Protocol):
    id: int
    external_ref: str
    name: str


class ConsignorRecord(Protocol):
    id: int
    external_ref: str
    name: str


class ItemRecord(Protocol):
    id: int
    consignor_id: int
    sku: str
    title: str
    category: str
    status: str
    quantity_on_hand: int
    damaged_quantity: int


class OrderLineRecord(Protocol):
    id: int
    order_id: int
    item_id: int
    quantity: int
    unit_price: int
    commission: int


class OrderRecord(Protocol):
    id: int
    external_ref: str
    buyer_id: int
    currency: str
    paid_amount: int
    refunded_amount: int
    shipping_state: str
    paid_at: datetime
    ship_by: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    overdue_flagged_at: datetime | None


class ClaimRecord(Protocol):
    id: int
    version: int
    status: str
    buyer_id: int
    claim_type: str
    reason: str
    source: str
    liability: str | None
    description: str
    currency: str
    claimed_amount: int
    refund_amount: int | None
    compensation_amount: int | None
    counter_offer_amount: int | None
    review_rule: str | None
    review_note: str | None
    filing_id: int | None
    created_at: datetime
    updated_at: datetime
    review_due_at: datetime | None
    info_due_at: datetime | None
    return_by: datetime | None
    respond_by: datetime | None
    settle_due_at: datetime | None
    remind_due_at: datetime | None
    staff_due_at: datetime | None
    closed_at: datetime | None


class ClaimLineRecord(Protocol):
    id: int
    claim_id: int
    order_line_id: int
    quantity: int
    amount: int
    inspection: str | None


class RefundRecord(Protocol):
    id: int
    claim_id: int
    order_id: int
    amount: int
    currency: str
    status: str
    idempotency_key: str
    attempt: int
    provider_ref: str | None
    failure: str | None


class ShipmentRecord(Protocol):
    id: int
    claim_id: int | None
    order_id: int | None
    kind: str
    status: str
    tracking_number: str
    qr_payload: str


# ---- values the services create (storage persists them) ----


@dataclass(frozen=True, slots=True)
class LineRequest:
    """One line of a claim being filed: which order line, how many units."""

    order_line_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class ClaimDraft:
    """Everything a buyer (or staff, the system, a carrier) says when opening a claim."""

    claim_type: ClaimType
    reason: Reason
    lines: tuple[LineRequest, ...]
    description: str = ""
    evidence: tuple[str, ...] = ()
    source: Source = Source.BUYER


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One row of the claim's audit trail: every state change, who, why and by which rule."""

    claim_id: int
    version: int
    from_status: str
    to_status: str
    trigger: str
    actor: str
    at: datetime
    rule: str | None = None
    note: str | None = None


class OrderEventKind(StrEnum):
    """Things that happen to an order itself (not to a claim on it)."""

    FLAGGED_OVERDUE = "flagged_overdue"


class OverdueOutcome(StrEnum):
    """What the overdue-shipment sweep did about an order (staff are alerted either way)."""

    CLAIM_OPENED = "claim_opened"  # refund-only claims opened on the buyer's behalf
    CLAIM_OFFERED = "claim_offered"  # the buyer was offered to open one
    ALREADY_CLAIMED = "already_claimed"  # every line was under a claim already: nothing to open


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One row of an order's audit trail: a change to the order made outside any claim
    (a claim's own steps are :class:`AuditEvent` rows). One per order and kind."""

    order_id: int
    kind: OrderEventKind
    actor: str
    at: datetime
    outcome: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerPosting:
    """An append-only entry on a consignor's account; a correction is a reversing posting."""

    consignor_id: int
    kind: LedgerKind
    amount: int
    currency: str
    idempotency_key: str
    available_at: datetime
    claim_id: int | None = None
    order_line_id: int | None = None
    memo: str = ""


@dataclass(frozen=True, slots=True)
class CarrierClaimPosting:
    """Money the platform claims back from a carrier that damaged or lost goods."""

    claim_id: int
    carrier: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message to one party, written in the same transaction as the change that causes it.

    ``template`` is a locale key; the front end renders it in the recipient's language.
    ``dedupe_key`` makes delivery at-least-once without ever sending the same thing twice.
    """

    dedupe_key: str
    recipient_kind: str
    recipient_id: int | None
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    claim_id: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderCommand:
    """A request to an outside provider (payment, carrier), run after commit by key."""

    idempotency_key: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
