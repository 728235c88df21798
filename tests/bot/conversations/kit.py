"""Small helpers for conversation tests: find the bot's last message, press its buttons."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from tests.bot.conversations.conftest import World


async def last(world: World, chat_id: int) -> dict[str, Any]:
    messages = [m for m in (await world.client.messages(chat_id))["messages"] if m["outgoing"]]
    return messages[-1]


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def _shape(message: dict[str, Any]) -> tuple[Any, ...]:
    return (message.get("text"), message.get("caption"), str(message.get("reply_markup")))


async def press(
    world: World, chat_id: int, label: str, message: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Press the button whose text contains ``label`` on ``message`` (default: the last one);
    returns the bot's messages that are new or changed afterwards."""
    message = message or await last(world, chat_id)
    markup = message.get("reply_markup") or {}
    matches = [b for row in markup.get("inline_keyboard", []) for b in row if label in b["text"]]
    assert matches, f"no button {label!r} in {buttons(message)}"
    before = {
        m["message_id"]: _shape(m) for m in (await world.client.messages(chat_id))["messages"]
    }
    pressed = await world.client.press(
        chat_id, message["message_id"], callback_data=matches[0]["callback_data"]
    )
    await answered(world, chat_id, pressed["callback_query_id"])
    after = (await world.client.messages(chat_id))["messages"]
    return [m for m in after if m["outgoing"] and before.get(m["message_id"]) != _shape(m)]


async def answered(world: World, chat_id: int, query_id: str) -> None:
    """Wait until the bot has answered a button press (it answers after drawing the result),
    then until it has finished whatever else the press caused."""
    await world.client.wait_calls(
        timeout_ms=30_000,
        method="answerCallbackQuery",
        ok=True,
        params={"callback_query_id": query_id},
    )
    await world.client.wait_idle(quiet_ms=30)


async def toasts(world: World, chat_id: int) -> list[str]:
    return [a["text"] or "" for a in (await world.client.messages(chat_id))["callback_answers"]]


T = TypeVar("T")


def probing(
    world: World, user_id: int, draw: Callable[..., T], probes: list[str]
) -> Callable[..., T]:
    """``draw`` (run by the bot in a worker thread) that first has another unit of work write
    the asker's chat-user row, the row every update locks, and notes in ``probes`` whether
    that went through ("free") or waited for the update's transaction ("held")."""
    loop = asyncio.get_running_loop()

    async def write_the_askers_row() -> None:
        async with world.uows() as uow:
            await uow.chat.touch_user("telegram", user_id, "Probe", world.env.clock.now(), "en")
            await uow.commit()

    def probe_then_draw(*args: Any) -> T:
        probe = asyncio.run_coroutine_threadsafe(write_the_askers_row(), loop)
        try:
            probe.result(timeout=5)
            probes.append("free")
        except TimeoutError:
            probes.append("held")
        return draw(*args)

    return probe_then_draw
