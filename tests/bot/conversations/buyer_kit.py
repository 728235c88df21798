"""Helpers for the buyer's end-to-end tests: a bound buyer with orders, the dialog's draft as
stored, updates a client would send that the sandbox cannot (albums, forged buttons), and a
restart of the bot process in the middle of a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, select

from bot.conversations import engine
from bot.conversations.context import CHANNEL
from bot.conversations.model import ChatUser, Incoming, Output, Photo, Toast
from bot.telegram_aiogram.dispatcher import ALLOWED_UPDATES, build_dispatcher
from storage import tables as t
from tests.bot.conversations import kit
from tests.bot.conversations.conftest import World
from tests.factories import order, place

_forged = iter(range(900_000, 10**9))


@dataclass
class Buyer:
    user_id: int
    buyer_id: int
    order_ids: list[int]


async def bound_buyer(
    world: World,
    user_id: int,
    buyer: str,
    refs: tuple[str, ...] = ("O-1",),
    delivered: bool = True,
    lang: str = "en",
) -> Buyer:
    """A buyer with one order per ref (two lines: A ×2 at 100.00, B ×1 at 50.00), bound to a chat."""
    now = world.env.clock.now()
    placed = await place(
        world.uows,
        now,
        *(
            order(
                ref,
                now,
                buyer=buyer,
                delivered=delivered,
                lines=((f"{ref}-A", "C1", 2, 10_000, 1_000), (f"{ref}-B", "C1", 1, 5_000, 500)),
            )
            for ref in refs
        ),
    )
    await world.user(user_id, lang=lang)
    await world.say(user_id, f"/start {await world.token('buyer', placed[0].buyer_id)}")
    return Buyer(user_id, placed[0].buyer_id, [p.order_id for p in placed])


async def draft(world: World, user_id: int) -> tuple[str, str, dict[str, Any]] | None:
    """(flow, step, data) of the user's dialog as stored, or None."""
    async with world.uows() as uow:
        row = await uow.chat.conversation(CHANNEL, user_id)
        return None if row is None else (row.flow, row.step, dict(row.data))


async def count(world: World, table: Any) -> int:
    async with world.uows() as uow:
        return int(
            (await uow.session.execute(select(func.count()).select_from(table))).scalar_one()
        )


async def claim_ids(world: World) -> list[int]:
    async with world.uows() as uow:
        return list((await uow.session.scalars(select(t.Claim.id).order_by(t.Claim.id))).all())


async def status(world: World, claim_id: int) -> tuple[str, int]:
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        return claim.status, claim.version


async def direct(
    world: World, user_id: int, update_id: int | None = None, **fields: Any
) -> list[Output]:
    """An update a real client could send but the sandbox's users cannot (an album picture, a
    forged button, a redelivered update), through the same engine the dispatcher calls."""
    update_id = next(_forged) if update_id is None else update_id
    if "callback_data" in fields:
        fields.setdefault("callback_id", f"forged-{update_id}")
    return await engine.process(
        world.services,
        Incoming(
            update_id=update_id, user=ChatUser(user_id, "Ann", "en"), chat_id=user_id, **fields
        ),
    )


_raw = iter(range(500_000_000, 600_000_000))

# Messages a Telegram client sends that the sandbox's users cannot: content the bot has no use
# for, each with a caption where Telegram allows one (a caption is not typed text).
OTHER_CONTENT: dict[str, dict[str, Any]] = {
    "sticker": {
        "sticker": {
            "file_id": "st-1",
            "file_unique_id": "u-st-1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    },
    "voice": {
        "voice": {"file_id": "vc-1", "file_unique_id": "u-vc-1", "duration": 3},
        "caption": "AB1234567",
    },
    "video": {
        "video": {
            "file_id": "vd-1",
            "file_unique_id": "u-vd-1",
            "width": 640,
            "height": 480,
            "duration": 5,
        },
        "caption": "AB1234567",
    },
    "location": {"location": {"latitude": 31.23, "longitude": 121.47}},
    "poll": {
        "poll": {
            "id": "poll-1",
            "question": "Refund?",
            "options": [
                {"text": "yes", "voter_count": 0, "persistent_id": "y"},
                {"text": "no", "voter_count": 0, "persistent_id": "n"},
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    },
    "dice": {"dice": {"emoji": "🎲", "value": 4}},
}


def raw_message(user_id: int, chat: dict[str, Any] | None = None, **content: Any) -> dict[str, Any]:
    """A Bot API Message from ``user_id`` (in their private chat unless ``chat``)."""
    return {
        "message_id": next(_raw),
        "date": 1_767_225_600,
        "chat": chat or {"id": user_id, "type": "private", "first_name": "Ann"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        **content,
    }


async def deliver(world: World, chat_id: int, **update: Any) -> list[dict[str, Any]]:
    """Hand the bot an update as Telegram would send it (``message=…``, ``edited_message=…``)
    that the sandbox cannot make, through the same aiogram dispatcher and adapter as the
    polling bot; returns the bot's messages in ``chat_id`` that arrived in answer."""
    before = {m["message_id"] for m in (await world.client.messages(chat_id))["messages"]}
    dispatcher = build_dispatcher(world.services)
    await dispatcher.feed_raw_update(world.bot, {"update_id": next(_raw), **update})
    await world.client.wait_idle(quiet_ms=30)
    after = (await world.client.messages(chat_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


def album_photo(n: int, size: int = 50_000) -> Photo:
    return Photo(f"album-photo-{n}", f"u-album-{n}", 800, 600, size)


def toast_texts(outputs: list[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Toast)]


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in messages]


async def all_texts(world: World, chat_id: int) -> list[str]:
    return texts([m for m in (await world.client.messages(chat_id))["messages"] if m["outgoing"]])


async def no_rejected_calls(world: World, stopped_polls: int = 0) -> None:
    """No Bot API call was rejected, except long polls cut off by stopping a bot on purpose
    (``stopped_polls`` of them: the client went away, the sandbox logs the poll unanswered)."""
    rejected = (await world.client.calls(ok=False))["calls"]
    cut = [c for c in rejected if c["method"] == "getUpdates" and c.get("error_code") is None]
    assert len(cut) <= stopped_polls, cut
    others = [c for c in rejected if c not in cut]
    assert others == [], [(c["method"], c.get("description")) for c in others]


async def fresh(world: World, chat_id: int, message_id: int) -> dict[str, Any]:
    """A message as it is now (after edits)."""
    [message] = [
        m
        for m in (await world.client.messages(chat_id))["messages"]
        if m["message_id"] == message_id
    ]
    return message


async def press(
    world: World, chat_id: int, label: str, message: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Press the button whose text contains ``label`` on ``message`` (default: the last one);
    returns the bot's messages that are new or changed once the press has been answered.

    Like ``kit.press``, but waits on a deadline rather than a count of polls, so a slow
    machine (a loaded CI runner) does not fail a test that is right."""
    message = message or await kit.last(world, chat_id)
    markup = message.get("reply_markup") or {}
    matches = [b for row in markup.get("inline_keyboard", []) for b in row if label in b["text"]]
    assert matches, f"no button {label!r} in {kit.buttons(message)}"

    def shape(m: dict[str, Any]) -> tuple[Any, ...]:
        return (m.get("text"), m.get("caption"), str(m.get("reply_markup")))

    before = {m["message_id"]: shape(m) for m in (await world.client.messages(chat_id))["messages"]}
    pressed = await world.client.press(
        chat_id, message["message_id"], callback_data=matches[0]["callback_data"]
    )
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        await world.client.wait_idle(quiet_ms=30)
        view = await world.client.messages(chat_id)
        if any(
            a["callback_query_id"] == pressed["callback_query_id"] and a["answered"]
            for a in view["callback_answers"]
        ):
            break
        assert asyncio.get_running_loop().time() < deadline, f"press {label!r} never answered"
    await world.client.wait_idle(quiet_ms=30)
    after = (await world.client.messages(chat_id))["messages"]
    return [m for m in after if m["outgoing"] and before.get(m["message_id"]) != shape(m)]


@contextlib.asynccontextmanager
async def restarted_bot(world: World) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Kill the polling bot, let the test act while it is down, then start a new one.

    Use as ``async with restarted_bot(world) as up: ...``: the bot is down inside until
    ``await up()``; what users do meanwhile waits at "Telegram" (the sandbox's queue). The new
    bot is a new dispatcher and a new HTTP session on the same database, as after a crash.
    """
    await world.stop_bot()
    bot = Bot(
        world.sandbox.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(world.sandbox.url)),
    )
    dispatcher = build_dispatcher(world.services)
    world.watch(dispatcher)
    polling: asyncio.Task[None] | None = None

    async def up() -> None:
        nonlocal polling
        polling = asyncio.create_task(
            dispatcher.start_polling(
                bot, handle_signals=False, allowed_updates=ALLOWED_UPDATES, polling_timeout=1
            )
        )
        await world.client.wait_idle(quiet_ms=200)

    try:
        yield up
    finally:
        if polling is not None:
            with contextlib.suppress(RuntimeError):
                await dispatcher.stop_polling()
            await polling
        await bot.session.close()
