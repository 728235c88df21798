"""Who is told what: domain events in, outbox messages out — decided here and nowhere else.

Services record a :class:`ClaimTransitioned` for every step; this module turns it into one
message per party that should hear of it, in that party's words (``claim.<state>`` for the
buyer, ``consignor.<state>`` for the consignor, ``staff.<state>`` for staff). Buyers and consignors follow every stage of their
claims; staff hear of what needs a person. Every message carries a dedupe key built from the
claim and its version, so a retried use case or a redelivered update never tells anyone twice.

A party who took a step themselves (a buyer filing, answering, sending the return back or
withdrawing; a consignor answering a compensation proposal) was answered in the chat they
acted in, and that answer is their record: the message to them about that step names the chat
(:data:`ORIGIN_CHAT`) so delivery sends it to their other chats only.

One use case may take several steps at once (approved, and the refund starts): the messages
to one party about one claim written in one transaction are told as one
(:data:`TOLD_WITH`, set by the outbox), each keeping its own dedupe key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflow.claims import Liability, OutboxMessage, Source
from workflow.ledger import compensation_charged
from workflow.lifecycle import REFUNDED, REFUNDING, WAITING_FOR_STAFF

# Internal bookkeeping steps the buyer need not hear about separately.
QUIET_FOR_BUYER = frozenset({"settle"})
# The states a refund goes through; a step into them with nothing to refund (``refund`` 0:
# the buyer is liable for damage worth all they paid) is told once, as such, when it ends.
REFUND_STATES = (REFUNDING, REFUNDED)
# Payload key of a message written in the same transaction as an earlier one to the same
# party about the same claim: that one's dedupe key. Delivery tells them as one message
# (e.g. "approved" and "the refund is being processed"), each text on its own line.
TOLD_WITH = "told_with"
# Payload key of a message to the party who took the step: the chat they took it in, where
# their answer already told them (delivery leaves that chat out; never held for a chat).
ORIGIN_CHAT = "origin_chat"


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
    actor_party: int | None = None  # the buyer's or consignor's id, when one of them acted
    origin_chat: int | None = None  # the chat they acted in, when a front end said so


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
    if _nothing_refunded(event) and event.to_status == REFUNDED:
        return "consignor.nothing_refunded"
    if trigger == "settle" and params.get("consignor_total") == 0:
        return "consignor.settled_nothing"  # "0.00 on your account" would read as a balance
    if trigger == "escalate_compensation":
        return "consignor.compensation_escalated"
    if trigger == "resolve_compensation":
        if not params.get("amount"):
            return "consignor.compensation_resolved_none"
        way = "charged" if compensation_charged(liability) else "credited"
        return f"consignor.compensation_resolved_{way}"
    return f"consignor.{event.to_status}"


def _nothing_refunded(event: ClaimTransitioned) -> bool:
    return event.to_status in REFUND_STATES and event.params.get("refund") == 0


def buyer_template(event: ClaimTransitioned) -> str | None:
    """The buyer's words for a step (``claim.<state>``; a claim opened for them by staff, the
    system or the carrier says who opened it), or None when the step is not theirs
    to hear of: bookkeeping, or a refund of nothing starting (it ends in the same moment, and
    that is when they are told there is nothing to refund, never that a refund is paid)."""
    if event.trigger in QUIET_FOR_BUYER:
        return None
    source = event.params.get("source", Source.BUYER.value)
    if event.trigger == "file" and source != Source.BUYER.value:
        return f"claim.submitted_by_{source}"  # opened for them: they are told who and why
    if _nothing_refunded(event):
        return "claim.nothing_refunded" if event.to_status == REFUNDED else None
    return f"claim.{event.to_status}"


def _consignor_hears(event: ClaimTransitioned, template: str) -> bool:
    """A refund of nothing starting is not news to the consignor either (its end is)."""
    return not (_nothing_refunded(event) and template == f"consignor.{REFUNDING}")


def _params_for(
    event: ClaimTransitioned, base: dict[str, Any], kind: str, party_id: int
) -> dict[str, Any]:
    """The message's parameters; for the party who took the step, also where they took it."""
    own_step = event.actor == kind and event.actor_party == party_id
    if own_step and event.origin_chat is not None:
        return {**base, ORIGIN_CHAT: event.origin_chat}
    return base


def messages_for(event: ClaimTransitioned) -> list[OutboxMessage]:
    base = {
        "claim_id": event.claim_id,
        "from": event.from_status,
        "to": event.to_status,
        "trigger": event.trigger,
        **event.params,
    }
    out: list[OutboxMessage] = []
    template = buyer_template(event)
    if template is not None:
        out.append(
            OutboxMessage(
                dedupe_key=f"claim:{event.claim_id}:v{event.version}:buyer:{event.buyer_id}",
                recipient_kind="buyer",
                recipient_id=event.buyer_id,
                template=template,
                params=_params_for(event, base, "buyer", event.buyer_id),
                claim_id=event.claim_id,
            )
        )
    template = consignor_template(event)
    for consignor_id in event.consignor_ids if _consignor_hears(event, template) else ():
        out.append(
            OutboxMessage(
                dedupe_key=f"claim:{event.claim_id}:v{event.version}:consignor:{consignor_id}",
                recipient_kind="consignor",
                recipient_id=consignor_id,
                template=template,
                params=_params_for(event, base, "consignor", consignor_id),
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
