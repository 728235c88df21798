"""The scheduler's interval jobs carry a claim forward with nobody pushing it."""

from __future__ import annotations

from bot.scheduler import Intervals, build_scheduler
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
