"""The demo's cases, played through the services with a manual clock and simulated providers.

Used by ``aftersales demo --services`` to show each claim's timeline without a chat, and as a
quick way to fill a database with cases at every stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from bot.demo_data import demo_orders
from storage import tables as t
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from workflow.claims import (
    Actor,
    ClaimDraft,
    ClaimType,
    Inspection,
    Liability,
    LineRequest,
    Reason,
    Role,
)
from workflow.services import filing, returns, review
from workflow.services.backoffice import run_until_quiet
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway

STAFF = Actor(Role.SUPERVISOR, None)


@dataclass(frozen=True)
class Case:
    title_key: str
    claim_id: int


class DemoPlayer:
    def __init__(
        self, uows: UnitOfWorkFactory, clock: ManualClock, env: Env, carrier: SimulatedCarrier
    ) -> None:
        self.uows, self.clock, self.env = uows, clock, env
        self.payment = SimulatedPaymentGateway(clock, seed=2026)
        self.carrier = carrier

    async def settle_down(self, hours: float = 0) -> None:
        await run_until_quiet(self.uows, self.env, self.payment, self.carrier)
        if hours:
            self.clock.advance(timedelta(hours=hours))
            await run_until_quiet(self.uows, self.env, self.payment, self.carrier)

    async def line(self, order_ref: str, sku: str) -> tuple[int, int]:
        """(buyer id, order line id) of an order's line, by references."""
        async with self.uows() as uow:
            row = (
                await uow.session.execute(
                    select(t.Order.buyer_id, t.OrderLine.id)
                    .join(t.OrderLine, t.OrderLine.order_id == t.Order.id)
                    .join(t.Item, t.Item.id == t.OrderLine.item_id)
                    .where(t.Order.external_ref == order_ref, t.Item.sku == sku)
                )
            ).one()
            return int(row[0]), int(row[1])

    async def file(
        self, order_ref: str, sku: str, ctype: ClaimType, reason: Reason, text: str, photos: int = 0
    ) -> int:
        buyer_id, line_id = await self.line(order_ref, sku)
        async with self.uows() as uow:
            claim = await filing.file_claim(
                uow,
                self.env,
                Actor(Role.BUYER, buyer_id),
                ClaimDraft(
                    ctype,
                    reason,
                    (LineRequest(line_id, 1),),
                    text,
                    tuple(f"demo-photo-{n}" for n in range(photos)),
                ),
            )
            await uow.commit()
            return claim.id

    async def staff(self, use_case) -> None:  # type: ignore[no-untyped-def]
        async with self.uows() as uow:
            await use_case(uow)
            await uow.commit()

    async def claim_on(self, order_ref: str) -> int:
        async with self.uows() as uow:
            return int(
                (
                    await uow.session.execute(
                        select(t.ClaimLine.claim_id)
                        .join(t.OrderLine, t.OrderLine.id == t.ClaimLine.order_line_id)
                        .join(t.Order, t.Order.id == t.OrderLine.order_id)
                        .where(t.Order.external_ref == order_ref)
                    )
                ).scalar_one()
            )

    async def hand_over(self, claim_id: int) -> None:
        async with self.uows() as uow:
            for shipment in await uow.shipments.for_claim(claim_id):
                self.carrier.hand_over(shipment.tracking_number)


async def play(
    uows: UnitOfWorkFactory, clock: ManualClock, env: Env, carrier: SimulatedCarrier | None = None
) -> list[Case]:
    """Import the demo orders and play five cases to their ends.

    ``carrier`` is the simulated carrier the parcels travel with; pass one to read their
    tracking events afterwards.
    """
    await import_orders(uows.engine, demo_orders(clock.now()), clock.now())
    p = DemoPlayer(uows, clock, env, carrier or SimulatedCarrier(clock, seed=2026))
    cases: list[Case] = []

    # 1. The source article's script: a no-reason return, approved automatically.
    c1 = await p.file(
        "SO-1001", "BAG-001", ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS, "Changed my mind"
    )
    await p.settle_down()
    await p.hand_over(c1)
    await p.settle_down(hours=49)
    lines = await _lines(uows, c1)
    await p.staff(
        lambda uow: returns.inspect_return(
            uow, env, STAFF, c1, None, dict.fromkeys(lines, Inspection.INTACT)
        )
    )
    await p.settle_down(hours=1)
    cases.append(Case("demo.case.article", c1))

    # 2. A damaged return: compensation proposed, disputed by the consignor, resolved by staff.
    c2 = await p.file(
        "SO-1003",
        "CER-101",
        ClaimType.RETURN_REFUND,
        Reason.QUALITY_ISSUE,
        "Crack in the glaze",
        photos=2,
    )
    await p.settle_down()
    await p.staff(lambda uow: review.approve(uow, env, STAFF, c2))
    await p.settle_down()
    await p.hand_over(c2)
    await p.settle_down(hours=49)
    lines = await _lines(uows, c2)
    await p.staff(
        lambda uow: returns.inspect_return(
            uow,
            env,
            STAFF,
            c2,
            None,
            dict.fromkeys(lines, Inspection.DAMAGED),
            Liability.CONSIGNOR,
            5_000,
        )
    )
    consignor = Actor(Role.CONSIGNOR, await _consignor(uows, c2))
    await p.staff(lambda uow: returns.dispute_compensation(uow, env, consignor, c2, None, 2_000))
    await p.staff(lambda uow: returns.resolve_compensation(uow, env, STAFF, c2, None, 3_000))
    await p.settle_down(hours=1)
    cases.append(Case("demo.case.damaged", c2))

    # 3. Never shipped: the system notices and opens a refund-only claim by itself.
    await p.settle_down(hours=1)
    c3 = await p.claim_on("SO-1004")
    cases.append(Case("demo.case.not_shipped", c3))

    # 4. High value: manual review, rejected with a reason.
    c4 = await p.file(
        "SO-1002", "SNK-014", ClaimType.RETURN_REFUND, Reason.NOT_AS_DESCRIBED, "Sole looks worn"
    )
    await p.settle_down()
    await p.staff(
        lambda uow: review.reject(uow, env, STAFF, c4, None, "Wear matches the listing photos")
    )
    cases.append(Case("demo.case.rejected", c4))

    # 5. An exchange for a wrong item.
    c5 = await p.file(
        "SO-1005", "SNK-020", ClaimType.EXCHANGE, Reason.WRONG_ITEM, "Got size 39", photos=1
    )
    await p.settle_down(hours=49)
    await p.settle_down(hours=1)
    cases.append(Case("demo.case.exchange", c5))
    return cases


async def _lines(uows: UnitOfWorkFactory, claim_id: int) -> list[int]:
    async with uows() as uow:
        return [line.id for line in await uow.claims.lines(claim_id)]


async def _consignor(uows: UnitOfWorkFactory, claim_id: int) -> int:
    async with uows() as uow:
        return (await uow.claims.consignor_ids(claim_id))[0]
