"""Ports: what the domain needs from the outside, as Protocols.

Storage implements the unit of work and repositories; ``workflow.simulated`` and, later, real
adapters implement the providers. Repositories never commit: the unit of work commits once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from workflow.claims import (
    AuditEvent,
    BuyerRecord,
    CarrierClaimPosting,
    ClaimDraft,
    ClaimLineRecord,
    ClaimRecord,
    ConsignorRecord,
    ItemRecord,
    LedgerPosting,
    OrderEvent,
    OrderLineRecord,
    OrderRecord,
    OutboxMessage,
    ProviderCommand,
    RefundRecord,
    ShipmentRecord,
)
from workflow.stats import ClaimRow, DurationBucket, ReturnRate, SlaRule, StageCount

# ---- time ----


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---- providers ----


@dataclass(frozen=True, slots=True)
class Waybill:
    carrier: str
    tracking_number: str
    qr_payload: str


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    tracking_number: str
    status: str  # a ShipmentStatus value
    at: datetime
    description: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    idempotency_key: str
    succeeded: bool
    provider_ref: str
    failure: str | None = None


class ProviderUnavailable(Exception):
    """A provider did not answer (timeout, 5xx): the command stays queued and is retried."""


class PaymentGateway(Protocol):
    async def request_refund(
        self, idempotency_key: str, order_ref: str, amount: int, currency: str
    ) -> str:
        """Ask for a refund; the outcome arrives later as a :class:`RefundResult` callback.

        Calling twice with one key is harmless and returns the same provider reference.
        """
        ...

    async def status(self, idempotency_key: str) -> RefundResult | None: ...


class Carrier(Protocol):
    name: str

    async def create_waybill(self, idempotency_key: str, reference: str) -> Waybill: ...

    async def tracking(self, tracking_number: str) -> Sequence[TrackingEvent]: ...


# ---- repositories ----


class PartyRepository(Protocol):
    async def buyer(self, buyer_id: int) -> BuyerRecord | None: ...
    async def consignor(self, consignor_id: int) -> ConsignorRecord | None: ...


@dataclass(frozen=True, slots=True)
class ClaimableLine:
    """An order line as a claim sees it: its item's title and the units already under a
    claim that was not dropped."""

    line_id: int
    order_id: int
    title: str
    quantity: int
    claimed: int
    unit_price: int


class OrderRepository(Protocol):
    async def get(self, order_id: int, *, lock: bool = False) -> OrderRecord | None: ...
    async def line(self, line_id: int) -> OrderLineRecord | None: ...
    async def lines(self, order_id: int) -> Sequence[OrderLineRecord]: ...
    async def item(self, item_id: int, *, lock: bool = False) -> ItemRecord | None: ...
    async def for_buyer(self, buyer_id: int, offset: int, limit: int) -> Sequence[OrderRecord]:
        """The buyer's orders, newest first."""
        ...

    async def count_for_buyer(self, buyer_id: int) -> int: ...
    async def claimable_lines(self, order_ids: Sequence[int]) -> list[ClaimableLine]:
        """The lines of these orders, by order then line id, in one query."""
        ...

    async def overdue(self, now: datetime, limit: int) -> list[int]:
        """Ids of paid orders still unshipped past ``ship_by`` and not yet acted on."""
        ...

    async def add_event(self, event: OrderEvent) -> None:
        """Append to the order's audit trail (once per order and kind)."""
        ...

    async def events(self, order_id: int) -> Sequence[OrderEvent]:
        """The order's audit trail, oldest first."""
        ...

    async def events_by_ref(self, external_ref: str) -> Sequence[OrderEvent]:
        """The audit trail of the order with this platform reference (none: empty)."""
        ...

    async def items_for_consignor(
        self, consignor_id: int, offset: int, limit: int
    ) -> Sequence[ItemRecord]:
        """A consignor's items, by SKU."""
        ...

    async def count_items_for_consignor(self, consignor_id: int) -> int: ...
    async def sold_quantities(self, item_ids: Sequence[int]) -> dict[int, int]: ...


class ClaimRepository(Protocol):
    async def get(self, claim_id: int, *, lock: bool = False) -> ClaimRecord | None: ...
    async def add(
        self, buyer_id: int, draft: ClaimDraft, currency: str, amount: int, now: datetime
    ) -> ClaimRecord: ...
    async def add_line(
        self, claim_id: int, order_line_id: int, quantity: int, amount: int
    ) -> ClaimLineRecord: ...
    async def lines(self, claim_id: int) -> Sequence[ClaimLineRecord]: ...
    async def add_evidence(self, claim_id: int, refs: Sequence[str], now: datetime) -> None: ...
    async def evidence_count(self, claim_id: int) -> int: ...
    async def claimed_quantity(self, order_line_id: int) -> int:
        """Units of this order line already under a claim that was not dropped."""
        ...

    async def count_by_buyer_since(self, buyer_id: int, since: datetime) -> int:
        """The buyer's filings since then: the claims of one split filing count once."""
        ...

    async def filing_total(self, filing_id: int) -> int:
        """What the claims of one split filing claim together."""
        ...

    async def due(
        self, deadline: str, now: datetime, states: Sequence[str], limit: int
    ) -> list[int]:
        """Ids of claims in ``states`` whose ``deadline`` column is past, claimed for this tx."""
        ...

    async def add_audit(self, event: AuditEvent) -> None: ...
    async def timeline(self, claim_id: int) -> Sequence[AuditEvent]: ...
    async def consignor_ids(self, claim_id: int) -> list[int]: ...
    async def for_buyer(self, buyer_id: int, offset: int, limit: int) -> Sequence[ClaimRecord]:
        """The buyer's claims, newest first."""
        ...

    async def count_for_buyer(self, buyer_id: int) -> int: ...
    async def in_states(
        self, states: Sequence[str], offset: int, limit: int
    ) -> Sequence[ClaimRecord]:
        """Claims in ``states``, oldest update first (a work queue)."""
        ...

    async def count_in_states(self, states: Sequence[str]) -> int: ...
    async def rating(self, claim_id: int) -> tuple[int, str] | None: ...
    async def add_rating(self, claim_id: int, score: int, comment: str, now: datetime) -> None: ...


class MoneyRepository(Protocol):
    async def add_refund(
        self,
        claim_id: int,
        order_id: int,
        amount: int,
        currency: str,
        key: str,
        attempt: int,
        now: datetime,
    ) -> RefundRecord: ...
    async def refund_by_key(self, key: str, *, lock: bool = False) -> RefundRecord | None: ...
    async def stale_pending_refunds(self, before: datetime, limit: int) -> Sequence[str]: ...
    async def refunds_for_claim(self, claim_id: int) -> Sequence[RefundRecord]: ...
    async def refunds_for_order(self, order_id: int) -> Sequence[RefundRecord]: ...
    async def post(self, posting: LedgerPosting, now: datetime | None = None) -> bool:
        """Append a ledger entry (written at ``now``, by default when it falls due); False
        (and nothing written) if its key was posted before."""
        ...

    async def entries_for_claim(self, claim_id: int) -> Sequence[LedgerPosting]: ...
    async def sale_available_at(self, order_line_id: int) -> datetime | None:
        """When the sale credit of an order line becomes (or became) available; None if the
        line has no sale credit."""
        ...

    async def undone_on_line(self, order_line_id: int, except_claim: int) -> tuple[int, int]:
        """What the settlements of claims other than ``except_claim`` undid of an order line's
        sale: (sale value reversed, a negative amount; commission given back)."""
        ...

    async def entries_for_consignor(
        self, consignor_id: int, limit: int = 20
    ) -> Sequence[LedgerPosting]:
        """The consignor's latest entries, newest first."""
        ...

    async def balance(self, consignor_id: int, now: datetime) -> dict[str, tuple[int, int]]:
        """Per currency the consignor has entries in, (available, pending) in minor units;
        pending = not yet available at ``now``. Amounts in two currencies never add up."""
        ...

    async def add_carrier_claim(self, posting: CarrierClaimPosting, now: datetime) -> None: ...


class ShipmentRepository(Protocol):
    async def add(
        self, kind: str, claim_id: int | None, order_id: int | None, waybill: Waybill, now: datetime
    ) -> ShipmentRecord: ...
    async def for_claim(self, claim_id: int) -> Sequence[ShipmentRecord]: ...
    async def by_tracking(self, tracking_number: str) -> ShipmentRecord | None: ...
    async def open_tracking_numbers(self) -> list[str]:
        """Tracking numbers of parcels not yet delivered (the ones worth polling)."""
        ...


class OutboxRepository(Protocol):
    async def add(self, message: OutboxMessage, now: datetime) -> None: ...
    async def add_command(self, command: ProviderCommand, now: datetime) -> None: ...
    async def due_commands(
        self, now: datetime, limit: int
    ) -> list[tuple[int, int, ProviderCommand]]:
        """(outbox id, attempts so far, command) for commands due at ``now``."""
        ...

    async def command_done(self, outbox_id: int, now: datetime) -> None: ...
    async def command_retry(self, outbox_id: int, error: str, retry_at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """A chat identity's link to a platform party (kind: buyer | consignor | staff)."""

    party_kind: str
    party_id: int


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    party_kind: str
    party_id: int
    expires_at: datetime
    used_at: datetime | None
    used_by: int | None


class AccountRepository(Protocol):
    async def bindings(self, channel: str, external_id: int) -> list[Binding]: ...
    async def bind(self, channel: str, external_id: int, binding: Binding, now: datetime) -> bool:
        """Record the binding; False if it existed already."""
        ...

    async def externals_of(self, channel: str, party_kind: str, party_id: int) -> list[int]: ...
    async def add_token(
        self, token_hash: str, binding: Binding, now: datetime, expires_at: datetime
    ) -> None: ...
    async def token(self, token_hash: str) -> TokenRecord | None:
        """The token row, locked for this transaction."""
        ...

    async def use_token(self, token_id: int, external_id: int, now: datetime) -> None: ...
    async def staff(self, staff_id: int) -> StaffMember | None: ...
    async def add_staff(self, name: str, role: str) -> StaffMember: ...
    async def set_staff_role(self, staff_id: int, role: str) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction; repositories hang off it and never commit themselves."""

    @property
    def parties(self) -> PartyRepository: ...
    @property
    def orders(self) -> OrderRepository: ...
    @property
    def claims(self) -> ClaimRepository: ...
    @property
    def money(self) -> MoneyRepository: ...
    @property
    def shipments(self) -> ShipmentRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def accounts(self) -> AccountRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
JSON = dict[str, Any]


class StatsRepository(Protocol):
    """The dashboard's aggregate questions (see :mod:`workflow.stats`): each is answered with
    GROUP BY in the database, one row per group, never by loading claims one by one.

    Not a member of the unit of work: storage's implementation takes a session of its own or
    the unit of work's. States are always passed in, read off the lifecycle table.
    """

    async def open_claims(self, states: Sequence[str]) -> Sequence[StageCount]:
        """Claims now in each of ``states``, per claim type (groups with claims only)."""
        ...

    async def opened_per_day(self, since: datetime) -> Mapping[date, int]:
        """Claims filed per UTC day from ``since`` on."""
        ...

    async def resolved_per_day(self, since: datetime, states: Sequence[str]) -> Mapping[date, int]:
        """Claims that reached one of ``states`` (terminal ones) per UTC day from ``since``."""
        ...

    async def resolution_histogram(self, states: Sequence[str]) -> Sequence[DurationBucket]:
        """Claims now in ``states``, by type and whole minutes from filing to closing."""
        ...

    async def return_rates(
        self, by: Literal["consignor", "category"], claim_type: str, dropped: Sequence[str]
    ) -> Sequence[ReturnRate]:
        """Per consignor or item category that sold anything: units sold (order lines) and
        units under ``claim_type`` claims not in ``dropped`` states."""
        ...

    async def reason_counts(self) -> Mapping[str, int]:
        """Claims per reason (every claim ever filed)."""
        ...

    async def refunded_by_reason(self) -> Sequence[tuple[str, str, int]]:
        """(reason, currency, amount) of succeeded refunds, per claim reason and currency."""
        ...

    async def breaches(self, rules: Sequence[SlaRule], now: datetime) -> Mapping[str, int]:
        """Per rule kind: claims in the rule's states whose deadline column is before ``now``."""
        ...

    async def overdue_shipments(self, now: datetime) -> int:
        """Paid orders not shipped by their ``ship_by`` deadline."""
        ...

    def claim_rows(self, batch: int = 1000) -> AsyncIterator[ClaimRow]:
        """Every claim, by id, read in batches (for the export; memory stays flat)."""
        ...
