"""An unmodified python-telegram-bot 22 application against the sandbox, polling and webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from sandbox_testkit import ANN, free_port, png
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from sandbox.app import RunningSandbox, running_sandbox

Context = ContextTypes.DEFAULT_TYPE


def make_app(sb: RunningSandbox) -> Application:  # type: ignore[type-arg]
    return (
        Application.builder()
        .token(sb.token)
        .base_url(f"{sb.url}/bot")
        .base_file_url(f"{sb.url}/file/bot")
        .build()
    )


async def echo(update: Update, context: Context) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


async def menu(update: Update, context: Context) -> None:
    assert update.message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="claim:9")]])
    await update.message.reply_text("Claim *\\#9*", parse_mode="MarkdownV2", reply_markup=keyboard)


async def approve(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Approved")
    await query.edit_message_text("Claim #9 approved")


def echo_handlers(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(approve))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))


@asynccontextmanager
async def polling(app: Application) -> AsyncIterator[None]:  # type: ignore[type-arg]
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=5, poll_interval=0)
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()


async def texts(sb: RunningSandbox, chat_id: int = ANN["id"]) -> list[tuple[bool, str]]:
    view = await sb.client.messages(chat_id)
    return [(m["outgoing"], m.get("text") or m.get("caption") or "") for m in view["messages"]]


async def test_echo_and_button_edit_in_polling_mode(sandbox: RunningSandbox) -> None:
    app = make_app(sandbox)
    echo_handlers(app)
    async with polling(app):
        await sandbox.client.send(ANN["id"], "hello from PTB")
        await sandbox.client.wait_idle()
        await sandbox.client.send(ANN["id"], "/menu")
        await sandbox.client.wait_idle()
        menu_message = (await sandbox.client.messages(ANN["id"]))["messages"][-1]
        assert menu_message["html"] == "Claim <b>#9</b>"
        await sandbox.client.press(ANN["id"], menu_message["message_id"], callback_data="claim:9")
        await sandbox.client.wait_idle()
    assert await texts(sandbox) == [
        (False, "hello from PTB"),
        (True, "hello from PTB"),
        (False, "/menu"),
        (True, "Claim #9 approved"),
    ]
    view = await sandbox.client.messages(ANN["id"])
    assert view["callback_answers"][-1]["text"] == "Approved"


async def test_an_update_not_confirmed_is_delivered_again(sandbox: RunningSandbox) -> None:
    sent = await sandbox.client.send(ANN["id"], "anyone?")
    app = make_app(sandbox)
    async with app:
        first = await app.bot.get_updates(timeout=0)  # fetched, then the process "crashes"
    assert [u.update_id for u in first] == [sent["update_id"]]
    seen: list[int] = []

    async def remember(update: Update, context: Context) -> None:
        seen.append(update.update_id)
        await echo(update, context)

    app = make_app(sandbox)
    app.add_handler(MessageHandler(filters.TEXT, remember))
    async with polling(app):
        await sandbox.client.wait_idle()
    assert seen == [sent["update_id"]]
    assert await texts(sandbox) == [(False, "anyone?"), (True, "anyone?")]


# PTB warns about its own retry_after type change when it formats the error.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_answers_429() -> None:
    async with running_sandbox(scale=1) as sb:
        await sb.client.create_user(**ANN)
        app = make_app(sb)
        async with app:
            for n in range(3):
                await app.bot.send_message(ANN["id"], f"burst {n}")
            with pytest.raises(RetryAfter, match=r"Retry in"):
                await app.bot.send_message(ANN["id"], "one too many")
        refused = (await sb.client.calls(method="sendMessage", ok=False))["calls"]
        assert [c["error_code"] for c in refused] == [429]
        assert refused[0]["description"].startswith("Too Many Requests: retry after ")


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_forced_429_carries_the_requested_retry_after(sandbox: RunningSandbox) -> None:
    await sandbox.client.fault(kind="429", method="sendMessage", retry_after=7, count=1)
    app = make_app(sandbox)
    async with app:
        with pytest.raises(RetryAfter, match=r"Retry in (7 seconds|0:00:07)"):
            await app.bot.send_message(ANN["id"], "hi")
        assert (await app.bot.send_message(ANN["id"], "hi again")).text == "hi again"


async def test_a_user_who_blocked_the_bot_gives_403(sandbox: RunningSandbox) -> None:
    kicked = asyncio.Event()

    async def on_member(update: Update, context: Context) -> None:
        assert update.my_chat_member is not None
        if update.my_chat_member.new_chat_member.status == "kicked":
            kicked.set()

    app = make_app(sandbox)
    app.add_handler(ChatMemberHandler(on_member, ChatMemberHandler.MY_CHAT_MEMBER))
    async with polling(app):
        await sandbox.client.block(ANN["id"])
        await kicked.wait()
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await app.bot.send_message(ANN["id"], "still there?")


async def test_photo_upload_download_and_reuse(sandbox: RunningSandbox) -> None:
    image = png(6, 2)
    downloaded: list[bytes] = []

    async def on_photo(update: Update, context: Context) -> None:
        message = update.message
        assert message is not None
        biggest = message.photo[-1]
        file = await context.bot.get_file(biggest.file_id)
        downloaded.append(bytes(await file.download_as_bytearray()))
        await message.reply_document(document=downloaded[-1], filename="copy.png")
        await message.reply_photo(photo=biggest.file_id, caption="same photo, by file_id")

    app = make_app(sandbox)
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    async with polling(app):
        await sandbox.client.send_file(ANN["id"], "photo", image, "p.png", "image/png")
        await sandbox.client.wait_idle()
    assert downloaded == [image]
    user_photo, document, reused = (await sandbox.client.messages(ANN["id"]))["messages"]
    assert document["document"]["file_name"] == "copy.png"
    assert reused["photo"]["file_id"] == user_photo["photo"]["file_id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(sandbox.url + document["document"]["url"]) as response,
    ):
        assert await response.read() == image


async def test_webhook_mode_retries_until_the_bot_accepts(sandbox: RunningSandbox) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    app = make_app(sandbox)
    echo_handlers(app)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1", port=port, url_path="hook", webhook_url=url, secret_token="right"
        )
        try:
            # The webhook is re-registered with a secret the bot does not accept...
            await app.bot.set_webhook(url, secret_token="wrong")
            await sandbox.client.send(ANN["id"], "webhook ping")
            while (await app.bot.get_webhook_info()).last_error_message is None:
                await sandbox.world.wait_changed(1)
            info = await app.bot.get_webhook_info()
            assert info.pending_update_count == 1
            assert info.last_error_message == "Wrong response from the webhook: 403 Forbidden"
            # ...and once it is fixed, the same update is delivered and answered.
            await app.bot.set_webhook(url, secret_token="right")
            await sandbox.client.wait_idle()
        finally:
            await app.updater.stop()
            await app.stop()
    assert await texts(sandbox) == [(False, "webhook ping"), (True, "webhook ping")]
