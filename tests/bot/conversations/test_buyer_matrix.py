"""Bad input at every buyer step, as tables: content the bot cannot use (sent the way Telegram
sends it, through the real dispatcher), a dialog started while another is open, a buyer's
commands in a group chat, an edited message. Each answers with a clear sentence and changes
nothing. (The steps' other bad inputs — wrong files, sizes, lengths, stale and forged buttons,
duplicate updates — are in test_buyer.py and test_buyer_flows.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.conversations.callbacks import ClaimAction
from bot.telegram_aiogram.dispatcher import ALLOWED_UPDATES
from tests.bot.conversations.buyer_kit import (
    OTHER_CONTENT,
    bound_buyer,
    claim_ids,
    deliver,
    direct,
    draft,
    no_rejected_calls,
    press,
    raw_message,
    status,
    texts,
    toast_texts,
)
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import answered, buttons, last, toasts
from tests.sandbox.sandbox_testkit import png
from workflow.claims import Actor, Role
from workflow.services import review

ANN = 891
AGENT = Actor(Role.AGENT, 1)


async def _file(world: World, ref: str, kind: str, reason: str) -> int:
    """File a claim on item A of order ``ref`` through the dialog; its number."""
    await world.say(ANN, "/new")
    for label in (ref, f"Item {ref}-A", "Next", kind, reason, "Skip", "Done", "Confirm"):
        await press(world, ANN, label)
    return (await claim_ids(world))[-1]


async def _asked(world: World, claim_id: int) -> None:
    async with world.uows() as uow:
        version = (await status(world, claim_id))[1]
        await review.request_info(uow, world.env, AGENT, claim_id, version, "Which colour?")
        await uow.commit()
    await world.back_office()


async def _card(world: World, claim_id: int) -> dict[str, Any]:
    [card] = await world.say(ANN, f"/claim {claim_id}")
    return card


async def _answering(world: World) -> None:
    claim_id = await _file(world, "M-1", "Refund only", "Not as described")  # for a person
    await world.back_office()
    await _asked(world, claim_id)
    await press(world, ANN, "Answer", await _card(world, claim_id))


async def _shipping(world: World) -> None:
    claim_id = await _file(world, "M-1", "Return and refund", "7-day")
    await world.back_office()  # approved; the return waybill is issued
    await press(world, ANN, "I have sent it back", await _card(world, claim_id))


async def _rating(world: World) -> None:
    claim_id = await _file(world, "M-1", "Refund only", "Quality issue")
    [withdrawn] = await press(world, ANN, "Withdraw", await _card(world, claim_id))
    [stars] = await press(world, ANN, "⭐ Rate", withdrawn)
    await press(world, ANN, "⭐⭐⭐", stars)


def _filing(*labels: str) -> Callable[[World], Awaitable[None]]:
    async def reach(world: World) -> None:
        await world.say(ANN, "/new")
        for label in labels:
            await press(world, ANN, label)

    return reach


async def _nothing_open(world: World) -> None:
    pass


DESCRIBE = ("M-1", "Item M-1-A", "Next", "Return and refund", "Damaged in transit")
# step → (how to reach it, what the bot says to a message it cannot use there, whether a
# photo's caption would be taken there as typed text if the photo were not refused whole)
STEPS: dict[str, tuple[Callable[[World], Awaitable[None]], str, bool]] = {
    "order": (_filing(), "use the buttons", False),
    "description": (_filing(*DESCRIBE), "description as text", True),
    "photos": (_filing(*DESCRIBE, "Skip"), "send a photo", False),
    "summary": (_filing(*DESCRIBE, "Skip", "Done"), "use the buttons", False),
    "answer": (_answering, "text or a photo", False),
    "return waybill": (_shipping, "waybill number from the label as text", True),
    "rating comment": (_rating, "comment as text", True),
    "no dialog": (_nothing_open, "Here is what you can do", False),
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_content_the_bot_cannot_use_is_refused_whole_at_every_step(
    world: World, step: str
) -> None:
    """A sticker, a voice note, a video, a location, a poll, a die — with a caption where
    Telegram allows one — is answered with the step's own request and changes nothing: a
    caption is not taken as the description, the answer, the waybill number or the comment
    while what it came with is dropped unsaid. Where a photo is not wanted, a captioned
    photo is refused the same way."""
    await bound_buyer(world, ANN, "BX1", ("M-1",))
    reach, wanted, refuses_photos = STEPS[step]
    await reach(world)
    before = (await draft(world, ANN), [await status(world, c) for c in await claim_ids(world)])
    for kind, content in OTHER_CONTENT.items():
        replies = await deliver(world, ANN, message=raw_message(ANN, **content))
        assert replies and wanted in replies[0]["text"], (step, kind, texts(replies))
        after = (await draft(world, ANN), [await status(world, c) for c in await claim_ids(world)])
        assert after == before, (step, kind)
    if refuses_photos:
        sent = await world.client.send_file(
            ANN, "photo", png(), "label.png", "image/png", caption="AB1234567"
        )
        await world.handled(sent["update_id"])
        assert wanted in (await last(world, ANN))["text"]
        assert (
            await draft(world, ANN),
            [await status(world, c) for c in await claim_ids(world)],
        ) == before
    await no_rejected_calls(world)


async def test_a_dialog_started_while_another_is_open_keeps_the_open_one(world: World) -> None:
    """One dialog at a time: /new, Answer, "I have sent it back" or a star, pressed while
    another dialog waits, says what that one waits for and leaves it as it was (a half-filed
    claim is not reset, an answer for staff not dropped); /cancel then says what it left."""
    await bound_buyer(world, ANN, "BX2", ("Q-1", "Q-2", "Q-3", "Q-4"))
    rated = await _file(world, "Q-3", "Refund only", "Quality issue")
    [withdrawn] = await press(world, ANN, "Withdraw", await _card(world, rated))
    asked = await _file(world, "Q-1", "Refund only", "Not as described")
    returned = await _file(world, "Q-2", "Return and refund", "7-day")
    await world.back_office()
    await _asked(world, asked)
    answer_card, return_card = await _card(world, asked), await _card(world, returned)
    claims_before = [await status(world, c) for c in (rated, asked, returned)]

    async def said_by(act: Callable[[], Awaitable[list[dict[str, Any]]]]) -> str:
        replies = texts(await act())  # a press waits for its answer: the last toast
        return " ".join([*replies, *(await toasts(world, ANN))[-1:]])

    async def stars() -> list[dict[str, Any]]:
        [shown] = await press(world, ANN, "⭐ Rate", withdrawn)
        return await press(world, ANN, "⭐⭐⭐", shown)

    async def filing() -> list[dict[str, Any]]:
        replies = await world.say(ANN, "/new")
        if await draft(world, ANN) == ("file_claim", "order", {"page": 0}):
            replies += await press(world, ANN, "Q-4")
        return replies

    # flow → (open it, what it waits for, what /cancel says it left)
    dialogs: dict[str, tuple[Callable[[], Awaitable[list[dict[str, Any]]]], str, str]] = {
        "file_claim": (filing, "in the middle of filing a claim", "Nothing was filed"),
        "answer_info": (
            lambda: press(world, ANN, "Answer", answer_card),
            f"your answer to claim #{asked}",
            f"Nothing was sent for claim #{asked}",
        ),
        "return_tracking": (
            lambda: press(world, ANN, "I have sent it back", return_card),
            f"waybill number for claim #{returned}",
            f"Nothing changed on claim #{returned}",
        ),
        "rate_claim": (stars, f"comment on claim #{rated}", f"Claim #{rated} was not rated"),
    }
    for flow, (open_it, waits_for, left) in dialogs.items():
        await open_it()
        kept = await draft(world, ANN)
        assert kept is not None and kept[0] == flow
        for other, (start_it, _, _) in dialogs.items():
            said = await said_by(start_it)
            if other == flow == "file_claim":  # /new again: the draft shown where it stands
                assert "already filing a claim" in said and "tap the items" in said
            elif other == flow:  # the same button again asks the same question again
                continue
            else:
                assert waits_for in said, (flow, other, said)
            assert await draft(world, ANN) == kept, (flow, other)
        [bye] = await world.say(ANN, "/cancel")
        assert left in bye["text"]
        assert await draft(world, ANN) is None
    assert [await status(world, c) for c in (rated, asked, returned)] == claims_before
    await no_rejected_calls(world)


async def test_a_dialog_whose_claim_moved_on_does_not_block_a_new_one(world: World) -> None:
    """The buyer opened an answer for staff, then staff decided without it: nobody waits for
    that answer any more, so /new starts filing instead of naming the dead dialog."""
    await bound_buyer(world, ANN, "BX4", ("M-1", "M-2"))
    asked = await _file(world, "M-1", "Refund only", "Not as described")
    await world.back_office()
    await _asked(world, asked)
    await press(world, ANN, "Answer", await _card(world, asked))
    assert (await draft(world, ANN) or ("",))[0] == "answer_info"
    async with world.uows() as uow:
        version = (await status(world, asked))[1]
        await review.reject(uow, world.env, AGENT, asked, version, "Not covered")
        await uow.commit()
    await world.back_office()
    [orders] = await world.say(ANN, "/new")
    assert "which order" in orders["text"].lower() and "M-2" in " ".join(buttons(orders))
    assert await draft(world, ANN) == ("file_claim", "order", {"page": 0})
    await no_rejected_calls(world)


async def test_a_buyers_commands_in_a_group_are_answered_in_private_only(world: World) -> None:
    """Someone added the bot to a group: a buyer's /claims, /claim, /status, /new (typed, or
    pressed on the menu /help shows there) would show their claims and orders to everyone.
    They are refused with where to ask instead; nothing is opened."""
    await bound_buyer(world, ANN, "BX3", ("G-1",))
    claim_id = await _file(world, "G-1", "Refund only", "Quality issue")
    group = await world.client.create_chat(title="Family", members=[ANN])
    for command in ("/claims", f"/claim {claim_id}", f"/status {claim_id}", "/new"):
        sent = await world.client.send(ANN, command, chat_id=group["id"])
        await world.handled(sent["update_id"])
        reply = await last(world, group["id"])
        assert "only in our private chat" in reply["text"] and "@sandbox_bot" in reply["text"]
        assert buttons(reply) == [] and not reply.get("photo")
    sent = await world.client.send(ANN, "/help", chat_id=group["id"])
    await world.handled(sent["update_id"])
    menu = await last(world, group["id"])
    [new] = [
        b for row in menu["reply_markup"]["inline_keyboard"] for b in row if "New" in b["text"]
    ]
    pressed = await world.client.press(
        ANN, menu["message_id"], callback_data=new["callback_data"], chat_id=group["id"]
    )
    await answered(world, group["id"], pressed["callback_query_id"])
    assert "only in our private chat" in (await toasts(world, group["id"]))[-1]
    shown = texts(
        [m for m in (await world.client.messages(group["id"]))["messages"] if m["outgoing"]]
    )
    assert not any(f"#{claim_id}" in x or "G-1" in x for x in shown)
    forged = await direct(world, ANN, callback_data="bp:c:0", chat_type="supergroup")
    assert "only in our private chat" in toast_texts(forged)[0]
    for action in ("view", "withdraw"):  # a claim card's button, forged into the group
        data = ClaimAction(claim_id, action, 1).pack()
        forged = await direct(world, ANN, callback_data=data, chat_type="supergroup")
        assert [type(o).__name__ for o in forged] == ["Toast"]
        assert "only in our private chat" in toast_texts(forged)[0]
    assert await draft(world, ANN) is None
    [private] = await world.say(ANN, "/claims")  # in the private chat, as ever
    assert f"#{claim_id}" in buttons(private)[0]
    # /cancel in the group neither ends the private dialog nor talks about it there
    await world.say(ANN, "/new")
    opened = await draft(world, ANN)
    sent = await world.client.send(ANN, "/cancel", chat_id=group["id"])
    await world.handled(sent["update_id"])
    assert (await last(world, group["id"]))["text"] == "There is nothing to cancel."
    assert opened is not None and await draft(world, ANN) == opened
    await no_rejected_calls(world)


async def test_an_edited_message_is_not_read_and_the_buyer_is_told(world: World) -> None:
    """Telegram sends edits as their own updates: the bot asks for them, acts on none (an
    edited description stays as first sent, an edited command is not run) and tells the
    buyer in their private chat; in a group an edit is passed over quietly."""
    assert "edited_message" in ALLOWED_UPDATES
    await bound_buyer(world, ANN, "BX4", ("M-1",))
    await _filing(*DESCRIBE)(world)
    sent = await world.client.send(ANN, "Scratched lid")
    await world.handled(sent["update_id"])
    kept = await draft(world, ANN)
    assert kept is not None and kept[2]["description"] == "Scratched lid"
    for text in ("Cracked lid", "/cancel"):
        edited = raw_message(ANN, text=text, edit_date=1_767_225_700)
        edited["message_id"] = sent["message_id"]
        [note] = await deliver(world, ANN, edited_message=edited)
        assert "that edit changes nothing" in note["text"]
        assert await draft(world, ANN) == kept
    group = await world.client.create_chat(title="Family", members=[ANN])
    chat = {"id": group["id"], "type": "supergroup", "title": "Family"}
    in_group = raw_message(ANN, chat=chat, text="/claims", edit_date=1_767_225_700)
    assert await deliver(world, group["id"], edited_message=in_group) == []
    assert await draft(world, ANN) == kept
    await no_rejected_calls(world)
