"""Parties hear of every stage of their claims, in their own language."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import STAFF, Proposal, open_card, press, proposal
from tests.factories import no_reason_return, order, place
from workflow.claims import (
    CARRIER,
    SYSTEM,
    Actor,
    ClaimDraft,
    ClaimType,
    Liability,
    LineRequest,
    Reason,
    Role,
    Source,
)
from workflow.notifications import ClaimTransitioned, messages_for
from workflow.services import filing, returns


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


async def test_buyer_and_consignor_are_told_who_opened_the_claim(world: World) -> None:
    """A claim staff, the system (an order never shipped) or the carrier opened: neither party
    reads it as one the buyer filed — the buyer would not know why it exists."""
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("N-2", now, lines=(("S-N2", "C-N2", 3, 10_000, 0),)))
    chat = await world.user(611, "Wang", "en")
    await world.say(chat, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    buyer_chat = await world.user(612, "Ann", "zh-hans")
    await world.say(buyer_chat, f"/start {await world.token('buyer', p.buyer_id)}")
    one = (LineRequest(p.line_ids[0], 1),)
    opened = {}
    async with world.uows() as uow:
        for source, actor, claim_type, reason in (
            (Source.STAFF, Actor(Role.AGENT, 1), ClaimType.REFUND_ONLY, Reason.WRONG_ITEM),
            (Source.CARRIER, CARRIER, ClaimType.REFUND_ONLY, Reason.DAMAGED_IN_TRANSIT),
            (Source.SYSTEM, SYSTEM, ClaimType.REFUND_ONLY, Reason.NOT_RECEIVED),
        ):
            draft = ClaimDraft(claim_type, reason, one, source=source)
            claim = await filing.file_claim(uow, world.env, actor, draft, buyer_id=p.buyer_id)
            opened[source] = claim.id
        await uow.commit()
    await world.back_office()

    def said(user: int) -> list[str]:
        return [m.get("text") or "" for m in messages[user] if m["outgoing"]]

    messages = {u: (await world.client.messages(u))["messages"] for u in (chat, buyer_chat)}
    texts, buyer_texts = said(chat), said(buyer_chat)
    staff, carrier, system = opened[Source.STAFF], opened[Source.CARRIER], opened[Source.SYSTEM]
    assert any(f"Our team opened claim #{staff} about your item" in t for t in texts)
    assert any(
        f"The carrier reported a problem with the delivery of your item: claim #{carrier}" in t
        for t in texts
    )
    assert not any("A buyer filed" in t for t in texts)
    assert any(f"平台客服已为您提交售后单 #{staff}" in t for t in buyer_texts)
    assert any(
        f"物流公司报告您的包裹配送出现问题，已为您提交售后单 #{carrier}" in t for t in buyer_texts
    )
    assert any(f"已为您自动提交售后单 #{system}" in t for t in buyer_texts)
    assert not any("已提交（" in t for t in buyer_texts), buyer_texts  # not "you filed"
    calls = await world.client.calls(ok=False)
    assert calls["calls"] == []


async def _answer_by_accepting(world: World, k: Proposal) -> None:
    card = await open_card(world, k.consignor_chat, k.claim_id, "kept back")
    await press(world, k.consignor_chat, card, "Accept")


async def _answer_by_staff_deciding(world: World, k: Proposal) -> None:
    consignor = Actor(Role.CONSIGNOR, k.placed.consignor_ids[0])
    async with world.uows() as uow:
        await returns.dispute_compensation(uow, world.env, consignor, k.claim_id, None, 5_000)
        await uow.commit()
    async with world.uows() as uow:  # later, and by someone else
        await returns.resolve_compensation(uow, world.env, STAFF, k.claim_id, None, 10_000)
        await uow.commit()


@pytest.mark.parametrize(
    "answer",
    [_answer_by_accepting, _answer_by_staff_deciding],
    ids=["consignor-accepts", "staff-decide"],
)
async def test_a_buyer_liable_for_all_the_item_is_worth_is_never_told_of_a_refund(
    world: World, answer: Callable[[World, Proposal], Awaitable[None]]
) -> None:
    """Damage the buyer is liable for, compensated with all they paid: no money moves back.
    Neither party hears that a refund is being processed or was paid; each is told once that
    nothing is refunded, then that the claim is closed."""
    k = await proposal(world, ref="Z-0", liability=Liability.BUYER, compensation=10_000)
    buyer_chat = await world.user(721, "Ann")
    await world.say(buyer_chat, f"/start {await world.token('buyer', k.placed.buyer_id)}")
    seen = {chat: len(await _texts(world, chat)) for chat in (buyer_chat, k.consignor_chat)}

    await answer(world, k)
    await world.back_office()
    world.env.clock.advance(timedelta(days=8))  # type: ignore[attr-defined]
    await world.back_office()  # settled and closed
    async with world.uows() as uow:
        claim = await uow.claims.get(k.claim_id)
        assert claim is not None and claim.status == "closed"
        assert await uow.money.refunds_for_claim(k.claim_id) == []

    buyer = (await _texts(world, buyer_chat))[seen[buyer_chat] :]
    assert not any("refund is being processed" in t or "has been paid" in t for t in buyer)
    assert buyer[-2:] == [
        f"⚖️ Claim #{k.claim_id}: the returned item was found damaged, and the compensation you"
        " are liable for covers all you paid for it, so nothing is refunded.",
        f"🏁 Claim #{k.claim_id} is complete. Thank you!",
    ]
    consignor = [
        t
        for t in (await _texts(world, k.consignor_chat))[seen[k.consignor_chat] :]
        if f"#{k.claim_id}" in t
    ]
    assert not any("refunded" in t and "nothing" not in t for t in consignor), consignor
    assert not any("being refunded" in t for t in consignor), consignor
    assert sum("nothing is refunded to them" in t for t in consignor) == 1, consignor


async def _texts(world: World, chat: int) -> list[str]:
    """The bot's messages in a chat, oldest first (a card edited in place counts once)."""
    return [
        m.get("text") or m.get("caption") or ""
        for m in (await world.client.messages(chat))["messages"]
        if m["outgoing"]
    ]


async def test_a_settlement_reads_as_a_change_to_the_account(world: World) -> None:
    """What a settlement did to the consignor's account, signed — not a figure that reads
    like a balance ("0.00 CNY on your account" after an exchange that moved no money)."""
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("N-9", now))
    chat = await world.user(621, "Wang", "en")
    await world.say(chat, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    async with world.uows() as uow:
        for version, total in ((5, 50_000), (6, 0), (7, -61_200)):
            event = ClaimTransitioned(
                claim_id=version,
                version=version,
                from_status="refunded",
                to_status="settled",
                trigger="settle",
                actor="system",
                buyer_id=p.buyer_id,
                consignor_ids=(p.consignor_ids[0],),
                params={"consignor_total": total, "currency": "CNY"},
            )
            for message in messages_for(event):
                if message.recipient_kind == "consignor":
                    await uow.outbox.add(message, now)
        await uow.commit()
    await world.back_office()
    texts = [m["text"] for m in (await world.client.messages(chat))["messages"] if m["outgoing"]]
    assert "📒 Claim #5 has been settled: your account changes by +500.00 CNY." in texts
    assert "📒 Claim #6 has been settled: nothing changes on your account." in texts
    assert "📒 Claim #7 has been settled: your account changes by -612.00 CNY." in texts
    assert (await world.client.calls(ok=False))["calls"] == []
