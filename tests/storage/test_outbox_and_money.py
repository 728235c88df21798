"""Outbox rows and money rows live and die with the transaction that causes them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage import tables as t
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.errors import RefundCeilingExceeded
from workflow.services import filing
from workflow.services.common import Env
from workflow.services.refunds import request_refunds
from workflow.simulated import ManualClock


async def _count(uows: UnitOfWorkFactory, model: type[t.Base]) -> int:
    async with uows() as uow:
        return int(
            (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()
        )


async def _file(uows: UnitOfWorkFactory, env: Env, clock: ManualClock, commit: bool) -> int:
    [p] = await place(uows, clock.now(), order(f"X-{commit}", clock.now(), buyer=f"BX{commit}"))
    async with uows() as uow:
        claim = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.REFUND_ONLY,
                Reason.NOT_AS_DESCRIBED,
                (LineRequest(p.line_ids[0], 1),),
                "x",
            ),
        )
        if commit:
            await uow.commit()
        return claim.id


async def test_messages_are_written_with_the_change_and_vanish_with_its_rollback(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    await _file(uows, env, clock, commit=False)
    assert await _count(uows, t.Claim) == 0
    assert await _count(uows, t.Outbox) == 0
    claim_id = await _file(uows, env, clock, commit=True)
    async with uows() as uow:
        messages = await uow.outbox.messages(claim_id)
    assert {(m.recipient_kind, m.template) for m in messages} == {
        ("buyer", "claim.submitted"),
        ("consignor", "consignor.submitted"),
    }
    assert len({m.dedupe_key for m in messages}) == len(messages)


async def test_a_refund_never_exceeds_what_is_left_to_refund(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id = await _file(uows, env, clock, commit=True)
    async with uows() as uow:
        claim = await uow.claims.get(claim_id, lock=True)
        assert claim is not None
        await request_refunds(uow, env, claim, 6_000)
        await uow.commit()
    async with uows() as uow:
        claim = await uow.claims.get(claim_id, lock=True)
        assert claim is not None
        with pytest.raises(RefundCeilingExceeded) as refused:
            await request_refunds(uow, env, claim, 4_001, attempt=2)  # 10,000 paid, 6,000 pending
    assert refused.value.params["available"] == 4_000
    assert await _count(uows, t.Refund) == 1
    async with uows() as uow:
        keys = [c.idempotency_key for _, _, c in await uow.outbox.due_commands(clock.now(), 10)]
    assert keys == [f"refund:{claim_id}:1:1"]
