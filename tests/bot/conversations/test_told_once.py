"""Nobody is told the same thing twice.

The party who took a step reads the bot's answer in the chat they took it in: the stage
message about that step goes to their other chats only (and to every other party as before).
Messages to one party about one claim written in one transaction — a step and the steps it
set off — arrive as one message, a line each, with one Open claim button.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot.limits import CAPTION, visible_length
from storage import tables as t
from tests.bot.conversations import kit
from tests.bot.conversations.buyer_kit import claim_ids, press
from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import (
    STAFF,
    bind,
    open_card,
    outgoing,
    proposal,
    text_of,
)
from tests.factories import Placed, order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.services import filing, returns, review
from workflow.services.review import MAX_NOTE_CHARS


async def _placed(world: World, ref: str, buyer_chat: int, consignor_chat: int) -> Placed:
    """An order of one 100.00 CNY item, its buyer and its consignor each bound to a chat."""
    now = world.env.clock.now()
    lines = ((f"{ref}-A", f"C-{ref}", 1, 10_000, 1_000),)
    [placed] = await place(world.uows, now, order(ref, now, buyer=f"B-{ref}", lines=lines))
    await world.user(buyer_chat, "Ann")
    await bind(world, buyer_chat, "buyer", placed.buyer_id)
    await world.user(consignor_chat, "Wang")
    await bind(world, consignor_chat, "consignor", placed.consignor_ids[0])
    return placed


async def _file_in_chat(world: World, chat: int, ref: str) -> list[dict[str, Any]]:
    """The buyer files a refund-only claim (one for a person to review) through the dialog;
    returns what Confirm brought (the filed note in place of the summary, and the card)."""
    await world.say(chat, "/new")
    for label in (ref, f"Item {ref}-A", "Next", "Refund only", "Not as described", "Skip", "Done"):
        await press(world, chat, label)
    return await press(world, chat, "Confirm")


def _filed_told(messages: list[dict[str, Any]], claim_id: int) -> int:
    """How many messages tell the buyer their claim was filed (the answer to Confirm, or the
    stage message)."""
    return sum(
        f"Claim #{claim_id} filed." in text_of(m)
        or f"Claim #{claim_id} has been filed" in text_of(m)
        for m in messages
    )


async def _outbox(world: World, claim_id: int, kind: str) -> list[t.Outbox]:
    async with world.uows() as uow:
        stmt = (
            select(t.Outbox)
            .where(t.Outbox.claim_id == claim_id, t.Outbox.recipient_kind == kind)
            .order_by(t.Outbox.id)
        )
        return list((await uow.session.scalars(stmt)).all())


async def _deliveries(world: World, outbox_id: int) -> list[t.Delivery]:
    async with world.uows() as uow:
        stmt = select(t.Delivery).where(t.Delivery.outbox_id == outbox_id)
        return list((await uow.session.scalars(stmt)).all())


async def test_a_buyer_who_files_is_answered_once_where_they_filed(world: World) -> None:
    """Confirm is answered with the claim's number, status and card: the "has been filed"
    message is not sent to that chat again — but it reaches the buyer's other chat, and the
    consignor hears of the claim as before."""
    ann, wang, other = 1201, 1202, 1203
    placed = await _placed(world, "TO-1", ann, wang)
    await world.user(other, "Ann (tablet)")
    await bind(world, other, "buyer", placed.buyer_id)
    filed, card = await _file_in_chat(world, ann, "TO-1")
    [claim_id] = await claim_ids(world)
    assert f"Claim #{claim_id} filed. Status: Submitted" in filed["text"]
    assert "Status: Submitted" in card["text"] and "100.00 CNY" in card["text"]
    assert "Review expected by" in card["text"]
    before = len(await outgoing(world, ann))

    await world.back_office()  # review gives the claim to a person: that, they are told
    news = [text_of(m) for m in (await outgoing(world, ann))[before:]]
    assert news == [f"👀 Claim #{claim_id} is waiting for a review by our team."]
    assert _filed_told(await outgoing(world, ann), claim_id) == 1
    elsewhere = [text_of(m) for m in await outgoing(world, other) if f"#{claim_id}" in text_of(m)]
    assert elsewhere == [
        f"📝 Claim #{claim_id} has been filed (100.00 CNY). We are reviewing it.",
        f"👀 Claim #{claim_id} is waiting for a review by our team.",
    ]
    assert any(
        f"A buyer filed claim #{claim_id} about your item (100.00 CNY)" in text_of(m)
        for m in await outgoing(world, wang)
    )
    [told, _in_review] = await _outbox(world, claim_id, "buyer")
    assert [d.chat_id for d in await _deliveries(world, told.id)] == [other]


async def test_told_where_they_acted_is_never_held_for_a_later_chat(world: World) -> None:
    """A buyer whose only chat is the one they filed in: the message about their filing is
    done (not held for a chat), and a chat they bind later is not sent it."""
    ann, wang, later = 1211, 1212, 1213
    placed = await _placed(world, "TO-2", ann, wang)
    await _file_in_chat(world, ann, "TO-2")
    [claim_id] = await claim_ids(world)
    await world.back_office()
    assert _filed_told(await outgoing(world, ann), claim_id) == 1
    [told, _in_review] = await _outbox(world, claim_id, "buyer")
    assert told.sent_at is not None and told.last_error is None
    assert await _deliveries(world, told.id) == []

    await world.user(later, "Ann (new phone)")
    await bind(world, later, "buyer", placed.buyer_id)
    await world.back_office()
    assert not any(f"#{claim_id}" in text_of(m) for m in await outgoing(world, later))
    assert await _deliveries(world, told.id) == []


async def test_a_consignor_who_accepts_a_proposal_is_not_told_it_again(world: World) -> None:
    """Accept is answered on the card, which now reads "Refund in progress": the consignor is
    not told that stage again; the buyer is."""
    k = await proposal(world, ref="TO-3", consignor_chat=1221)
    buyer_chat = 1222
    await world.user(buyer_chat, "Ann")
    await bind(world, buyer_chat, "buyer", k.placed.buyer_id)
    card = await open_card(world, k.consignor_chat, k.claim_id, "We propose a compensation")
    await kit.press(world, k.consignor_chat, "Accept", card)
    [card] = [
        m for m in await outgoing(world, k.consignor_chat) if m["message_id"] == card["message_id"]
    ]
    assert "Status: Refund in progress" in text_of(card)
    before = len(await outgoing(world, k.consignor_chat))

    await world.back_office()
    news = [text_of(m) for m in (await outgoing(world, k.consignor_chat))[before:]]
    assert not any("being refunded" in t for t in news), news
    assert any(
        f"Claim #{k.claim_id}: a refund of " in text_of(m) and "is being processed" in text_of(m)
        for m in await outgoing(world, buyer_chat)
    )
    [accepted] = [
        row for row in await _outbox(world, k.claim_id, "consignor") if row.template.endswith("ing")
    ]
    assert accepted.payload["trigger"] == "accept_compensation"
    assert await _deliveries(world, accepted.id) == []


async def test_a_buyers_own_answers_return_and_withdrawal_are_not_told_again(
    world: World,
) -> None:
    """Answering staff's question, handing the return over and withdrawing are each answered
    in the chat (a note and the card, with the new status); no stage message repeats them
    there. The consignor hears of each as before."""
    ann, wang = 1251, 1252
    now = world.env.clock.now()
    lines = (("TO-7-A", "C-TO-7", 1, 10_000, 1_000), ("TO-7-B", "C-TO-7", 1, 10_000, 1_000))
    [placed] = await place(world.uows, now, order("TO-7", now, buyer="B-TO-7", lines=lines))
    await world.user(ann, "Ann")
    await bind(world, ann, "buyer", placed.buyer_id)
    await world.user(wang, "Wang")
    await bind(world, wang, "consignor", placed.consignor_ids[0])
    asked = await _refund_only_for_a_person(world, placed)
    returned = await _no_reason_return(world, placed, placed.line_ids[1])
    await world.back_office()  # one to a person, the other approved with its waybill
    async with world.uows() as uow:
        await review.request_info(uow, world.env, STAFF, asked, None, "Which colour?")
        await uow.commit()
    await world.back_office()
    before = len(await outgoing(world, ann))

    [card] = await world.say(ann, f"/claim {asked}")
    await kit.press(world, ann, "Answer", card)
    sent, card = await world.say(ann, "Blue")
    assert "is with our team" in sent["text"] and "Status: Waiting for review" in card["text"]
    [card] = await world.say(ann, f"/claim {returned}")
    await kit.press(world, ann, "I have sent it back", card)
    noted, card = await kit.press(world, ann, "I handed it over")
    assert "on its way" in noted["text"] and "Status: Return on its way" in card["text"]
    [card] = await world.say(ann, f"/claim {asked}")
    [withdrawn] = await kit.press(world, ann, "Withdraw", card)
    assert "Status: Withdrawn" in withdrawn["text"]
    answered = len(await outgoing(world, ann))

    await world.back_office()
    assert len(await outgoing(world, ann)) == answered, [
        text_of(m) for m in (await outgoing(world, ann))[answered:]
    ]
    told = [text_of(m) for m in (await outgoing(world, ann))[before:]]
    for repeated in ("is waiting for a review", "parcel is on its way", "has been withdrawn"):
        assert not any(repeated in t for t in told), (repeated, told)
    consignor = [text_of(m) for m in await outgoing(world, wang)]
    for stage in (
        f"👀 Claim #{asked} about your item is being reviewed by our team.",
        f"🚚 Claim #{returned}: your item is on its way back to our warehouse.",
        f"↩️ The buyer withdrew claim #{asked}: the sale stands.",
    ):
        assert stage in consignor, (stage, consignor)


async def _no_reason_return(world: World, placed: Placed, line_id: int) -> int:
    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS, (LineRequest(line_id, 1),)
            ),
        )
        await uow.commit()
    return claim.id


async def _refund_only_for_a_person(world: World, placed: Placed) -> int:
    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(
                ClaimType.REFUND_ONLY,
                Reason.NOT_AS_DESCRIBED,
                (LineRequest(placed.line_ids[0], 1),),
            ),
        )
        await uow.commit()
    return claim.id


async def test_steps_of_one_transaction_arrive_as_one_message_in_each_language(
    world: World,
) -> None:
    """Staff approve a refund: the claim is approved and its refund starts in one
    transaction. Each party gets one message with both texts, in their language, with one
    Open claim button. The filing and the review, written in earlier transactions and sent in
    the same round, stay messages of their own."""
    for ref, buyer_chat, consignor_chat, lang in (
        ("TO-4", 1231, 1232, "en"),
        ("TO-5", 1233, 1234, "zh-hans"),
    ):
        now = world.env.clock.now()
        lines = ((f"{ref}-A", f"C-{ref}", 1, 10_000, 1_000),)
        [placed] = await place(world.uows, now, order(ref, now, buyer=f"B-{ref}", lines=lines))
        await world.user(buyer_chat, "Ann", lang)
        await bind(world, buyer_chat, "buyer", placed.buyer_id)
        await world.user(consignor_chat, "Wang", lang)
        await bind(world, consignor_chat, "consignor", placed.consignor_ids[0])
        claim_id = await _refund_only_for_a_person(world, placed)
        async with world.uows() as uow:  # the rules give it to a person
            await review.auto_review(uow, world.env, claim_id)
            await uow.commit()
        async with world.uows() as uow:
            await review.approve(uow, world.env, STAFF, claim_id)
            await uow.commit()
        await world.back_office()  # three transactions' messages go out together

        buyer = [m for m in await outgoing(world, buyer_chat) if f"#{claim_id}" in text_of(m)]
        consignor = [
            m for m in await outgoing(world, consignor_chat) if f"#{claim_id}" in text_of(m)
        ]
        if lang == "en":
            assert [text_of(m) for m in buyer] == [
                f"📝 Claim #{claim_id} has been filed (100.00 CNY). We are reviewing it.",
                f"👀 Claim #{claim_id} is waiting for a review by our team.",
                f"✅ Claim #{claim_id} has been approved.\n"
                f"💸 Claim #{claim_id}: a refund of 100.00 CNY is being processed.",
            ]
            assert text_of(consignor[-1]) == (
                f"✅ Claim #{claim_id} about your item has been approved.\n"
                f"💸 Claim #{claim_id} about your item: the buyer is being refunded 100.00 CNY."
            )
        else:
            assert len(buyer) == 3, [text_of(m) for m in buyer]
            assert text_of(buyer[-1]) == (
                f"✅ 售后单 #{claim_id} 已通过。\n💸 售后单 #{claim_id}：100.00 CNY 的退款处理中。"
            )
            assert text_of(consignor[-1]) == (
                f"✅ 关于您商品的售后单 #{claim_id} 已通过。\n"
                f"💸 关于您商品的售后单 #{claim_id}：正在给买家退款 100.00 CNY。"
            )
        for message in (buyer[-1], consignor[-1]):
            assert len(kit.buttons(message)) == 1  # one Open claim
        assert len(consignor) == 3  # filed, in review, then approved with the refund


async def test_a_picture_carries_the_texts_told_with_it_in_its_caption(world: World) -> None:
    """A return approved by staff and its waybill issued in one transaction: one photo (the
    waybill's QR code) whose caption says both. Texts that would make a caption longer than
    Telegram takes stay a message of their own, just before the photo."""
    ann, wang = 1241, 1242
    now = world.env.clock.now()
    lines = (("TO-6-A", "C-TO-6", 1, 10_000, 1_000), ("TO-6-B", "C-TO-6", 1, 10_000, 1_000))
    [placed] = await place(world.uows, now, order("TO-6", now, buyer="B-TO-6", lines=lines))
    await world.user(ann, "Ann")
    await bind(world, ann, "buyer", placed.buyer_id)
    await world.user(wang, "Wang")
    await bind(world, wang, "consignor", placed.consignor_ids[0])
    buyer = Actor(Role.BUYER, placed.buyer_id)
    ids = []
    for line_id, question in zip(placed.line_ids, ("", "Q" * MAX_NOTE_CHARS), strict=True):
        draft = ClaimDraft(
            ClaimType.RETURN_REFUND, Reason.NOT_AS_DESCRIBED, (LineRequest(line_id, 1),)
        )
        async with world.uows() as uow:
            claim = await filing.file_claim(uow, world.env, buyer, draft)
            await uow.commit()
        await world.back_office()  # the filing goes out; review gives the claim to a person
        async with world.uows() as uow:
            if question:  # asked, answered (not in a chat) and approved, all at once
                await review.request_info(uow, world.env, STAFF, claim.id, None, question)
                await review.provide_info(uow, world.env, buyer, claim.id, None, "Blue")
            await review.approve(uow, world.env, STAFF, claim.id)
            waybill = await world.carrier.create_waybill(f"waybill:{claim.id}", f"r-{claim.id}")
            await returns.apply_waybill(uow, world.env, claim.id, waybill)
            await uow.commit()
        await world.back_office()
        ids.append(claim.id)
    first, second = ids

    told = [m for m in await outgoing(world, ann) if f"#{first}" in text_of(m)]
    [photo] = [m for m in told if m.get("photo")]
    assert photo["caption"].startswith(
        f"✅ Claim #{first} has been approved.\n📦 Claim #{first} approved — please send the item"
    )
    assert waybill_number(photo["caption"])
    assert len(kit.buttons(photo)) == 1
    assert [m for m in told if "has been approved" in text_of(m)] == [photo]

    told = [m for m in await outgoing(world, ann) if f"#{second}" in text_of(m)]
    [photo] = [m for m in told if m.get("photo")]
    assert photo["caption"].startswith(f"📦 Claim #{second} approved — please send the item")
    assert visible_length(photo["caption"]) <= CAPTION
    [asked] = [m for m in told if "Q" * 100 in text_of(m)]
    assert asked["text"].startswith(f"❓ Claim #{second}: our team needs more information")
    assert asked["text"].endswith(
        f"👀 Claim #{second} is waiting for a review by our team.\n"
        f"✅ Claim #{second} has been approved."
    )
    assert told.index(asked) == told.index(photo) - 1


def waybill_number(caption: str) -> str:
    [number] = re.findall(r"Waybill: (\S+)", caption)
    return number
