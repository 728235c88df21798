"""Sweeps fire exactly the due transitions, once, however many processes run them."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from sqlalchemy import func, select

from storage import tables as t
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from tests.factories import bulk_open_claims, order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.orders import LineImport, OrderImport
from workflow.services import filing, review
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_all

STAFF = Actor(Role.AGENT, 1)


async def test_each_sweep_fires_only_what_is_due(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    now = clock.now()
    a, b = await place(
        uows,
        now,
        order("S-1", now, buyer="SA", lines=(("SA", "C1", 1, 500_000, 1),)),
        order("S-2", now, buyer="SB", lines=(("SB", "C1", 1, 500, 1),)),
    )
    async with uows() as uow:
        big = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, a.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS, (LineRequest(a.line_ids[0], 1),)
            ),
        )
        await uow.commit()
    moved = await run_all(uows, env)
    assert moved == {"overdue_shipment": 0} | {s.name: int(s.name == "auto_review") for s in SWEEPS}
    async with uows() as uow:
        await review.request_info(uow, env, STAFF, big.id, None, "A photo of the label, please")
        await uow.commit()
    clock.advance(env.policy.info_deadline - timedelta(minutes=1))
    assert sum((await run_all(uows, env)).values()) == 0  # not due yet
    clock.advance(timedelta(minutes=2))
    assert (await run_all(uows, env))["info_overdue"] == 1
    assert sum((await run_all(uows, env)).values()) == 0  # and never twice
    async with uows() as uow:
        claim = await uow.claims.get(big.id)
        assert claim is not None
        trail = [e.trigger for e in await uow.claims.timeline(big.id)]
    assert trail == ["file", "send_to_review", "request_info", "info_overdue"]
    del b


async def _sweep_in_processes(url: str, now_iso: str, processes: int) -> list[int]:
    async def one() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.workflow.sweeper_process",
            url,
            now_iso,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return int(out.decode().strip().splitlines()[-1])

    return list(await asyncio.gather(*(one() for _ in range(processes))))


async def test_two_processes_sweeping_2000_due_claims_move_each_exactly_once(
    uows: UnitOfWorkFactory, db_url: str, clock: ManualClock
) -> None:
    now = clock.now()
    orders = [
        OrderImport(
            order_ref=f"M-{n}",
            buyer_ref=f"MB-{n}",
            buyer_name="b",
            currency="CNY",
            paid_at=now - timedelta(days=5),
            ship_by=now - timedelta(days=3),
            shipped_at=now - timedelta(days=4),
            delivered_at=now - timedelta(days=2),
            lines=(
                LineImport(f"M-SKU-{n}", "item", "general", f"MC-{n % 30}", "c", 1, 1_000 + n, 100),
            ),
        )
        for n in range(2000)
    ]
    await import_orders(uows.engine, orders, now)
    assert await bulk_open_claims(uows, now) == 2000

    moved = await _sweep_in_processes(db_url, now.isoformat(), processes=2)
    assert sum(moved) == 2000

    async with uows() as uow:
        s = uow.session
        per_claim = (
            await s.execute(
                select(t.ClaimEvent.claim_id, func.count())
                .where(t.ClaimEvent.trigger.in_(("auto_approve", "auto_reject", "send_to_review")))
                .group_by(t.ClaimEvent.claim_id)
            )
        ).all()
        versions = (
            await s.execute(select(func.max(t.Claim.version), func.min(t.Claim.version)))
        ).one()
        outbox = (
            await s.execute(
                select(func.count()).select_from(t.Outbox).where(t.Outbox.channel == "carrier")
            )
        ).scalar_one()
    assert len(per_claim) == 2000
    assert {count for _, count in per_claim} == {1}
    assert tuple(versions) == (2, 2)
    assert outbox == 2000  # one waybill request per approved return, none twice
