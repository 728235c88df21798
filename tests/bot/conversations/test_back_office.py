"""The back office on a running bot: sweeps that ran late, and messages a party could not get yet."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from bot.app import back_office_until_quiet
from storage import tables as t
from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
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
    assert any("spotted a problem with your order" in text for text in told)  # opened for them
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


async def test_two_back_offices_at_once_review_each_claim_once_and_tell_each_buyer_once(
    world: World, db_url: str
) -> None:
    """Two back offices (each with its own connections, as two processes have) run their
    rounds side by side over the same due claims: every claim is reviewed once, and every
    buyer gets each message once."""
    now = world.env.clock.now()
    placed = await place(
        world.uows, now, *(order(f"TWO-{i}", now, buyer=f"T{i}") for i in range(6))
    )
    chats: dict[int, int] = {}
    for i, p in enumerate(placed):
        chats[p.buyer_id] = await world.user(820 + i, f"Buyer{i}")
        await world.say(chats[p.buyer_id], f"/start {await world.token('buyer', p.buyer_id)}")
    claims = [await no_reason_return(world.uows, world.env, p) for p in placed]
    engine = make_engine(db_url)
    try:
        other = replace(world.services, uows=UnitOfWorkFactory(engine))
        await asyncio.gather(
            back_office_until_quiet(world.services, world.bot, world.payment, world.carrier),
            back_office_until_quiet(other, world.bot, world.payment, world.carrier),
        )
    finally:
        await engine.dispose()
    await world.back_office()
    async with world.uows() as uow:
        for claim in claims:
            trail = [e.trigger for e in await uow.claims.timeline(claim.id)]
            assert trail == ["file", "auto_approve", "issue_waybill"], (claim.id, trail)
    for claim, p in zip(claims, placed, strict=True):
        texts = await _texts(world, chats[p.buyer_id])
        about = [text for text in texts if f"#{claim.id}" in text]
        assert len(about) == len(set(about)), about  # nothing twice
        assert sum(f"Claim #{claim.id} approved — please send" in text for text in about) == 1


async def test_each_party_is_told_in_their_own_language_and_after_switching_it(
    world: World,
) -> None:
    """A buyer in Chinese and a consignor in English hear of the same claim each in their
    language; a buyer who switches with /lang gets the next message in the new one."""
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("LANG-1", now))
    buyer = await world.user(831, "Li", "zh-CN")
    consignor = await world.user(832, "Wang", "en")
    await world.say(buyer, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(consignor, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    claim = await no_reason_return(world.uows, world.env, p)
    await world.back_office()
    assert any(f"售后单 #{claim.id} 已通过" in text for text in await _texts(world, buyer))
    assert any(
        f"Claim #{claim.id}: the buyer is to send your item back" in text
        for text in await _texts(world, consignor)
    )
    await world.say(buyer, "/lang en")
    # past the deadline by the time a carrier's scan may take to come: it expires
    world.env.clock.advance(world.env.policy.return_deadline + world.env.policy.return_scan_grace)
    await world.back_office()
    assert any(
        f"Claim #{claim.id} expired: the item was not sent back" in text
        for text in await _texts(world, buyer)
    )
    assert any(
        f"Claim #{claim.id} has expired: the buyer did not send" in text
        for text in await _texts(world, consignor)
    )
