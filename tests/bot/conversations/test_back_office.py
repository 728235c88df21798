"""The back office on a running bot: sweeps that ran late, and messages a party could not get yet."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from storage import tables as t
from tests.bot.conversations.conftest import World
from tests.factories import no_reason_return, order, place


async def _texts(world: World, chat: int) -> list[str]:
    got = await world.client.messages(chat)
    return [str(m.get("text") or m.get("caption") or "") for m in got["messages"] if m["outgoing"]]


async def test_a_claim_filed_in_time_is_reviewed_as_filed_though_the_sweep_ran_late(
    world: World,
) -> None:
    """A no-reason return filed on the window's last hour, with the bot down for hours: the
    review, when it comes, judges the claim as it was filed, not by how late the sweep is."""
    now = world.env.clock.now()
    window = world.env.policy.no_reason_window
    [p] = await place(
        world.uows, now, order("LATE-1", now, delivered_ago=window - timedelta(hours=1))
    )
    buyer = await world.user(811)
    await world.say(buyer, f"/start {await world.token('buyer', p.buyer_id)}")
    claim = await no_reason_return(world.uows, world.env, p)
    world.env.clock.advance(timedelta(hours=6))  # the back office was down
    await world.back_office()
    async with world.uows() as uow:
        trail = [(e.trigger, e.rule) for e in await uow.claims.timeline(claim.id)]
    assert trail[:2] == [("file", None), ("auto_approve", "no_reason_window")]
    texts = await _texts(world, buyer)
    assert not any(f"Claim #{claim.id} has been rejected" in text for text in texts)
    assert any(f"Claim #{claim.id} approved — please send" in text for text in texts)


async def test_a_buyer_without_a_chat_hears_of_the_overdue_claim_once_they_bind(
    world: World,
) -> None:
    """The overdue sweep files the claim for a buyer who has not bound a chat yet; what they
    were told waits for their chat and reaches it, once, when they bind."""
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("OVB-1", now, delivered=False))
    world.env.clock.advance(timedelta(days=2))
    await world.back_office()
    async with world.uows() as uow:
        [claim_id] = [c.id for c in await uow.claims.for_buyer(p.buyer_id, 0, 10)]
    buyer = await world.user(812)
    await world.say(buyer, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.back_office()
    told = [text for text in await _texts(world, buyer) if f"#{claim_id}" in text]
    assert any("has been filed" in text for text in told)
    assert any("has been approved" in text for text in told)
    await world.back_office()
    assert [text for text in await _texts(world, buyer) if f"#{claim_id}" in text] == told


async def test_a_claim_the_review_cannot_read_holds_up_no_other_work(world: World) -> None:
    """One claim the review fails on (a reason this version does not know, written by a newer
    process in a rolling deploy) is left, and said so in the log; the other due claims in
    its batch are reviewed and their buyers told, and the sweeps after it still run."""
    now = world.env.clock.now()
    odd, fine = await place(
        world.uows, now, order("BAD-1", now, buyer="B1"), order("BAD-2", now, buyer="B2")
    )
    buyer = await world.user(813)
    await world.say(buyer, f"/start {await world.token('buyer', fine.buyer_id)}")
    broken = await no_reason_return(world.uows, world.env, odd)
    claim = await no_reason_return(world.uows, world.env, fine)
    async with world.uows() as uow:
        await uow.session.execute(
            update(t.Claim).where(t.Claim.id == broken.id).values(reason="from_a_newer_version")
        )
        await uow.commit()
    await world.back_office()
    async with world.uows() as uow:
        assert [e.trigger for e in await uow.claims.timeline(broken.id)] == ["file"]
        assert [e.trigger for e in await uow.claims.timeline(claim.id)][:2] == [
            "file",
            "auto_approve",
        ]
    texts = await _texts(world, buyer)
    assert any(f"Claim #{claim.id} approved — please send" in text for text in texts)
