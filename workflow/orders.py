"""Orders coming in from the platform: the shape of one order to import, and its validation.

Rows are checked here, without I/O, so that a bad row is reported with its line number and a
reason while the good rows around it are kept. Amounts arrive as decimal strings ("12.30") and
are parsed into minor units without ever going through a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workflow.errors import DomainError
from workflow.money import MINOR_UNITS, Money

# The most the storage's columns hold: a line's quantity (a 32-bit integer) and an amount in
# minor units (64-bit). A larger value is the row's fault, reported with it, not a database
# failure that takes the orders imported alongside down with it.
MAX_QUANTITY = 2**31 - 1
MAX_AMOUNT = 2**63 - 1
# The key under which a CSV reader puts the cells of a row beyond the header's columns
# (``csv.DictReader(restkey=EXTRA_CELLS)``): an unquoted "1,299.00" is two cells, and every
# cell after it would be read as the wrong column. Empty extra cells (a trailing comma on
# every row) misread nothing and are let through.
EXTRA_CELLS = "\x00extra cells"


@dataclass(frozen=True, slots=True)
class LineImport:
    sku: str
    title: str
    category: str
    consignor_ref: str
    consignor_name: str
    quantity: int
    unit_price: int
    commission: int


@dataclass(frozen=True, slots=True)
class OrderImport:
    order_ref: str
    buyer_ref: str
    buyer_name: str
    currency: str
    paid_at: datetime
    ship_by: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: tuple[LineImport, ...]
    first_line_no: int = 0

    @property
    def paid_amount(self) -> int:
        return sum(line.unit_price * line.quantity for line in self.lines)

    @property
    def shipping_state(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        return "shipped" if self.shipped_at is not None else "pending"


@dataclass(frozen=True, slots=True)
class RowError:
    line_no: int
    order_ref: str
    reason: str


class RowInvalid(ValueError):
    pass


def _cell(row: Mapping[str, object], key: str) -> str:
    """A value as text: a JSON number 0 is "0", not a missing value; null is missing."""
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _text(row: Mapping[str, object], key: str, *, required: bool = True, limit: int = 200) -> str:
    value = _cell(row, key)
    if required and not value:
        raise RowInvalid(f"{key} is missing")
    if len(value) > limit:
        raise RowInvalid(f"{key} is longer than {limit} characters")
    return value


def _when(row: Mapping[str, object], key: str, *, required: bool = False) -> datetime | None:
    raw = _text(row, key, required=required)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowInvalid(f"{key} is not an ISO date-time: {raw!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _amount(row: Mapping[str, object], key: str, currency: str) -> int:
    raw = _text(row, key)
    try:
        return Money.parse(raw, currency).amount
    except DomainError as exc:
        raise RowInvalid(f"{key} is not an amount: {raw!r}") from exc


def _same_in(key: str) -> Callable[[str], str]:
    """How two rows' cells are compared: a currency code in any case is the same currency
    ("cny" and "CNY"), as the order's header reads it."""
    return str.upper if key == "currency" else str


def parse_line(row: Mapping[str, object], currency: str) -> LineImport:
    quantity_raw = _text(row, "quantity")
    if not (quantity_raw.isascii() and quantity_raw.isdigit()) or int(quantity_raw) <= 0:
        raise RowInvalid(f"quantity must be a positive whole number, not {quantity_raw!r}")
    quantity = int(quantity_raw)
    if quantity > MAX_QUANTITY:
        raise RowInvalid(f"quantity is more than {MAX_QUANTITY}")
    unit_price = _amount(row, "unit_price", currency)
    commission = _amount(row, "commission", currency)
    if unit_price * quantity > MAX_AMOUNT:
        raise RowInvalid("the line's price (unit_price × quantity) is too large")
    if commission > unit_price * quantity:
        raise RowInvalid("commission is more than the line's price")
    return LineImport(
        sku=_text(row, "sku", limit=64),
        title=_text(row, "title", limit=300),
        category=_text(row, "category", required=False, limit=64) or "general",
        consignor_ref=_text(row, "consignor_ref", limit=64),
        consignor_name=_text(row, "consignor_name", required=False) or _text(row, "consignor_ref"),
        quantity=quantity,
        unit_price=unit_price,
        commission=commission,
    )


@dataclass(frozen=True, slots=True)
class _Header:
    order_ref: str
    buyer_ref: str
    buyer_name: str
    currency: str
    paid_at: datetime
    ship_by: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None


def parse_header(row: Mapping[str, object], shipping_sla: timedelta) -> _Header:
    currency = _text(row, "currency").upper()
    if currency not in MINOR_UNITS:
        raise RowInvalid(f"unknown currency {currency!r}")
    paid_at = _when(row, "paid_at", required=True)
    assert paid_at is not None
    shipped_at = _when(row, "shipped_at")
    delivered_at = _when(row, "delivered_at")
    if delivered_at is not None and shipped_at is None:
        raise RowInvalid("delivered_at without shipped_at")
    if shipped_at is not None and shipped_at < paid_at:
        raise RowInvalid("shipped before it was paid")
    if delivered_at is not None and shipped_at is not None and delivered_at < shipped_at:
        raise RowInvalid("delivered before it was shipped")
    return _Header(
        order_ref=_text(row, "order_ref", limit=64),
        buyer_ref=_text(row, "buyer_ref", limit=64),
        buyer_name=_text(row, "buyer_name", required=False) or _text(row, "buyer_ref"),
        currency=currency,
        paid_at=paid_at,
        ship_by=_when(row, "ship_by") or paid_at + shipping_sla,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
    )


def group_rows(
    rows: Iterable[tuple[int, Mapping[str, object]]],
    shipping_sla: timedelta = timedelta(hours=48),
) -> Iterator[OrderImport | RowError]:
    """Flat rows (one per order line, CSV-style) → orders; consecutive rows share an order.

    A row that fails makes its whole order fail (an order is imported whole or not at all).
    """
    current: list[tuple[int, Mapping[str, object]]] = []
    seen: set[str] = set()

    def flush() -> Iterator[OrderImport | RowError]:
        if current:
            yield from _build(current, shipping_sla, seen)

    for line_no, row in rows:
        ref = _cell(row, "order_ref")
        if current and ref != _cell(current[0][1], "order_ref"):
            yield from flush()
            current = []
        current.append((line_no, row))
    yield from flush()


def orders_from_documents(
    documents: Iterable[tuple[int, Mapping[str, object]]],
    shipping_sla: timedelta = timedelta(hours=48),
) -> Iterator[OrderImport | RowError]:
    """Nested orders (JSON-style: an order with a ``lines`` list) → orders."""
    seen: set[str] = set()
    for number, document in documents:
        lines = document.get("lines")
        if not isinstance(lines, list) or not lines:
            yield RowError(number, _cell(document, "order_ref"), "lines is missing or empty")
            continue
        flat = [(number, {**document, **line}) for line in lines if isinstance(line, Mapping)]
        if len(flat) != len(lines):
            yield RowError(number, _cell(document, "order_ref"), "a line is not an object")
            continue
        yield from _build(flat, shipping_sla, seen)


def _build(
    rows: Sequence[tuple[int, Mapping[str, object]]], shipping_sla: timedelta, seen: set[str]
) -> Iterator[OrderImport | RowError]:
    first_no, first = rows[0]
    ref = _cell(first, "order_ref")
    try:
        header = parse_header(first, shipping_sla)
    except RowInvalid as exc:
        yield RowError(first_no, ref, str(exc))
        return
    if ref in seen:
        yield RowError(
            first_no, ref, "order_ref appears again further down, apart from its other rows"
        )
        return
    seen.add(ref)
    lines: list[LineImport] = []
    failed = False
    skus: set[str] = set()
    for line_no, row in rows:
        try:
            extra = row.get(EXTRA_CELLS)
            if isinstance(extra, list) and any(str(cell).strip() for cell in extra):
                raise RowInvalid(
                    "the row has more cells than the header has columns"
                    " (quote a value that holds a comma)"
                )
            for key in ("buyer_ref", "currency", "paid_at"):
                if key in row and _same_in(key)(_cell(row, key)) != _same_in(key)(
                    _cell(first, key)
                ):
                    raise RowInvalid(f"{key} differs from the order's first row")
            line = parse_line(row, header.currency)
            if line.sku in skus:
                raise RowInvalid(f"sku {line.sku} appears twice in the order")
            skus.add(line.sku)
            lines.append(line)
        except RowInvalid as exc:
            failed = True
            yield RowError(line_no, ref, str(exc))
    if not failed and sum(line.unit_price * line.quantity for line in lines) > MAX_AMOUNT:
        failed = True
        yield RowError(first_no, ref, "the order's total is too large")
    if not failed:
        yield OrderImport(
            order_ref=header.order_ref,
            buyer_ref=header.buyer_ref,
            buyer_name=header.buyer_name,
            currency=header.currency,
            paid_at=header.paid_at,
            ship_by=header.ship_by,
            shipped_at=header.shipped_at,
            delivered_at=header.delivered_at,
            lines=tuple(lines),
            first_line_no=first_no,
        )
