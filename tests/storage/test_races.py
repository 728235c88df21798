"""Two sessions racing the same trigger on the same claim: exactly one wins."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.repositories import TopicRepo
from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.errors import AlreadyHandled
from workflow.services import filing, review
from workflow.services.common import Env, transition
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_sweep


async def _claim_in_review(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> tuple[int, int]:
    [p] = await place(
        uows, clock.now(), order("R-1", clock.now(), lines=(("R", "C1", 1, 500_000, 50_000),))
    )
    async with uows() as uow:
        claim = await filing.file_claim(
            uow,
            env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.REFUND_ONLY,
                Reason.NOT_AS_DESCRIBED,
                (LineRequest(p.line_ids[0], 1),),
                "torn",
            ),
        )
        await uow.commit()
    await run_sweep(uows, env, SWEEPS[0])  # high value: goes to manual review
    async with uows() as uow:
        loaded = await uow.claims.get(claim.id)
        assert loaded is not None
        assert loaded.status == "needs_review"
        return loaded.id, loaded.version


async def test_two_staff_pressing_approve_at_once_only_one_wins(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    claim_id, version = await _claim_in_review(uows, env, clock)
    first_loaded = asyncio.Event()

    async def press(staff_id: int, wait: bool) -> str:
        if wait:
            await first_loaded.wait()
        async with uows() as uow:
            try:
                await review.approve(uow, env, Actor(Role.AGENT, staff_id), claim_id, version)
                if not wait:
                    first_loaded.set()
                    await asyncio.sleep(0)  # let the other press start while we hold the claim
                await uow.commit()
                return "won"
            except AlreadyHandled:
                return "already handled"

    results = await asyncio.gather(press(1, wait=False), press(2, wait=True))
    assert sorted(results) == ["already handled", "won"]
    async with uows() as uow:
        trail = [e.trigger for e in await uow.claims.timeline(claim_id)]
    assert trail.count("approve") == 1


async def test_optimistic_lock_stops_a_write_from_a_stale_row(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock, db_url: str
) -> None:
    """Without any row lock, the version guard alone turns the loser into AlreadyHandled."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE: two writers never overlap")
    claim_id, _ = await _claim_in_review(uows, env, clock)
    slow = uows()
    async with slow:
        stale = await slow.claims.get(claim_id)  # no lock: read the row as it is now
        async with uows() as fast:
            await review.approve(fast, env, Actor(Role.AGENT, 1), claim_id)
            await fast.commit()
        assert stale is not None
        with pytest.raises(AlreadyHandled):
            # Fire on the stale row directly, as a careless caller that skipped load_claim would.
            await transition(slow, env, stale, "reject", Actor(Role.AGENT, 2), note="no")
            await slow.commit()
    async with uows() as uow:
        trail = [e.trigger for e in await uow.claims.timeline(claim_id)]
    assert trail.count("approve") == 1
    assert "reject" not in trail


async def test_two_processes_leasing_one_topics_sync_one_wins_until_the_lease_runs_out(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """The staff group's sync of a topic is leased (no transaction is held while Telegram
    is called): of two processes one brings the topic; the other skips it until the lease
    runs out (the first crashed), and the topic is not due meanwhile."""
    claim_id, _ = await _claim_in_review(uows, env, clock)
    group = -100_123
    async with uows() as uow:
        await TopicRepo(uow.session).opened(claim_id, group, 7, "#1", clock.now())
        await uow.commit()

    async def lease() -> bool:
        now = clock.now()
        async with uows() as uow:
            won = await TopicRepo(uow.session).lease_sync(
                claim_id, group, now, now + timedelta(seconds=60)
            )
            await uow.commit()
            return won

    assert sorted(await asyncio.gather(lease(), lease())) == [False, True]
    async with uows() as uow:
        assert await TopicRepo(uow.session).due(group, clock.now()) == []
    clock.advance(timedelta(seconds=59))
    assert await lease() is False
    clock.advance(timedelta(seconds=2))
    async with uows() as uow:
        assert await TopicRepo(uow.session).due(group, clock.now()) == [claim_id]
    assert await lease() is True
