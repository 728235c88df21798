"""Parties hear of every stage of their claims, in their own language."""

from __future__ import annotations

import re

from tests.bot.conversations.conftest import World
from tests.factories import no_reason_return, order, place
from workflow.claims import (
    CARRIER,
    Actor,
    ClaimDraft,
    ClaimType,
    LineRequest,
    Reason,
    Role,
    Source,
)
from workflow.services import filing


async def test_buyer_and_consignor_follow_a_claim_stage_by_stage(world: World) -> None:
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("N-1", now))
    buyer_chat = await world.user(601, "Ann", "en")
    consignor_chat = await world.user(602, "Wang", "zh-hans")
    await world.say(buyer_chat, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(consignor_chat, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    claim = await no_reason_return(world.uows, world.env, p)
    await world.back_office()
    buyer_texts = [
        m.get("text") or m.get("caption")
        for m in (await world.client.messages(buyer_chat))["messages"]
        if m["outgoing"]
    ]
    consignor_texts = [
        m.get("text") or m.get("caption")
        for m in (await world.client.messages(consignor_chat))["messages"]
        if m["outgoing"]
    ]
    assert any(f"Claim #{claim.id} has been filed (100.00 CNY)" in t for t in buyer_texts)
    assert any(f"Claim #{claim.id} approved — please send the item back" in t for t in buyer_texts)
    # The consignor hears the same stages in a consignor's words, and in their language;
    # deadlines read as dates in the platform's zone, not as ISO strings.
    assert any(
        f"买家就您的商品提交了售后单 #{claim.id}（100.00 CNY）" in t for t in consignor_texts
    )
    assert any(f"售后单 #{claim.id}：买家需在" in t for t in consignor_texts)
    iso = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
    assert not any(iso.search(t) for t in consignor_texts + buyer_texts)
    [due] = [t for t in buyer_texts if "please send the item back by" in t]
    assert re.search(r"by \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} \(UTC\+8\)", due), due
    calls = await world.client.calls(ok=False)
    assert calls["calls"] == []


async def test_the_consignor_is_told_who_opened_the_claim(world: World) -> None:
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("N-2", now, lines=(("S-N2", "C-N2", 2, 10_000, 0),)))
    chat = await world.user(611, "Wang", "en")
    await world.say(chat, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    one = (LineRequest(p.line_ids[0], 1),)
    async with world.uows() as uow:
        by_staff = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.AGENT, 1),
            ClaimDraft(ClaimType.REFUND_ONLY, Reason.WRONG_ITEM, one, source=Source.STAFF),
            buyer_id=p.buyer_id,
        )
        by_carrier = await filing.file_claim(
            uow,
            world.env,
            CARRIER,
            ClaimDraft(
                ClaimType.REFUND_ONLY, Reason.DAMAGED_IN_TRANSIT, one, source=Source.CARRIER
            ),
            buyer_id=p.buyer_id,
        )
        await uow.commit()
    await world.back_office()
    texts = [
        m.get("text") or ""
        for m in (await world.client.messages(chat))["messages"]
        if m["outgoing"]
    ]
    assert any(f"Our team opened claim #{by_staff.id} about your item" in t for t in texts)
    assert any(
        f"The carrier reported a problem with the delivery of your item: claim #{by_carrier.id}"
        in t
        for t in texts
    )
    assert not any("A buyer filed" in t for t in texts)
    calls = await world.client.calls(ok=False)
    assert calls["calls"] == []
