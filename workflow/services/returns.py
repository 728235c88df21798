"""Returns and exchanges: waybills, tracking, inspection, and compensation with the consignor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from workflow.claims import (
    CARRIER,
    SYSTEM,
    Actor,
    ClaimRecord,
    ClaimType,
    Inspection,
    Liability,
    ListingStatus,
    OutboxMessage,
    Role,
    ShipmentKind,
    ShipmentRecord,
    ShipmentStatus,
)
from workflow.errors import Forbidden, InvalidAmount, InvalidClaim, NotFound
from workflow.ledger import Outcome
from workflow.lifecycle import DROPPED_STATES, can_fire
from workflow.ports import UnitOfWork, Waybill
from workflow.services.common import Env, load_claim, require_role, require_staff, transition
from workflow.services.refunds import request_refunds
from workflow.services.settlement import outcome_of


def _waybill_step(claim: ClaimRecord) -> str:
    return "issue_waybill" if claim.claim_type == ClaimType.RETURN_REFUND else "ship_replacement"


async def waybill_wanted(uow: UnitOfWork, claim_id: int) -> bool:
    """Whether the claim still waits for its waybill. Asked before the carrier is: a claim the
    buyer withdrew while the carrier was down must not get a label printed, let alone a
    replacement parcel sent to them."""
    claim = await uow.claims.get(claim_id)
    return claim is not None and can_fire(claim, _waybill_step(claim), SYSTEM.role)


async def apply_waybill(uow: UnitOfWork, env: Env, claim_id: int, waybill: Waybill) -> bool:
    """The carrier issued a waybill (after commit, by idempotency key): record it and move on."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    ctype = ClaimType(claim.claim_type)
    if not can_fire(claim, _waybill_step(claim), SYSTEM.role):
        return False
    now = env.clock.now()
    if ctype is ClaimType.RETURN_REFUND:
        await uow.shipments.add(ShipmentKind.RETURN.value, claim.id, None, waybill, now)
        # Set before the step: entering awaiting_return arms the buyer's reminder from it.
        claim.return_by = now + env.policy.return_deadline
        await transition(
            uow,
            env,
            claim,
            "issue_waybill",
            SYSTEM,
            params={
                "tracking_number": waybill.tracking_number,
                "qr_payload": waybill.qr_payload,
                "carrier": waybill.carrier,
                "return_by": claim.return_by.isoformat(),
            },
        )
    else:
        await uow.shipments.add(ShipmentKind.REPLACEMENT.value, claim.id, None, waybill, now)
        await transition(
            uow,
            env,
            claim,
            "ship_replacement",
            SYSTEM,
            params={"tracking_number": waybill.tracking_number, "carrier": waybill.carrier},
        )
    return True


async def mark_return_shipped(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None = None
) -> ClaimRecord:
    """The buyer says they handed the parcel over (or the carrier's scan says so)."""
    if actor.role not in (Role.BUYER, Role.CARRIER, Role.SYSTEM):
        raise Forbidden("buyer or carrier only")
    claim = await load_claim(uow, actor, claim_id, version)
    await transition(uow, env, claim, "ship_return", actor)
    claim.return_by = None
    await _set_shipment_status(uow, env, claim.id, ShipmentStatus.IN_TRANSIT)
    return claim


async def tracking_update(
    uow: UnitOfWork, env: Env, tracking_number: str, status: ShipmentStatus
) -> bool:
    """A carrier tracking event: moves the claim its shipment belongs to, if it is due to move
    (or tells of a return that arrived too late to). Returns whether anything was recorded."""
    shipment = await uow.shipments.by_tracking(tracking_number)
    if shipment is None or shipment.claim_id is None:
        raise NotFound("shipment", tracking_number)
    claim = await load_claim(uow, CARRIER, shipment.claim_id)
    moved = False
    while (trigger := _next_move(claim, status)) is not None:
        await transition(
            uow, env, claim, trigger, CARRIER, params={"tracking_number": tracking_number}
        )
        moved = True
    if moved:
        claim.return_by = None
        shipment.status = status.value
        if can_fire(claim, "settle", Role.SYSTEM):  # a delivered replacement: settle next
            claim.settle_due_at = env.clock.now() + env.policy.settlement_hold
        return True
    return await _late_return(uow, env, claim, shipment, status)


# A return parcel delivered to the warehouse after its claim ended with nothing for the buyer
# (expired, withdrawn): staff and the buyer are told (``staff.late_return``, ``claim.…``).
LATE_RETURN = "late_return"


async def _late_return(
    uow: UnitOfWork,
    env: Env,
    claim: ClaimRecord,
    shipment: ShipmentRecord,
    status: ShipmentStatus,
) -> bool:
    """The buyer sent the item back after all (say, after the return deadline expired the
    claim): no step is left to take, but the goods are at the warehouse and the buyer has
    nothing back for them. Staff are told to book the item in and settle with the buyer, the
    buyer that the parcel arrived and will be looked into, once (the parcel is then no longer
    tracked)."""
    late = (
        status is ShipmentStatus.DELIVERED
        and shipment.kind == ShipmentKind.RETURN.value
        and shipment.status != status.value
        and claim.status in DROPPED_STATES
    )
    if not late:
        return False
    shipment.status = status.value
    now = env.clock.now()
    params = {"claim_id": claim.id, "tracking_number": shipment.tracking_number}
    key = f"{LATE_RETURN}:{shipment.tracking_number}"
    for kind, recipient, template in (
        ("buyer", claim.buyer_id, f"claim.{LATE_RETURN}"),
        ("staff", None, f"staff.{LATE_RETURN}"),
    ):
        await uow.outbox.add(
            OutboxMessage(
                dedupe_key=f"{key}:{kind}" + (f":{recipient}" if recipient else ""),
                recipient_kind=kind,
                recipient_id=recipient,
                template=template,
                params=params,
                claim_id=claim.id,
            ),
            now,
        )
    return True


# What a parcel scan can mean for its claim, in the order the steps happen.
SCAN_MOVES: dict[ShipmentStatus, tuple[str, ...]] = {
    ShipmentStatus.IN_TRANSIT: ("ship_return",),
    ShipmentStatus.DELIVERED: ("ship_return", "receive_return", "deliver_replacement"),
}


def _next_move(claim: ClaimRecord, status: ShipmentStatus) -> str | None:
    return next((t for t in SCAN_MOVES.get(status, ()) if can_fire(claim, t, Role.CARRIER)), None)


async def receive_return(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None = None
) -> ClaimRecord:
    """Staff booked the parcel in at the warehouse without a carrier scan."""
    require_staff(actor)
    claim = await load_claim(uow, actor, claim_id, version)
    await transition(uow, env, claim, "receive_return", actor)
    await _set_shipment_status(uow, env, claim.id, ShipmentStatus.DELIVERED)
    return claim


async def _set_shipment_status(
    uow: UnitOfWork, env: Env, claim_id: int, status: ShipmentStatus
) -> None:
    for shipment in await uow.shipments.for_claim(claim_id):
        if shipment.kind == ShipmentKind.RETURN.value:
            shipment.status = status.value


async def inspect_return(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    claim_id: int,
    version: int | None,
    results: Mapping[int, Inspection],
    liability: Liability | None = None,
    compensation: int | None = None,
) -> ClaimRecord:
    """Inspection: intact lines are relisted and refunded; damage opens a compensation proposal.

    ``results`` maps each claim line id to intact or damaged. With any damage, ``liability``
    and the proposed ``compensation`` (minor units, at most what the damaged lines are worth)
    are required.
    """
    require_staff(actor)
    claim = await load_claim(uow, actor, claim_id, version)
    lines = await uow.claims.lines(claim.id)
    if set(results) != {line.id for line in lines}:
        raise InvalidClaim("inspect_every_line")
    damaged = any(results[line.id] is Inspection.DAMAGED for line in lines)
    if damaged and (liability is None or compensation is None):
        raise InvalidClaim("damage_needs_liability_and_amount")
    most = sum(line.amount for line in lines if results[line.id] is Inspection.DAMAGED)
    if compensation is not None and not 0 <= compensation <= most:
        raise InvalidAmount(str(compensation))

    await transition(
        uow,
        env,
        claim,
        "inspect",
        actor,
        params={
            "intact": sum(1 for v in results.values() if v is Inspection.INTACT),
            "damaged": sum(1 for v in results.values() if v is Inspection.DAMAGED),
        },
    )
    for line in lines:
        line.inspection = results[line.id].value
        order_line = await uow.orders.line(line.order_line_id)
        assert order_line is not None
        item = await uow.orders.item(order_line.item_id, lock=True)
        assert item is not None
        if results[line.id] is Inspection.INTACT:
            item.quantity_on_hand += line.quantity
            item.status = ListingStatus.RELISTED.value
        else:
            item.damaged_quantity += line.quantity
            item.status = ListingStatus.DAMAGED.value

    if not damaged:
        await transition(
            uow,
            env,
            claim,
            "refund_intact",
            actor,
            params={"amount": claim.claimed_amount, "refund": claim.claimed_amount},
        )
        await request_refunds(uow, env, claim, claim.claimed_amount)
        return claim
    assert liability is not None
    assert compensation is not None
    claim.liability = liability.value
    claim.compensation_amount = compensation
    claim.respond_by = env.clock.now() + env.policy.compensation_deadline
    await transition(
        uow,
        env,
        claim,
        "propose_compensation",
        actor,
        params={
            "amount": compensation,
            "liability": liability.value,
            "respond_by": claim.respond_by.isoformat(),
        },
    )
    return claim


async def accept_compensation(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None = None
) -> ClaimRecord:
    require_role(actor, Role.CONSIGNOR)
    claim = await _sole_consignors_claim(uow, actor, claim_id, version)
    refund = await _buyer_refund(uow, env, claim)
    await transition(
        uow,
        env,
        claim,
        "accept_compensation",
        actor,
        params={"amount": claim.compensation_amount, "refund": refund},
    )
    claim.respond_by = None
    await request_refunds(uow, env, claim, refund)
    return claim


async def dispute_compensation(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None, counter_offer: int
) -> ClaimRecord:
    require_role(actor, Role.CONSIGNOR)
    claim = await _sole_consignors_claim(uow, actor, claim_id, version)
    if not 0 <= counter_offer <= compensation_cap(await uow.claims.lines(claim.id)):
        raise InvalidAmount(str(counter_offer))
    claim.counter_offer_amount = counter_offer
    await transition(
        uow,
        env,
        claim,
        "dispute_compensation",
        actor,
        params={"amount": claim.compensation_amount, "counter_offer": counter_offer},
    )
    claim.respond_by = None
    claim.review_due_at = env.clock.now() + env.policy.review_sla
    return claim


async def escalate_compensation(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Sweep: the consignor did not answer the proposal in time."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    due = claim.respond_by is not None and claim.respond_by <= now
    if not (due and can_fire(claim, "escalate_compensation", SYSTEM.role)):
        return False
    await transition(
        uow,
        env,
        claim,
        "escalate_compensation",
        SYSTEM,
        rule="compensation_deadline",
        params={"amount": claim.compensation_amount, "liability": claim.liability},
    )
    claim.respond_by = None
    claim.review_due_at = now + env.policy.review_sla
    return True


async def resolve_compensation(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, version: int | None, amount: int
) -> ClaimRecord:
    require_staff(actor)
    claim = await load_claim(uow, actor, claim_id, version)
    if not 0 <= amount <= compensation_cap(await uow.claims.lines(claim.id)):
        raise InvalidAmount(str(amount))
    claim.compensation_amount = amount
    refund = await _buyer_refund(uow, env, claim)
    await transition(
        uow,
        env,
        claim,
        "resolve_compensation",
        actor,
        params={"amount": amount, "liability": claim.liability, "refund": refund},
    )
    claim.review_due_at = None
    await request_refunds(uow, env, claim, refund)
    return claim


class InspectedLine(Protocol):
    @property
    def amount(self) -> int: ...

    @property
    def inspection(self) -> str | None: ...


def compensation_cap(lines: Iterable[InspectedLine]) -> int:
    """The most a compensation can be: what the lines found damaged are worth.

    A proposal, a counter-offer and a staff decision are all bounded by it, never by the
    whole claim (intact lines are refunded and relisted, not compensated).
    """
    return sum(line.amount for line in lines if line.inspection == Inspection.DAMAGED.value)


async def _sole_consignors_claim(
    uow: UnitOfWork, actor: Actor, claim_id: int, version: int | None
) -> ClaimRecord:
    """The claim, if the acting consignor is its only one.

    Filing never opens a claim on two consignors' items; should one exist all the same (say,
    filed before that rule), no consignor may answer for the other: staff decide it once the
    response deadline passes.
    """
    claim = await load_claim(uow, actor, claim_id, version)
    if await uow.claims.consignor_ids(claim.id) != [actor.party_id]:
        raise Forbidden("the claim covers another consignor's items")
    return claim


async def _buyer_refund(uow: UnitOfWork, env: Env, claim: ClaimRecord) -> int:
    """What the buyer gets back once the compensation is agreed (minor units). Known before
    the step, so its messages can say so: with the buyer liable for all the item is worth it
    is nothing, and no party may be told of a refund (``refund`` param, see
    :mod:`workflow.notifications`)."""
    outcome: Outcome = await outcome_of(uow, env, claim)
    return outcome.buyer_refund()


async def expire_return(uow: UnitOfWork, env: Env, claim_id: int) -> bool:
    """Sweep: the return was not shipped by its deadline (and no scan of it came within the
    grace a carrier's scans may take, ``ReviewPolicy.return_scan_grace``)."""
    claim = await load_claim(uow, SYSTEM, claim_id)
    now = env.clock.now()
    due = claim.return_by is not None and claim.return_by + env.policy.return_scan_grace <= now
    if not (due and can_fire(claim, "expire", SYSTEM.role)):
        return False
    await transition(uow, env, claim, "expire", SYSTEM, rule="return_deadline")
    claim.return_by = None
    return True
