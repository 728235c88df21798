"""What settlement posts to the consignor ledger, per outcome and liability.

Pure functions from a finished claim to its postings. The rules, in one place:

* the sale is undone (goods came back, the order was never shipped so the goods never left,
  or the buyer is refunded as the consignor's fault):
  ``return_reversal`` takes back the sale credit and ``commission`` gives the platform's
  commission back, line by line — the consignor's net change is ``-(price - commission)``.
  Both fall due with the sale credit they undo, if that is still pending: a sale reversed
  before its money was released reduces what is pending, never what is available;
* damage found at inspection: the agreed ``compensation`` is deducted from the consignor when
  the consignor is liable, and credited to them otherwise (the platform pays, or recovers it
  from the buyer's refund, or books it as a claim against the carrier);
* carrier liability never touches the consignor for the carrier's fault: a carrier claim is
  booked instead;
* a goodwill refund is the platform's, unless staff put it on the consignor (``adjustment``).

Every posting has an idempotency key derived from the claim and line, so settling twice posts
nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from workflow.claims import (
    CarrierClaimPosting,
    ClaimType,
    Inspection,
    LedgerKind,
    LedgerPosting,
    Liability,
    Reason,
)
from workflow.money import Money

DEFAULT_LIABILITY: dict[Reason, Liability] = {
    Reason.NOT_RECEIVED: Liability.PLATFORM,
    Reason.DAMAGED_IN_TRANSIT: Liability.CARRIER,
    Reason.NOT_AS_DESCRIBED: Liability.CONSIGNOR,
    Reason.WRONG_ITEM: Liability.PLATFORM,
    Reason.QUALITY_ISSUE: Liability.CONSIGNOR,
    Reason.NO_REASON_7_DAYS: Liability.CONSIGNOR,
    Reason.OTHER: Liability.PLATFORM,
}


@dataclass(frozen=True, slots=True)
class SettledLine:
    """One claim line with what settlement needs from its order line and item."""

    claim_line_id: int
    order_line_id: int
    consignor_id: int
    quantity: int
    ordered_quantity: int
    unit_price: int
    line_commission: int
    inspection: Inspection | None
    # When the sale credit this line undoes becomes available (None: no such credit found).
    sale_available_at: datetime | None = None
    # What other claims' settlements already undid of the order line: how many of its units,
    # and how much of its commission they gave back.
    units_undone_before: int = 0
    commission_returned_before: int = 0

    @property
    def value(self) -> int:
        return self.unit_price * self.quantity

    @property
    def commission_share(self) -> int:
        """The commission given back for these units: the share of the line's commission
        for every unit undone so far, these included, less what was given back before. Each
        claim rounding its own share would not add up: three claims of one unit each on a
        commission of 0.50 would give back 0.17 three times, 0.51."""
        undone = self.units_undone_before + self.quantity
        due = Money(self.line_commission, "XXX").share(undone, self.ordered_quantity).amount
        return due - self.commission_returned_before


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claim ended, as settlement sees it."""

    claim_id: int
    claim_type: ClaimType
    currency: str
    liability: Liability
    lines: tuple[SettledLine, ...]
    goodwill_amount: int | None = None
    compensation_amount: int | None = None
    carrier: str = "carrier"
    # The order was never shipped: the goods are still on the platform's shelf, so a refund
    # undoes the sale whoever is liable for the delay, and the items are listed again.
    never_shipped: bool = False

    @property
    def returned(self) -> bool:
        return any(line.inspection is not None for line in self.lines)

    @property
    def damaged(self) -> bool:
        return any(line.inspection is Inspection.DAMAGED for line in self.lines)

    @property
    def sale_undone(self) -> bool:
        if self.claim_type is ClaimType.EXCHANGE or self.goodwill_amount is not None:
            return False
        if self.returned or self.never_shipped:
            return True
        return self.liability is Liability.CONSIGNOR

    def buyer_refund(self) -> int:
        """What the buyer gets back: the claimed value, less compensation they are liable for."""
        if self.claim_type is ClaimType.EXCHANGE:
            return 0
        if self.goodwill_amount is not None:
            return self.goodwill_amount
        value = sum(line.value for line in self.lines)
        if self.damaged and self.liability is Liability.BUYER:
            return max(0, value - (self.compensation_amount or 0))
        return value


def compensation_charged(liability: Liability) -> bool:
    """Whether damage compensation is taken from the consignor (they are liable) or, whoever
    else is liable, credited to them. The ledger and the consignor's messages both ask here."""
    return liability is Liability.CONSIGNOR


def split(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` by ``weights`` exactly, each part within one minor unit of its share.

    Largest remainder: every part gets its share rounded down, and the minor units left over
    go one each to the parts whose shares lost the most (the later one on a tie). So no part
    gets more than its share rounded up — a refund split over a claim's orders never puts on
    one order more than its claimed items are worth — and a weight of zero gets nothing.
    """
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    parts = [total * w // whole for w in weights]
    left = total - sum(parts)  # fewer than the parts whose shares were rounded down
    by_loss = sorted(range(len(weights)), key=lambda i: (total * weights[i] % whole, i))
    for i in by_loss[len(by_loss) - left :] if left else ():
        parts[i] += 1
    return parts


def settlement_postings(
    outcome: Outcome, available_at: datetime
) -> tuple[list[LedgerPosting], list[CarrierClaimPosting]]:
    postings: list[LedgerPosting] = []
    carrier_claims: list[CarrierClaimPosting] = []
    cid, cur = outcome.claim_id, outcome.currency

    def post(
        line: SettledLine, kind: LedgerKind, amount: int, memo: str, at: datetime = available_at
    ) -> None:
        if amount:
            postings.append(
                LedgerPosting(
                    consignor_id=line.consignor_id,
                    kind=kind,
                    amount=amount,
                    currency=cur,
                    idempotency_key=f"claim:{cid}:{kind.value}:{line.claim_line_id}",
                    available_at=at,
                    claim_id=cid,
                    order_line_id=line.order_line_id,
                    memo=memo,
                )
            )

    if outcome.sale_undone:
        for line in outcome.lines:
            # Undoing a sale whose credit is still pending takes it out of pending, not out
            # of what the consignor may already spend: it becomes due when the credit would.
            at = max(available_at, line.sale_available_at or available_at)
            post(line, LedgerKind.RETURN_REVERSAL, -line.value, "sale reversed", at)
            post(line, LedgerKind.COMMISSION, line.commission_share, "commission returned", at)

    if outcome.goodwill_amount is not None and outcome.liability is Liability.CONSIGNOR:
        parts = split(outcome.goodwill_amount, [line.value for line in outcome.lines])
        for line, part in zip(outcome.lines, parts, strict=True):
            post(line, LedgerKind.ADJUSTMENT, -part, "goodwill refund charged to consignor")

    if outcome.damaged and outcome.compensation_amount:
        damaged = [line for line in outcome.lines if line.inspection is Inspection.DAMAGED]
        sign = -1 if compensation_charged(outcome.liability) else 1
        parts = split(outcome.compensation_amount, [line.value for line in damaged])
        for line, part in zip(damaged, parts, strict=True):
            post(
                line,
                LedgerKind.COMPENSATION,
                sign * part,
                f"damage, {outcome.liability.value} liable",
            )

    carrier_amount = 0
    if outcome.liability is Liability.CARRIER:
        if outcome.damaged:
            carrier_amount = outcome.compensation_amount or 0
        elif not (outcome.returned or outcome.never_shipped) and outcome.goodwill_amount is None:
            carrier_amount = outcome.buyer_refund()  # lost in transit (a parcel never shipped
            # was never the carrier's)
    if carrier_amount:
        carrier_claims.append(CarrierClaimPosting(cid, outcome.carrier, carrier_amount, cur))
    return postings, carrier_claims
