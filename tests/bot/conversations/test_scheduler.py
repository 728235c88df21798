"""The scheduler's interval jobs carry a claim forward with nobody pushing it."""

from __future__ import annotations

import asyncio

from bot.scheduler import Intervals, _guarded, build_scheduler
from tests.bot.conversations.conftest import World
from tests.factories import no_reason_return, order, place


async def test_jobs_review_request_a_waybill_and_tell_the_buyer(world: World) -> None:
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("SCH-1", now))
    buyer = await world.user(801)
    await world.say(buyer, f"/start {await world.token('buyer', p.buyer_id)}")
    claim = await no_reason_return(world.uows, world.env, p)
    fast = Intervals(
        sweeps=0.05, providers=0.05, payment_callbacks=0.05, tracking=0.05, delivery=0.05
    )
    scheduler = build_scheduler(world.services, world.bot, world.payment, world.carrier, fast)
    scheduler.start()
    try:
        wanted = f"Claim #{claim.id} approved — please send the item back"
        # The sandbox wakes this wait on every call the bot makes; the jobs set the pace.
        [told] = await world.client.wait_calls(
            timeout_ms=30_000,
            ok=True,
            text_contains=wanted,  # a photo: the waybill's QR code
        )
        assert int(told["params"]["chat_id"]) == buyer
    finally:
        scheduler.shutdown(wait=False)
    async with world.uows() as uow:
        trail = [e.trigger for e in await uow.claims.timeline(claim.id)]
    assert trail == ["file", "auto_approve", "issue_waybill"]


async def test_a_turn_that_comes_while_the_last_one_still_runs_is_let_go() -> None:
    """A job held up (by a database outage, say) is not run twice at once; the next turn
    after it ends runs it again."""
    entered, release = asyncio.Event(), asyncio.Event()
    runs = 0

    async def slow() -> int:
        nonlocal runs
        runs += 1
        entered.set()
        await release.wait()
        return 0

    turn = _guarded("slow", slow)
    first = asyncio.create_task(turn())
    await entered.wait()
    await asyncio.wait_for(turn(), 5)  # returns at once: the first still runs
    assert runs == 1
    release.set()
    await first
    await turn()
    assert runs == 2
