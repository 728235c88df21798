"""A consignor answers a compensation proposal: Accept, or Dispute with a typed counter-offer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.conversations import engine
from bot.conversations.callbacks import ClaimAction
from bot.conversations.model import ChatUser, Incoming
from tests.bot.conversations.buyer_kit import restarted_bot
from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import (
    STAFF,
    Proposal,
    answered,
    bind,
    buttons,
    claim_row,
    conversation,
    forge_press,
    message_with,
    no_rejected_calls,
    open_card,
    outgoing,
    press,
    proposal,
    text_of,
)
from tests.factories import Placed, order, place
from workflow import lifecycle
from workflow.claims import (
    Actor,
    AuditEvent,
    ClaimDraft,
    ClaimType,
    Inspection,
    Liability,
    LineRequest,
    Reason,
    Role,
)
from workflow.errors import InvalidClaim
from workflow.services import filing, returns

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
    assert "Status: Refund in progress" in text_of(card)  # the answer is the record
    claim = await claim_row(world, k.claim_id)
    assert claim.status not in ACCEPT_FROM
    assert [e.trigger for e in await _timeline(world, k.claim_id)][-1] == "accept_compensation"

    await _settle(world)
    texts = [text_of(m) for m in await outgoing(world, chat)]
    for stage in (
        "the buyer has been refunded",
        "has been settled",
        "about your item is closed",
    ):
        assert any(f"#{k.claim_id}" in t and stage in t for t in texts), (stage, texts)
    # The refund starting is their own step (Accept): the card told them, no message again.
    assert not any("the buyer is being refunded" in t for t in texts), texts
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
        "100.01 CNY is more than the damaged items are worth. The most you can propose is 100.00 CNY",
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


async def test_a_counter_offer_in_a_currency_without_decimals_is_asked_for_as_such(
    world: World,
) -> None:
    """Yen have no minor unit: the prompt and every refusal show a whole number, never the
    "25.50" that would itself be refused."""
    k = await proposal(world, ref="K-17", consignor_chat=811, currency="JPY")
    chat = k.consignor_chat
    told = text_of(await message_with(world, chat, "We propose"))  # in the claim's currency
    assert "We propose a compensation of 3000 JPY" in told and "CNY" not in told, told
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    prompt = text_of((await outgoing(world, chat))[-1])
    assert "proposed compensation is 3000 JPY" in prompt and "at most 10000 JPY" in prompt
    assert "for example 25)" in prompt and "25.50" not in prompt, prompt
    for typed in ("25.50", "abc"):
        [reply] = await world.say(chat, typed)
        assert "is not an amount I can read" in text_of(reply), text_of(reply)
        assert "for example 25 " in text_of(reply) and "25.50" not in text_of(reply).replace(
            "“25.50”", ""
        ), text_of(reply)
        assert "decimals" not in text_of(reply)
    sent = await world.client.send_file(chat, "photo", _png(), "p.png", "image/png")
    await world.handled(sent["update_id"])
    assert "for example 25 " in text_of((await outgoing(world, chat))[-1])
    replies = await world.say(chat, "2,500")
    assert "counter-offer of 2500 JPY on claim" in text_of(replies[0])
    assert (await claim_row(world, k.claim_id)).counter_offer_amount == 2_500
    await no_rejected_calls(world)


async def test_a_counter_offer_prompt_stays_when_the_chats_buyer_account_changes(
    world: World,
) -> None:
    """A consignor who also buys opens the link of another buyer account while a counter-offer
    is asked for: the buyer side changes, the consignor's prompt is not theirs to lose."""
    k = await proposal(world, ref="K-31", consignor_chat=831)
    chat = k.consignor_chat
    now = world.env.clock.now()
    first, second = await place(
        world.uows, now, order("K-31-B1", now, buyer="BB-1"), order("K-31-B2", now, buyer="BB-2")
    )
    await world.say(chat, f"/start {await world.token('buyer', first.buyer_id)}")
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    replies = await world.say(chat, f"/start {await world.token('buyer', second.buyer_id)}")
    assert "connected to another buyer account before" in text_of(replies[0])
    assert not any("cancelled" in text_of(m).lower() for m in replies), [
        text_of(m) for m in replies
    ]
    waiting = await conversation(world, chat)
    assert waiting is not None and waiting.flow == "counter_offer"
    [sent] = (await world.say(chat, "12.50"))[:1]
    assert "counter-offer of 12.50 CNY" in text_of(sent)


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


async def _two_consignor_order(world: World, ref: str, chats: tuple[int, int]) -> Placed:
    """An order with a 100.00 CNY item of one consignor and a 500.00 CNY item of another,
    each consignor bound in one of ``chats``."""
    now = world.env.clock.now()
    [placed] = await place(
        world.uows,
        now,
        order(
            ref,
            now,
            buyer=f"B-{ref}",
            lines=(
                (f"{ref}-A", f"C-{ref}-A", 1, 10_000, 1_000),
                (f"{ref}-B", f"C-{ref}-B", 1, 50_000, 5_000),
            ),
        ),
    )
    for chat, consignor_id in zip(chats, placed.consignor_ids, strict=True):
        await world.user(chat, "Ada")
        await bind(world, chat, "consignor", consignor_id)
    return placed


async def _returned(world: World, *claim_ids: int) -> None:
    """The claims' return parcels handed over, carried and received at the warehouse."""
    await world.back_office()  # approved, waybills issued
    async with world.uows() as uow:
        shipments = [s for c in claim_ids for s in await uow.shipments.for_claim(c)]
    for shipment in shipments:
        world.carrier.hand_over(shipment.tracking_number)
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()


async def _inspect(world: World, claim_id: int, damaged: bool, amount: int = 0) -> None:
    async with world.uows() as uow:
        lines = await uow.claims.lines(claim_id)
        result = Inspection.DAMAGED if damaged else Inspection.INTACT
        await returns.inspect_return(
            uow,
            world.env,
            STAFF,
            claim_id,
            None,
            dict.fromkeys((line.id for line in lines), result),
            Liability.CONSIGNOR if damaged else None,
            amount if damaged else None,
        )
        await uow.commit()
    await world.back_office()


async def test_items_of_two_consignors_make_a_claim_each_answered_by_its_own_consignor(
    world: World,
) -> None:
    ada, bo = 751, 752
    p = await _two_consignor_order(world, "K-7", (ada, bo))
    draft = ClaimDraft(
        ClaimType.RETURN_REFUND,
        Reason.NO_REASON_7_DAYS,
        (LineRequest(p.line_ids[0], 1), LineRequest(p.line_ids[1], 1)),
    )
    buyer = Actor(Role.BUYER, p.buyer_id)
    async with world.uows() as uow:
        with pytest.raises(InvalidClaim) as refused:  # no path opens a shared claim
            await filing.file_claim(uow, world.env, buyer, draft)
        assert refused.value.params["reason"] == "several_consignors"
        mine, theirs = await filing.file_claims(uow, world.env, buyer, draft)
        await uow.commit()
    assert (mine.claimed_amount, theirs.claimed_amount) == (10_000, 50_000)
    await _returned(world, mine.id, theirs.id)
    await _inspect(world, mine.id, damaged=False)
    await _inspect(world, theirs.id, damaged=True, amount=30_000)

    # Each consignor hears of their own claim only, and sees only their own item.
    assert not any(f"#{theirs.id}" in text_of(m) for m in await outgoing(world, ada))
    assert not any(f"#{mine.id}" in text_of(m) for m in await outgoing(world, bo))
    card = await open_card(world, bo, theirs.id, "We propose a compensation")
    assert "Item K-7-B" in text_of(card) and "500.00 CNY" in text_of(card)
    assert "Item K-7-A" not in text_of(card) and "600.00" not in text_of(card)
    own = await message_with(world, ada, f"#{mine.id}")
    version = (await claim_row(world, theirs.id)).version
    for data in (f"c:{theirs.id}:view:0", f"c:{theirs.id}:accept_compensation:{version}"):
        answer = await forge_press(world, ada, own, data)
        assert f"no claim {theirs.id} that you can see" in answer["text"]

    # The counter-offer is capped by the damaged item, not by the order.
    await press(world, bo, card, "Dispute")
    assert "at most 500.00 CNY" in text_of((await outgoing(world, bo))[-1])
    await world.say(bo, "/cancel")
    await press(world, bo, card, "Accept")
    await _settle(world)

    # Settlement: each consignor's message and account carry their own claim only.
    [ada_settled] = [t for m in await outgoing(world, ada) if "settled" in (t := text_of(m))]
    [bo_settled] = [t for m in await outgoing(world, bo) if "settled" in (t := text_of(m))]
    assert f"#{mine.id}" in ada_settled and "your account changes by -90.00 CNY" in ada_settled
    assert f"#{theirs.id}" in bo_settled and "your account changes by -750.00 CNY" in bo_settled
    [balance] = await world.say(ada, "/balance")
    assert "Damage compensation" not in balance["text"]
    [balance] = await world.say(bo, "/balance")
    assert "Damage compensation -300.00 CNY" in balance["text"]
    await no_rejected_calls(world)


async def test_a_claim_shared_by_two_consignors_shows_each_their_own_lines_only(
    world: World,
) -> None:
    """A claim on two consignors' items (filed before filing kept claims to one consignor) is
    read by each consignor as their own lines only, and neither may answer for it: neither
    is offered Accept or Dispute, each is told why, and a press all the same (an older card,
    a forged button) is refused without opening a counter-offer prompt nobody could finish."""
    ada, bo = 761, 762
    p = await _two_consignor_order(world, "K-8", (ada, bo))
    draft = ClaimDraft(
        ClaimType.RETURN_REFUND,
        Reason.NO_REASON_7_DAYS,
        (LineRequest(p.line_ids[0], 1), LineRequest(p.line_ids[1], 1)),
    )
    async with world.uows() as uow:  # written as an older version would have
        claim = await uow.claims.add(p.buyer_id, draft, "CNY", 60_000, world.env.clock.now())
        await uow.claims.add_line(claim.id, p.line_ids[0], 1, 10_000)
        await uow.claims.add_line(claim.id, p.line_ids[1], 1, 50_000)
        await uow.commit()
    await _returned(world, claim.id)
    await _inspect(world, claim.id, damaged=True, amount=30_000)

    card = await open_card(world, ada, claim.id, "We propose a compensation")
    assert "Item K-8-A" in text_of(card) and "Item K-8-B" not in text_of(card)
    assert "100.00 CNY" in text_of(card) and "600.00" not in text_of(card)
    assert "Accept" not in buttons(card) and "Dispute" not in buttons(card)
    assert "our team decides its compensation" in text_of(card)
    version = (await claim_row(world, claim.id)).version
    bo_card = await open_card(world, bo, claim.id, "We propose")
    assert "Dispute" not in buttons(bo_card)
    for trigger, chat, drawn in (
        ("accept_compensation", ada, card),
        ("dispute_compensation", bo, bo_card),
    ):
        answer = await forge_press(
            world, chat, drawn, ClaimAction(claim.id, trigger, version).pack()
        )
        assert "our team decides its compensation" in answer["text"] and answer["show_alert"]
    assert await conversation(world, bo) is None  # no prompt left open
    claim_now = await claim_row(world, claim.id)
    assert (claim_now.version, claim_now.counter_offer_amount) == (version, None)
    await no_rejected_calls(world)


async def _new_texts(world: World, chat: int, before: int) -> list[str]:
    return [text_of(m) for m in (await outgoing(world, chat))[before:]]


async def test_the_consignor_hears_what_staff_decided_and_which_way_the_money_goes(
    world: World,
) -> None:
    k = await proposal(world, ref="K-9", consignor_chat=771)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    await world.say(chat, "12.50")
    await world.back_office()  # "disputed" told
    before = len(await outgoing(world, chat))
    async with world.uows() as uow:
        await returns.resolve_compensation(uow, world.env, STAFF, k.claim_id, None, 2_000)
        await uow.commit()
    await world.back_office()
    [decided] = await _new_texts(world, chat, before)
    assert f"#{k.claim_id}" in decided
    assert "our team has decided the compensation: 20.00 CNY" in decided
    assert "deducted from your account" in decided

    # Credited, when someone else is liable; and "no compensation" said as such.
    other = await proposal(world, ref="K-10", consignor_chat=772, liability=Liability.PLATFORM)
    await world.say(other.consignor_chat, "/lang zh-CN")
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()  # no answer in time: staff decide
    before = len(await outgoing(world, other.consignor_chat))
    async with world.uows() as uow:
        await returns.resolve_compensation(uow, world.env, STAFF, other.claim_id, None, 4_000)
        await uow.commit()
    await world.back_office()
    [decided] = await _new_texts(world, other.consignor_chat, before)
    assert "平台已裁定赔偿 40.00 CNY，将在结算时计入您的账户" in decided
    await no_rejected_calls(world)


@pytest.mark.parametrize(
    ("liability", "words"),
    [
        (Liability.CONSIGNOR, "We propose a compensation of 30.00 CNY from your account"),
        (Liability.BUYER, "the buyer is liable. We propose that 30.00 CNY is kept back"),
        (Liability.PLATFORM, "the platform is liable. We propose to credit 30.00 CNY"),
        (Liability.CARRIER, "the carrier is liable. We propose to credit 30.00 CNY"),
    ],
)
async def test_the_proposal_says_which_way_the_compensation_goes(
    world: World, liability: Liability, words: str
) -> None:
    k = await proposal(world, ref="K-11", consignor_chat=781, liability=liability)
    [note] = [t for m in await outgoing(world, k.consignor_chat) if "propose" in (t := text_of(m))]
    assert words in note
    assert ("from your account" in note) is (liability is Liability.CONSIGNOR)
    assert ("credit" in note) is (liability is not Liability.CONSIGNOR)


async def test_a_proposal_left_unanswered_is_not_called_disputed(world: World) -> None:
    k = await proposal(world, ref="K-12", consignor_chat=791)
    before = len(await outgoing(world, k.consignor_chat))
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    [note] = await _new_texts(world, k.consignor_chat, before)
    assert "was not answered in time, so our team will decide it and tell you" in note
    assert "disputed" not in note
    await no_rejected_calls(world)


async def test_cancel_at_the_counter_offer_prompt_says_nothing_was_disputed(world: World) -> None:
    k = await proposal(world, ref="K-13", consignor_chat=795)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    [reply] = await world.say(chat, "/cancel")
    assert f"Nothing was disputed on claim #{k.claim_id}" in text_of(reply)
    assert "filed" not in text_of(reply)
    assert await conversation(world, chat) is None
    [reply] = await world.say(chat, "/cancel")
    assert text_of(reply) == "There is nothing to cancel."
    await no_rejected_calls(world)


async def test_a_counter_offer_typed_while_the_bot_was_down_is_taken_once(world: World) -> None:
    world.provoke("getUpdates: None")  # the killed bot's poll is cut off
    k = await proposal(world, ref="K-14", consignor_chat=797)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    await press(world, chat, card, "Dispute")
    async with restarted_bot(world) as up:
        typed = await world.client.send(chat, "12.50")  # waits at "Telegram" meanwhile
        await up()
        await world.handled(typed["update_id"])
    assert "counter-offer of 12.50 CNY" in text_of((await outgoing(world, chat))[-2])
    claim = await claim_row(world, k.claim_id)
    assert (claim.status in DISPUTED, claim.counter_offer_amount) == (True, 1_250)
    # The same update delivered again (a redelivery after a crash) changes nothing.
    again = Incoming(typed["update_id"], ChatUser(chat, "Wang", "en"), chat, text="12.50")
    assert await engine.process(world.services, again) == []
    triggers = [e.trigger for e in await _timeline(world, k.claim_id)]
    assert triggers.count("dispute_compensation") == 1
    rejected = (await world.client.calls(ok=False))["calls"]
    assert [c["method"] for c in rejected if c.get("error_code") is not None] == []


async def _also_filing(world: World, k: Proposal, ref: str) -> tuple[str, str, dict[str, object]]:
    """The consignor of ``k`` is a buyer too (of order ``ref``), halfway through filing a
    claim of their own: the draft as stored."""
    now = world.env.clock.now()
    [bought] = await place(
        world.uows, now, order(ref, now, buyer=f"B-{ref}", lines=((ref, "C-X", 1, 5_000, 500),))
    )
    await bind(world, k.consignor_chat, "buyer", bought.buyer_id)
    await world.say(k.consignor_chat, "/new")
    row = await conversation(world, k.consignor_chat)
    assert row is not None
    return (row.flow, row.step, dict(row.data))


async def _dialog(world: World, chat: int) -> tuple[str, str, dict[str, object]] | None:
    row = await conversation(world, chat)
    return None if row is None else (row.flow, row.step, dict(row.data))


async def test_dispute_pressed_while_filing_a_claim_keeps_the_draft_and_says_so(
    world: World,
) -> None:
    """One person may be a buyer and a consignor. Dispute pressed while their own claim is
    half filed leaves the draft as it was and says what it waits for; a counter-offer being
    typed is not dropped by /new either, and once its claim has moved on it holds nothing up."""
    k = await proposal(world, ref="K-15", consignor_chat=801)
    chat = k.consignor_chat
    kept = await _also_filing(world, k, "K-15-OWN")
    version = (await claim_row(world, k.claim_id)).version

    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    answer = await press(world, chat, card, "Dispute")
    assert "You are in the middle of filing a claim" in (answer["text"] or "")
    assert await _dialog(world, chat) == kept
    assert not any("What amount do you propose" in text_of(m) for m in await outgoing(world, chat))
    assert (await claim_row(world, k.claim_id)).version == version

    [reply] = await world.say(chat, "/cancel")
    assert "Nothing was filed" in text_of(reply)
    await press(world, chat, card, "Dispute")
    assert "What amount do you propose" in text_of((await outgoing(world, chat))[-1])
    [reply] = await world.say(chat, "/new")
    assert f"still waiting for your counter-offer on claim #{k.claim_id}" in text_of(reply)
    assert (await _dialog(world, chat) or ("",))[0] == "counter_offer"

    # The answer deadline passes: the counter-offer waits for nobody, and /new files.
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    [orders] = await world.say(chat, "/new")
    assert "which order" in text_of(orders).lower(), text_of(orders)
    assert await _dialog(world, chat) == kept
    await no_rejected_calls(world)


async def test_accept_pressed_while_filing_a_claim_keeps_the_draft(world: World) -> None:
    k = await proposal(world, ref="K-16", consignor_chat=802)
    chat = k.consignor_chat
    kept = await _also_filing(world, k, "K-16-OWN")
    card = await open_card(world, chat, k.claim_id, "We propose a compensation")
    answer = await press(world, chat, card, "Accept")
    assert "Accepted: 30.00 CNY" in answer["text"]
    assert (await claim_row(world, k.claim_id)).status not in ACCEPT_FROM
    assert await _dialog(world, chat) == kept  # the claim being filed is still there
    await no_rejected_calls(world)
