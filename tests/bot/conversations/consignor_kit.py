"""Helpers for the consignor's conversation tests: a claim brought to a compensation
proposal through the real services, and pressing buttons (real or forged) in the sandbox."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from sandbox.world import CallbackQuery
from storage import tables as t
from tests.bot.conversations.conftest import World
from tests.factories import Placed, order, place
from workflow.claims import (
    Actor,
    ClaimDraft,
    ClaimType,
    Inspection,
    Liability,
    LineRequest,
    Reason,
    Role,
)
from workflow.services import filing, returns

STAFF = Actor(Role.SUPERVISOR, None)


@dataclass(frozen=True)
class Proposal:
    claim_id: int
    placed: Placed
    consignor_chat: int


async def bind(world: World, chat: int, kind: str, party_id: int) -> None:
    await world.say(chat, f"/start {await world.token(kind, party_id)}")


async def file_return(world: World, placed: Placed) -> int:
    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, placed.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND,
                Reason.NO_REASON_7_DAYS,
                (LineRequest(placed.line_ids[0], 1),),
            ),
        )
        await uow.commit()
    return claim.id


async def proposal(
    world: World,
    ref: str = "K-1",
    consignor_chat: int = 701,
    lang: str = "en",
    compensation: int = 3_000,
    liability: Liability = Liability.CONSIGNOR,
    currency: str = "CNY",
) -> Proposal:
    """A no-reason return of an item worth 10000 minor units (100.00 CNY), sent back,
    received, found damaged: the consignor (bound in ``consignor_chat``) has a compensation
    proposal to answer."""
    now = world.env.clock.now()
    line = (f"SKU-{ref}", f"C-{ref}", 1, 10_000, 1_000)
    [placed] = await place(
        world.uows, now, order(ref, now, buyer=f"B-{ref}", lines=(line,), currency=currency)
    )
    await world.user(consignor_chat, "Wang", lang)
    await bind(world, consignor_chat, "consignor", placed.consignor_ids[0])
    claim_id = await file_return(world, placed)
    await world.back_office()  # auto-approved, waybill issued
    async with world.uows() as uow:
        [shipment] = await uow.shipments.for_claim(claim_id)
    world.carrier.hand_over(shipment.tracking_number)
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()  # the parcel travels and arrives
    async with world.uows() as uow:
        [line] = await uow.claims.lines(claim_id)
        await returns.inspect_return(
            uow,
            world.env,
            STAFF,
            claim_id,
            None,
            {line.id: Inspection.DAMAGED},
            liability,
            compensation,
        )
        await uow.commit()
    await world.back_office()
    return Proposal(claim_id, placed, consignor_chat)


async def claim_row(world: World, claim_id: int) -> t.Claim:
    async with world.uows() as uow:
        claim = await uow.session.get(t.Claim, claim_id)
        assert claim is not None
        return claim


async def conversation(world: World, chat: int) -> t.Conversation | None:
    async with world.uows() as uow:
        return (
            await uow.session.execute(
                select(t.Conversation).where(t.Conversation.external_id == chat)
            )
        ).scalar_one_or_none()


async def outgoing(world: World, chat: int) -> list[dict[str, Any]]:
    return [m for m in (await world.client.messages(chat))["messages"] if m["outgoing"]]


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text") or message.get("caption") or "")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Visible label → callback data."""
    markup = message.get("reply_markup") or {}
    return {
        b["text"]: b.get("callback_data", "")
        for row in markup.get("inline_keyboard", [])
        for b in row
    }


async def message_with(world: World, chat: int, needle: str) -> dict[str, Any]:
    """The latest bot message in ``chat`` whose text contains ``needle``."""
    found = [m for m in await outgoing(world, chat) if needle in text_of(m)]
    assert found, (
        f"no message with {needle!r} in {[text_of(m) for m in await outgoing(world, chat)]}"
    )
    return found[-1]


async def answered(world: World, chat: int, query_id: str) -> dict[str, Any]:
    """Wait until the bot has answered a button press; returns the answer."""
    for _ in range(200):
        await world.client.wait_idle(quiet_ms=30)
        view = await world.client.messages(chat)
        for answer in view["callback_answers"]:
            if answer["callback_query_id"] == query_id and answer["answered"]:
                await world.client.wait_idle(quiet_ms=30)
                return dict(answer)
    raise AssertionError(f"press {query_id} was never answered")


async def press(world: World, chat: int, message: dict[str, Any], label: str) -> dict[str, Any]:
    """Press the button labelled ``label`` on ``message``; returns the press's answer."""
    data = buttons(message).get(label)
    assert data, f"no button {label!r} in {list(buttons(message))}"
    pressed = await world.client.press(chat, message["message_id"], callback_data=data)
    return await answered(world, chat, pressed["callback_query_id"])


async def forge_press(
    world: World, chat: int, message: dict[str, Any], data: str
) -> dict[str, Any]:
    """A press with callback data that was never on the message (a modified client can send
    any bytes): enqueued straight into the sandbox, answered through the real dispatcher."""
    sandbox = world.sandbox.world
    user = sandbox.users[chat]
    query_id = str(secrets.randbits(63))
    stored = sandbox.find_chat(chat).messages[message["message_id"]]  # type: ignore[union-attr]
    update_id = sandbox.enqueue(
        "callback_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "message": stored,
            "chat_instance": str(chat * 7919 % 10**18),
            "data": data,
        },
    )
    sandbox.callbacks[query_id] = CallbackQuery(
        id=query_id,
        user_id=chat,
        chat_id=chat,
        message_id=message["message_id"],
        data=data,
        update_id=update_id,
        created=time.time(),
    )
    return await answered(world, chat, query_id)


async def open_card(world: World, chat: int, claim_id: int, needle: str) -> dict[str, Any]:
    """Press "Open claim" on the latest notification containing ``needle``; returns the card."""
    note = await message_with(world, chat, needle)
    await press(world, chat, note, next(label for label in buttons(note)))
    [card] = [m for m in await outgoing(world, chat) if m["message_id"] == note["message_id"]]
    assert f"#{claim_id}" in text_of(card)
    return card


async def no_rejected_calls(world: World, not_modified: int = 0) -> None:
    """No Bot API call was refused, except ``not_modified`` edits that changed nothing (a
    double press redraws a card the first press already redrew)."""
    refused = (await world.client.calls(ok=False))["calls"]
    unchanged = [
        c
        for c in refused
        if c["method"] == "editMessageText" and "not modified" in c.get("description", "")
    ]
    assert len(unchanged) == not_modified, refused
    assert [c for c in refused if c not in unchanged] == []
