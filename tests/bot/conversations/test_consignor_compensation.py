"""A consignor answers a compensation proposal: Accept, or Dispute with a typed counter-offer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import (
    STAFF,
    answered,
    bind,
    buttons,
    claim_row,
    conversation,
    forge_press,
    no_rejected_calls,
    open_card,
    outgoing,
    press,
    proposal,
    text_of,
)
from workflow import lifecycle
from workflow.claims import AuditEvent
from workflow.services import returns

ACCEPT_FROM = lifecycle.sources_of("accept_compensation")
DISPUTED = lifecycle.sources_of("resolve_compensation")


async def _settle(world: World) -> None:
    await world.back_office()  # the refund request goes out
    world.env.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await world.back_office()  # the gateway confirms; settlement closes the case


async def test_consignor_hears_every_stage_and_accepts_the_proposal(world: World) -> None:
    k = await proposal(world)
    chat = k.consignor_chat
    texts = [text_of(m) for m in await outgoing(world, chat)]
    stages = [
        "A buyer filed claim",
        "has been approved",
        "is to send your item back",
        "your item is on its way back",
        "your item is back at our warehouse",
        "has been inspected",
        "found damaged. We propose a compensation of 30.00 CNY from your account",
    ]
    for stage in stages:
        assert any(f"#{k.claim_id}" in t and stage in t for t in texts), (stage, texts)

    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    assert "Proposed compensation: 30.00 CNY" in text_of(card)
    assert {"Accept", "Dispute"} <= set(buttons(card))

    answer = await press(world, chat, card, "Accept")
    assert "Accepted: 30.00 CNY" in answer["text"]
    [card] = [m for m in await outgoing(world, chat) if m["message_id"] == card["message_id"]]
    assert "Accept" not in buttons(card) and "Dispute" not in buttons(card)
    claim = await claim_row(world, k.claim_id)
    assert claim.status not in ACCEPT_FROM
    assert [e.trigger for e in await _timeline(world, k.claim_id)][-1] == "accept_compensation"

    await _settle(world)
    texts = [text_of(m) for m in await outgoing(world, chat)]
    for stage in (
        "the buyer is being refunded",
        "the buyer has been refunded",
        "has been settled",
        "about your item is closed",
    ):
        assert any(f"#{k.claim_id}" in t and stage in t for t in texts), (stage, texts)
    [reply] = await world.say(chat, "/balance")
    assert "Damage compensation -30.00 CNY" in reply["text"]
    assert "Sale reversed (return) -100.00 CNY" in reply["text"]
    await no_rejected_calls(world)


async def _timeline(world: World, claim_id: int) -> list[AuditEvent]:
    async with world.uows() as uow:
        return list(await uow.claims.timeline(claim_id))


async def test_dispute_takes_a_typed_counter_offer_and_refuses_bad_amounts(world: World) -> None:
    k = await proposal(world, ref="K-2", consignor_chat=711)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    prompt = (await outgoing(world, chat))[-1]
    assert "proposed compensation is 30.00 CNY" in text_of(prompt)
    assert "at most 100.00 CNY" in text_of(prompt)
    version = (await claim_row(world, k.claim_id)).version

    async def refused(text: str, expected: str) -> None:
        [reply] = await world.say(chat, text)
        assert expected in text_of(reply), (text, text_of(reply))
        claim = await claim_row(world, k.claim_id)
        assert (claim.version, claim.counter_offer_amount) == (version, None)
        assert (await conversation(world, chat)) is not None  # still waiting for the amount

    await refused("abc", "“abc” is not an amount I can read")
    await refused("-5", "“-5” is not an amount I can read")
    await refused("12.345", "is not an amount I can read")
    await refused("<b>7</b>", "“<b>7</b>” is not an amount")  # shown as typed, not as HTML
    await refused("9" * 400, "…” is not an amount")
    await refused(
        "100.01",
        "100.01 CNY is more than the claim is worth. The most you can propose is 100.00 CNY",
    )
    await refused("30", "30.00 CNY is the amount already proposed")
    await refused("/balance", "Your account")  # a command in between is answered as usual

    before = len(await outgoing(world, chat))
    sent = await world.client.send_file(chat, "photo", _png(), "p.png", "image/png")
    await world.handled(sent["update_id"])
    [reply] = (await outgoing(world, chat))[before:]
    assert "Please type the amount as a number in CNY" in text_of(reply)

    replies = await world.say(chat, "12.50")
    assert "counter-offer of 12.50 CNY on claim" in text_of(replies[0])
    assert "Compensation disputed" in text_of(replies[1])
    claim = await claim_row(world, k.claim_id)
    assert claim.status in DISPUTED
    assert claim.counter_offer_amount == 1_250
    assert await conversation(world, chat) is None

    # The card drawn before the dispute still shows Accept: pressing it is out of date.
    answer = await press(world, chat, card, "Accept")
    assert "out of date" in answer["text"]
    assert (await claim_row(world, k.claim_id)).version == claim.version

    # Staff decide; the refund and settlement follow; the consignor sees the deduction.
    async with world.uows() as uow:
        await returns.resolve_compensation(uow, world.env, STAFF, k.claim_id, None, 2_000)
        await uow.commit()
    await _settle(world)
    [reply] = await world.say(chat, "/balance")
    assert "Damage compensation -20.00 CNY · claim #" in reply["text"]
    await no_rejected_calls(world)


def _png() -> bytes:
    import zlib

    raw = b"\x00\xff\xff\xff"

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def test_counter_offer_prompt_can_be_left_and_goes_stale(world: World) -> None:
    k = await proposal(world, ref="K-3", consignor_chat=721, lang="zh-hans")
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "提议赔偿")
    await press(world, chat, card, "有异议")
    prompt = (await outgoing(world, chat))[-1]
    assert "最多 100.00 CNY" in text_of(prompt)
    await press(world, chat, prompt, "取消")
    assert await conversation(world, chat) is None
    [prompt] = [m for m in await outgoing(world, chat) if m["message_id"] == prompt["message_id"]]
    assert "未提出异议" in text_of(prompt)
    [reply] = await world.say(chat, "12")  # no dialog any more: the menu
    assert "/balance" in text_of(reply)

    # Dispute again, then the answer deadline passes before the amount is typed.
    await press(world, chat, card, "有异议")
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()  # escalated: the claim moved on without the consignor
    replies = await world.say(chat, "12")
    assert "按钮已过期" in text_of(replies[0]) or "已处理" in text_of(replies[0])
    assert (await claim_row(world, k.claim_id)).counter_offer_amount is None
    assert await conversation(world, chat) is None
    await no_rejected_calls(world)


async def test_a_double_pressed_accept_fires_once(world: World) -> None:
    world.provoke("message is not modified")  # the second press redraws nothing
    k = await proposal(world, ref="K-4", consignor_chat=731)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    data = buttons(card)["Accept"]
    first = await world.client.press(chat, card["message_id"], callback_data=data)
    second = await world.client.press(chat, card["message_id"], callback_data=data)
    answers = await asyncio.gather(
        answered(world, chat, first["callback_query_id"]),
        answered(world, chat, second["callback_query_id"]),
    )
    texts = sorted(a["text"] for a in answers)
    assert any("Accepted" in t for t in texts) and any("out of date" in t for t in texts), texts
    triggers = [e.trigger for e in await _timeline(world, k.claim_id)]
    assert triggers.count("accept_compensation") == 1
    await no_rejected_calls(world, not_modified=1)


async def test_a_consignor_cannot_act_on_another_consignors_claim(world: World) -> None:
    other = await proposal(world, ref="K-6", consignor_chat=742)
    k = await proposal(world, ref="K-5", consignor_chat=741)  # last: its proposal is open
    version = (await claim_row(world, k.claim_id)).version
    own_card = await open_card(
        world, other.consignor_chat, other.claim_id, "We propose a compensation"
    )
    foreign = f"c:{k.claim_id}:accept_compensation:{version}"
    answer = await forge_press(world, other.consignor_chat, own_card, foreign)
    assert f"no claim {k.claim_id} that you can see" in answer["text"]
    answer = await forge_press(world, other.consignor_chat, own_card, f"c:{k.claim_id}:view:0")
    assert f"no claim {k.claim_id} that you can see" in answer["text"]
    for junk in ("ki:-1", "ki:x", "kx:1:2", "k" * 70):
        answer = await forge_press(world, other.consignor_chat, own_card, junk)
        assert answer["text"] in (
            "This button is not recognised. Please use the latest message.",
            "There is no counter-offer waiting for this claim.",
        ), (junk, answer)
    claim = await claim_row(world, k.claim_id)
    assert claim.version == version
    assert claim.status in ACCEPT_FROM

    # A buyer is not a consignor: consignor commands and buttons are refused.
    buyer = await world.user(743, "Ann")
    await bind(world, buyer, "buyer", k.placed.buyer_id)
    [reply] = await world.say(buyer, "/balance")
    assert "/balance is not available to you" in reply["text"]
    [reply] = await world.say(buyer, "/items")
    assert "/items is not available to you" in reply["text"]
    note = (await outgoing(world, buyer))[-1]
    answer = await forge_press(world, buyer, note, "ki:0")
    assert answer["text"] == "This button is not for you."
    assert (await claim_row(world, k.claim_id)).version == version
    await no_rejected_calls(world)
