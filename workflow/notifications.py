"""Who is told what: domain events in, outbox messages out — decided here and nowhere else.

Services record a :class:`ClaimTransitioned` for every step; this module turns it into one
message per party that should hear of it, in that party's words (``claim.<state>`` for the
buyer, ``consignor.<state>`` for the consignor, ``staff.<state>`` for staff). Buyers and consignors follow every stage of their
claims; staff hear of what needs a person. Every message carries a dedupe key built from the
claim and its version, so a retried use case or a redelivered update never tells anyone twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflow.claims import Liability, OutboxMessage, Source
from workflow.ledger import compensation_charged
from workflow.lifecycle import WAITING_FOR_STAFF

# Internal bookkeeping steps the buyer need not hear about separately.
QUIET_FOR_BUYER = frozenset({"settle"})


@dataclass(frozen=True, slots=True)
class ClaimTransitioned:
    claim_id: int
    version: int
    from_status: str
    to_status: str
    trigger: str
    actor: str
    buyer_id: int
    consignor_ids: tuple[int, ...]
    params: dict[str, Any]


def consignor_template(event: ClaimTransitioned) -> str:
    """The consignor's words for a step: ``consignor.<state>``, except where the same state
    means different things to them — who filed the claim, which way compensation goes (taken
    from them, or credited to them), a deadline passing rather than a dispute, and what staff
    decided."""
    params, trigger = event.params, event.trigger
    liability = Liability(params.get("liability") or Liability.CONSIGNOR.value)
    if trigger == "file" and params.get("source", Source.BUYER.value) != Source.BUYER.value:
        return f"consignor.submitted_by_{params['source']}"
    if trigger == "propose_compensation" and not compensation_charged(liability):
        return f"consignor.compensation_proposed_{liability.value}"
    if trigger == "escalate_compensation":
        return "consignor.compensation_escalated"
    if trigger == "resolve_compensation":
        if not params.get("amount"):
            return "consignor.compensation_resolved_none"
        way = "charged" if compensation_charged(liability) else "credited"
        return f"consignor.compensation_resolved_{way}"
    return f"consignor.{event.to_status}"


def messages_for(event: ClaimTransitioned) -> list[OutboxMessage]:
    base = {
        "claim_id": event.claim_id,
        "from": event.from_status,
        "to": event.to_status,
        "trigger": event.trigger,
        **event.params,
    }
    template = f"claim.{event.to_status}"
    out: list[OutboxMessage] = []
    if event.trigger not in QUIET_FOR_BUYER:
        out.append(
            OutboxMessage(
                dedupe_key=f"claim:{event.claim_id}:v{event.version}:buyer:{event.buyer_id}",
                recipient_kind="buyer",
                recipient_id=event.buyer_id,
                template=template,
                params=base,
                claim_id=event.claim_id,
            )
        )
    for consignor_id in event.consignor_ids:
        out.append(
            OutboxMessage(
                dedupe_key=f"claim:{event.claim_id}:v{event.version}:consignor:{consignor_id}",
                recipient_kind="consignor",
                recipient_id=consignor_id,
                template=consignor_template(event),
                params=base,
                claim_id=event.claim_id,
            )
        )
    if event.to_status in WAITING_FOR_STAFF:
        out.append(
            OutboxMessage(
                dedupe_key=f"claim:{event.claim_id}:v{event.version}:staff",
                recipient_kind="staff",
                recipient_id=None,
                template=f"staff.{event.to_status}",
                params=base,
                claim_id=event.claim_id,
            )
        )
    return out
