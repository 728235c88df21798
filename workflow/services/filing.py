"""Filing a claim: the after-sales entry, from a buyer, staff, the system or a carrier.

A claim concerns the items of exactly one consignor: only that consignor hears of it, sees
its lines and answers its compensation proposal, and its settlement is theirs alone. A buyer
may still pick items of several consignors in one go: :func:`file_claims` files one claim
per consignor from such a draft, all or nothing. :func:`file_claim` refuses a draft that
spans consignors, so no path can open a claim that two consignors would share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from workflow import lifecycle
from workflow.claims import (
    MAX_DESCRIPTION_CHARS,
    MAX_EVIDENCE_ITEMS,
    Actor,
    AuditEvent,
    ClaimDraft,
    ClaimRecord,
    ClaimType,
    LineRequest,
    Reason,
    Role,
    Source,
)
from workflow.errors import Forbidden, InvalidClaim, NotFound
from workflow.ports import UnitOfWork
from workflow.rules import claim_window_open
from workflow.services.common import Env, notify

FILE_TRIGGER = "file"
SOURCE_OF_ROLE = {
    Role.BUYER: Source.BUYER,
    Role.SYSTEM: Source.SYSTEM,
    Role.CARRIER: Source.CARRIER,
}


@dataclass(frozen=True, slots=True)
class _CheckedLine:
    request: LineRequest
    consignor_id: int
    value: int


@dataclass(frozen=True, slots=True)
class _Checked:
    """A draft that holds together, with what opening its claim(s) needs."""

    owner: int
    currency: str
    lines: tuple[_CheckedLine, ...]

    def by_consignor(self) -> list[tuple[_CheckedLine, ...]]:
        """The lines grouped per consignor, in the order the draft first names each."""
        groups: dict[int, list[_CheckedLine]] = {}
        for line in self.lines:
            groups.setdefault(line.consignor_id, []).append(line)
        return [tuple(group) for group in groups.values()]


async def file_claim(
    uow: UnitOfWork, env: Env, actor: Actor, draft: ClaimDraft, buyer_id: int | None = None
) -> ClaimRecord:
    """Validate a draft against the buyer's orders and open the claim in ``submitted``.

    Quantities are checked against what is still claimable on each order line (units under a
    claim that was not rejected, withdrawn or expired cannot be claimed twice). A draft whose
    items belong to several consignors is refused (``several_consignors``): file it with
    :func:`file_claims`.
    """
    checked = await _check(uow, env, actor, draft, buyer_id)
    if len(checked.by_consignor()) > 1:
        raise InvalidClaim("several_consignors")
    return await _open(uow, env, actor, draft, checked, checked.lines)


async def file_claims(
    uow: UnitOfWork, env: Env, actor: Actor, draft: ClaimDraft, buyer_id: int | None = None
) -> list[ClaimRecord]:
    """File a draft as one claim per consignor whose items it names (usually just one).

    Every claim gets the draft's type, reason, description and evidence. The whole draft is
    checked before anything is written, so either every claim is opened or none is.
    """
    checked = await _check(uow, env, actor, draft, buyer_id)
    claims = [
        await _open(uow, env, actor, draft, checked, group) for group in checked.by_consignor()
    ]
    if len(claims) > 1:  # review weighs them as one filing (total amount, one in the count)
        for claim in claims:
            claim.filing_id = claims[0].id
    return claims


async def _check(
    uow: UnitOfWork, env: Env, actor: Actor, draft: ClaimDraft, buyer_id: int | None
) -> _Checked:
    owner = _owner(actor, buyer_id)
    expected_source = SOURCE_OF_ROLE.get(actor.role, Source.STAFF)
    if draft.source is not expected_source:
        raise Forbidden(f"source {draft.source.value} cannot be used by {actor.role.value}")
    if await uow.parties.buyer(owner) is None:
        raise NotFound("buyer", owner)
    _check_texts(draft)
    if not draft.lines:
        raise InvalidClaim("no_lines")
    if len({line.order_line_id for line in draft.lines}) != len(draft.lines):
        raise InvalidClaim("duplicate_line")
    if draft.reason is Reason.NOT_RECEIVED and draft.claim_type is not ClaimType.REFUND_ONLY:
        raise InvalidClaim("not_received_needs_refund_only")

    currency: str | None = None
    lines = []
    for request in draft.lines:
        line = await uow.orders.line(request.order_line_id)
        order = await uow.orders.get(line.order_id) if line is not None else None
        if line is None or order is None or order.buyer_id != owner:
            raise NotFound("order_line", request.order_line_id)
        if currency is not None and order.currency != currency:
            raise InvalidClaim("mixed_currencies")
        currency = order.currency
        if request.quantity <= 0:
            raise InvalidClaim("bad_quantity", line=line.id)
        claimable = line.quantity - await uow.claims.claimed_quantity(line.id)
        if request.quantity > claimable:
            raise InvalidClaim("quantity_exceeds", line=line.id, claimable=claimable)
        if draft.claim_type is not ClaimType.REFUND_ONLY and order.delivered_at is None:
            raise InvalidClaim("not_delivered_yet", order=order.external_ref)
        # Buyers claim within the after-sales period; staff may open one for them later.
        if actor.role is Role.BUYER and not claim_window_open(
            order.delivered_at, env.clock.now(), env.policy
        ):
            raise InvalidClaim(
                "window_closed", order=order.external_ref, days=env.policy.claim_window.days
            )
        item = await uow.orders.item(line.item_id)
        if item is None:
            raise NotFound("item", line.item_id)
        lines.append(_CheckedLine(request, item.consignor_id, line.unit_price * request.quantity))
    assert currency is not None
    return _Checked(owner, currency, tuple(lines))


async def _open(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    draft: ClaimDraft,
    checked: _Checked,
    lines: tuple[_CheckedLine, ...],
) -> ClaimRecord:
    """Write one claim of ``lines`` (all of one consignor), its audit row and its messages."""
    now = env.clock.now()
    part = replace(draft, lines=tuple(line.request for line in lines))
    amount = sum(line.value for line in lines)
    claim = await uow.claims.add(checked.owner, part, checked.currency, amount, now)
    for line in lines:
        await uow.claims.add_line(
            claim.id, line.request.order_line_id, line.request.quantity, line.value
        )
    if draft.evidence:
        await uow.claims.add_evidence(claim.id, draft.evidence, now)
    await uow.claims.add_audit(
        AuditEvent(
            claim_id=claim.id,
            version=claim.version,
            from_status="",
            to_status=lifecycle.INITIAL,
            trigger=FILE_TRIGGER,
            actor=actor.label(),
            at=now,
            note=draft.source.value,
        )
    )
    params = {"amount": amount, "currency": checked.currency, "source": draft.source.value}
    await notify(uow, env, claim, "", FILE_TRIGGER, actor, params)
    return claim


def _owner(actor: Actor, buyer_id: int | None) -> int:
    if actor.role is Role.BUYER:
        if actor.party_id is None or (buyer_id is not None and buyer_id != actor.party_id):
            raise Forbidden("buyers file claims for themselves")
        return actor.party_id
    if actor.is_staff or actor.role in (Role.SYSTEM, Role.CARRIER):
        if buyer_id is None:
            raise InvalidClaim("buyer_required")
        return buyer_id
    raise Forbidden("consignors do not file claims")


def _check_texts(draft: ClaimDraft) -> None:
    if len(draft.description) > MAX_DESCRIPTION_CHARS:
        raise InvalidClaim("description_too_long", limit=MAX_DESCRIPTION_CHARS)
    if len(draft.evidence) > MAX_EVIDENCE_ITEMS:
        raise InvalidClaim("too_much_evidence", limit=MAX_EVIDENCE_ITEMS)
    if draft.reason is Reason.OTHER and not draft.description.strip():
        raise InvalidClaim("description_required")
