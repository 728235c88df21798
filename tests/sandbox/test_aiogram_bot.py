"""An unmodified aiogram 3 bot against the sandbox over HTTP, polling and webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramConflictError, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from sandbox_testkit import ANN, png

from sandbox.app import RunningSandbox, running_sandbox


def make_bot(sb: RunningSandbox) -> Bot:
    return Bot(sb.token, session=AiohttpSession(api=TelegramAPIServer.from_base(sb.url)))


def echo_router(seen: list[int]) -> Router:
    """A bare echo bot, plus a button that edits its own message."""
    router = Router()

    @router.message(F.text == "/menu")
    async def menu(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Approve", callback_data="claim:7:ok")]]
        )
        await message.answer("Claim <b>#7</b>", parse_mode="HTML", reply_markup=keyboard)

    @router.callback_query(F.data.startswith("claim:"))
    async def approve(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text("Claim #7 approved")
        await query.answer("Done")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        seen.append(message.message_id)
        await message.answer(message.text or "")

    return router


@asynccontextmanager
async def polling(bot: Bot, *routers: Router) -> AsyncIterator[Dispatcher]:
    dp = Dispatcher()
    dp.include_routers(*routers)
    started = asyncio.Event()
    dp.startup.register(started.set)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    await started.wait()
    try:
        yield dp
    finally:
        await dp.stop_polling()
        await task


async def texts(sb: RunningSandbox, chat_id: int = ANN["id"]) -> list[tuple[bool, str]]:
    view = await sb.client.messages(chat_id)
    return [(m["outgoing"], m.get("text") or m.get("caption") or "") for m in view["messages"]]


async def test_echo_and_button_edit_in_polling_mode(sandbox: RunningSandbox) -> None:
    bot = make_bot(sandbox)
    async with polling(bot, echo_router([])):
        await sandbox.client.send(ANN["id"], "hello sandbox")
        await sandbox.client.wait_idle()
        await sandbox.client.send(ANN["id"], "/menu")
        await sandbox.client.wait_idle()
        view = await sandbox.client.messages(ANN["id"])
        menu = view["messages"][-1]
        assert menu["html"] == "Claim <b>#7</b>"
        assert menu["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "claim:7:ok"
        await sandbox.client.press(ANN["id"], menu["message_id"], text="Approve")
        await sandbox.client.wait_idle()
    assert await texts(sandbox) == [
        (False, "hello sandbox"),
        (True, "hello sandbox"),
        (False, "/menu"),
        (True, "Claim #7 approved"),
    ]
    view = await sandbox.client.messages(ANN["id"])
    assert view["messages"][-1]["reply_markup"] is None  # an edit without markup drops it
    assert "edit_date" in view["messages"][-1]
    assert view["callback_answers"][-1]["text"] == "Done"
    assert (await sandbox.client.calls())["unanswered_callback_queries"] == []


async def test_an_unanswered_button_press_shows_in_the_call_log(sandbox: RunningSandbox) -> None:
    bot = make_bot(sandbox)
    async with bot.session:
        sent = await bot.send_message(
            ANN["id"],
            "pick",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]
            ),
        )
    pressed = await sandbox.client.press(ANN["id"], sent.message_id, callback_data="a")
    unanswered = (await sandbox.client.calls())["unanswered_callback_queries"]
    assert [q["id"] for q in unanswered] == [pressed["callback_query_id"]]


async def test_an_update_not_confirmed_is_delivered_again(sandbox: RunningSandbox) -> None:
    bot = make_bot(sandbox)
    sent = await sandbox.client.send(ANN["id"], "are you there?")
    # A first bot instance fetches the update and dies before confirming it...
    first = await bot.get_updates(timeout=0)
    assert [u.update_id for u in first] == [sent["update_id"]]
    seen: list[int] = []
    # ...so the next instance receives it again (at-least-once) and answers it.
    async with polling(bot, echo_router(seen)):
        await sandbox.client.wait_idle()
    assert seen == [sent["message_id"]]
    assert await texts(sandbox) == [(False, "are you there?"), (True, "are you there?")]
    assert (await sandbox.client.wait_idle())["pending"] == 0


async def test_flood_control_answers_429_with_retry_after() -> None:
    async with running_sandbox(scale=1) as sb:  # Telegram's real pace: a burst of 3
        await sb.client.create_user(**ANN)
        bot = make_bot(sb)
        async with bot.session:
            for n in range(3):
                await bot.send_message(ANN["id"], f"message {n}")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(ANN["id"], "one too many")
            assert caught.value.retry_after >= 1
            assert "Too Many Requests: retry after" in caught.value.message


async def test_a_forced_429_carries_the_requested_retry_after(sandbox: RunningSandbox) -> None:
    await sandbox.client.fault(kind="429", method="sendMessage", retry_after=7, count=1)
    bot = make_bot(sandbox)
    async with bot.session:
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(ANN["id"], "hi")
        assert caught.value.retry_after == 7
        assert (await bot.send_message(ANN["id"], "hi again")).text == "hi again"


async def test_a_user_who_blocked_the_bot_gives_403(sandbox: RunningSandbox) -> None:
    bot = make_bot(sandbox)
    kicked = asyncio.Event()
    router = Router()

    @router.my_chat_member()
    async def on_block(update: ChatMemberUpdated) -> None:
        if update.new_chat_member.status == "kicked":
            kicked.set()

    async with polling(bot, router):
        await sandbox.client.block(ANN["id"])
        await kicked.wait()
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(ANN["id"], "still there?")


async def test_photo_upload_download_and_reuse(sandbox: RunningSandbox) -> None:
    image = png(5, 4)
    downloaded: list[bytes] = []
    router = Router()

    @router.message(F.photo)
    async def on_photo(message: Message, bot: Bot) -> None:
        assert message.photo is not None
        biggest = message.photo[-1]
        assert (biggest.width, biggest.height) == (5, 4)
        file = await bot.get_file(biggest.file_id)
        assert file.file_path is not None
        buffer = await bot.download_file(file.file_path)
        assert buffer is not None
        downloaded.append(buffer.read())
        await message.answer_document(BufferedInputFile(downloaded[-1], "copy.png"))
        await message.answer_photo(biggest.file_id, caption="same photo, by file_id")

    bot = make_bot(sandbox)
    async with polling(bot, router):
        await sandbox.client.send_file(ANN["id"], "photo", image, "p.png", "image/png")
        await sandbox.client.wait_idle()
    assert downloaded == [image]
    view = await sandbox.client.messages(ANN["id"])
    user_photo, document, reused = view["messages"]
    assert document["document"]["file_name"] == "copy.png"
    assert reused["photo"]["file_id"] == user_photo["photo"]["file_id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(sandbox.url + document["document"]["url"]) as response,
    ):
        assert await response.read() == image


@asynccontextmanager
async def webhook_server(dp: Dispatcher, bot: Bot, secret: str) -> AsyncIterator[str]:
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=False
    ).register(app, path="/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def test_webhook_mode_redelivers_after_a_failure_and_runs_the_reply_method(
    sandbox: RunningSandbox,
) -> None:
    attempts: list[int] = []
    router = Router()

    @router.message(F.text)
    async def flaky_echo(message: Message) -> Any:
        attempts.append(message.message_id)
        if len(attempts) == 1:
            raise RuntimeError("the bot's database is down")  # → 500 to the sandbox
        return message.answer(f"echo: {message.text}")  # answered inside the webhook reply

    dp = Dispatcher()
    dp.include_router(router)
    bot = make_bot(sandbox)
    async with bot.session, webhook_server(dp, bot, secret="s3cret-token") as url:
        assert await bot.set_webhook(url, secret_token="s3cret-token")
        sent = await sandbox.client.send(ANN["id"], "ping")
        await sandbox.client.wait_idle()
        info = await bot.get_webhook_info()
        assert info.url == url
        assert info.pending_update_count == 0
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        assert await bot.delete_webhook()
    assert attempts == [sent["message_id"], sent["message_id"]]
    assert await texts(sandbox) == [(False, "ping"), (True, "echo: ping")]


async def test_webhook_with_a_wrong_secret_is_never_confirmed(sandbox: RunningSandbox) -> None:
    dp = Dispatcher()
    dp.include_router(echo_router([]))
    bot = make_bot(sandbox)
    async with bot.session, webhook_server(dp, bot, secret="expected") as url:
        await bot.set_webhook(url, secret_token="something-else")
        await sandbox.client.send(ANN["id"], "ping")
        while (await bot.get_webhook_info()).last_error_message is None:
            await sandbox.world.wait_changed(1)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert info.last_error_message == "Wrong response from the webhook: 401 Unauthorized"
        await bot.delete_webhook()
