"""The web chat at ``GET /``, driven in real headless Chromium against a real aiogram 3 bot.

The browser is Debian's system ``chromium`` driven by playwright (never a downloaded one).
Locally the browser test skips when chromium is missing; under CI (``CI=true``) a missing
chromium is a failure, because there it must have been installed by ``.ci/run``.

Waits are playwright's auto-waiting assertions and the sandbox's ``/sandbox/wait-idle``;
nothing sleeps. The screenshot is kept at ``test-artifacts/webchat.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import FilePayload, Page, async_playwright, expect
from sandbox_testkit import ANN, png

from sandbox.app import RunningSandbox
from sandbox.webchat import setup_webchat

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
EXPECT_TIMEOUT_MS = 15_000


def chromium_path() -> str:
    """The system Chromium, or a skip (locally) / failure (in CI) saying how to get it."""
    candidates = [os.environ.get("AFTERSALES_TEST_CHROMIUM"), shutil.which("chromium")]
    candidates.append("/usr/bin/chromium")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = (
        "Debian's chromium is not installed (apt-get install -y chromium), so the web chat "
        "cannot be tested in a browser; set AFTERSALES_TEST_CHROMIUM to use another binary"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


# --------------------------------------------------------------------------- the bot


def support_bot_router() -> Router:
    """A tiny support bot: it echoes text with a button, edits on press, returns photos."""
    router = Router(name="webchat-test-bot")

    @router.message(F.photo)
    async def on_photo(message: Message) -> None:
        assert message.photo is not None
        await message.answer_photo(
            message.photo[-1].file_id,
            caption=f"Got your photo: <i>{html.escape(message.caption or 'no caption')}</i>",
            reply_markup=ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text="Thanks"), KeyboardButton(text="Another one")]],
                resize_keyboard=True,
            ),
        )

    @router.message(F.text)
    async def on_text(message: Message) -> None:
        assert message.text is not None
        await message.answer(
            f"You said: <b>{html.escape(message.text)}</b>\nIs that <i>right</i>?",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text="Confirm", callback_data="confirm")],
                    [InlineKeyboardButton(text="Help centre", url="https://example.com/help")],
                ]
            ),
        )

    @router.callback_query(F.data == "confirm")
    async def on_confirm(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text(
            f"{query.message.html_text}\n\n<b>Confirmed</b>, <code>claim #42</code> is filed"
        )
        await query.answer("Thanks, noted")

    return router


@contextlib.asynccontextmanager
async def running_bot(sandbox: RunningSandbox) -> AsyncIterator[Bot]:
    """The bot polls the sandbox over HTTP, exactly as it would poll Telegram."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.url))
    bot = Bot(sandbox.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    dispatcher = Dispatcher()
    dispatcher.include_router(support_bot_router())
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False)
    )
    try:
        yield bot
    finally:
        await dispatcher.stop_polling()
        await polling
        await session.close()


@contextlib.asynccontextmanager
async def chromium_page(executable: str) -> AsyncIterator[Page]:
    """A page in the system Chromium with a fresh, throwaway profile."""
    with tempfile.TemporaryDirectory(prefix="webchat-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1100, "height": 860},
            )
            try:
                yield context.pages[0] if context.pages else await context.new_page()
            finally:
                await context.close()


# --------------------------------------------------------------------------- tests


async def test_page_and_assets_are_served_with_a_strict_policy() -> None:
    app = web.Application()
    setup_webchat(app)
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/")
        assert page.status == 200
        assert page.content_type == "text/html"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        text = await page.text()
        assets = re.findall(r'(?:src|href)="(/webchat/static/[^"]+)"', text)
        assert len(assets) >= 2
        for asset in assets:
            response = await client.get(asset)
            assert response.status == 200, asset
        assert (await client.get("/webchat/static/../__init__.py")).status == 404
        assert (await client.get("/webchat/static/nope.js")).status == 404


@pytest.mark.browser
async def test_user_sends_presses_and_sees_the_edit_in_chromium(sandbox: RunningSandbox) -> None:
    executable = chromium_path()
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "webchat.png"
    errors: list[str] = []

    # The conftest's sandbox already has Ann and Bob; the page starts with nobody picked.
    async with running_bot(sandbox), chromium_page(executable) as page:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(sandbox.url + "/")

        # Pick the user; their private chat with the bot opens by itself.
        await page.get_by_role("combobox", name="User").select_option(str(ANN["id"]))
        private_chat = page.get_by_role("option", name=re.compile("private chat"))
        await expect(private_chat).to_have_attribute("aria-selected", "true")

        # Type and send; what the user typed arrives as text, never as markup.
        box = page.get_by_role("textbox", name="Message")
        await box.fill("My parcel <b>never</b> came")
        await page.get_by_role("button", name="Send").click()
        mine = page.locator(".msg.out").filter(has_text="My parcel <b>never</b> came")
        await expect(mine).to_be_visible()
        reply = page.locator(".msg.in").filter(has_text="You said:")
        await expect(reply.locator("strong")).to_have_text("My parcel <b>never</b> came")
        await expect(reply.locator("em")).to_have_text("right")
        help_link = reply.get_by_role("link", name="Help centre")
        await expect(help_link).to_have_attribute("href", "https://example.com/help")
        await expect(reply.locator(".edited")).to_have_count(0)

        # Press the inline button: the same bubble is edited in place and marked so.
        await reply.get_by_role("button", name="Confirm").click()
        await expect(reply.locator("strong").filter(has_text="Confirmed")).to_be_visible()
        await expect(reply.locator("code")).to_have_text("claim #42")
        await expect(reply.locator(".edited")).to_have_text("edited")
        await expect(reply.get_by_role("button", name="Confirm")).to_have_count(0)
        await expect(page.get_by_role("alert")).to_have_text("Thanks, noted")

        # Attach a photo with a caption; the bot sends it back with a reply keyboard.
        photo: FilePayload = {"name": "vase.png", "mimeType": "image/png", "buffer": png(160, 120)}
        await page.get_by_label("Attach photo", exact=True).set_input_files(photo)
        await box.fill("the broken vase")
        await page.get_by_role("button", name="Send").click()
        photos = page.locator("img.photo")
        await expect(photos).to_have_count(2)
        bot_photo = page.locator(".msg.in").filter(has=page.locator("img.photo"))
        await expect(bot_photo).to_contain_text("Got your photo: the broken vase")
        for index in range(2):  # both really load from the sandbox's file URLs
            await expect(photos.nth(index)).to_have_js_property("naturalWidth", 160)

        # A reply keyboard button sends its text as the user.
        await page.get_by_label("Reply keyboard").get_by_role("button", name="Thanks").click()
        await expect(page.locator(".msg.out").filter(has_text="Thanks")).to_be_visible()
        await expect(page.locator(".msg.in").filter(has_text="You said: Thanks")).to_be_visible()

        await sandbox.client.wait_idle(quiet_ms=100)
        await expect(page.locator(".msg.in").last).to_be_in_viewport()
        await page.screenshot(path=str(screenshot))

    assert errors == []
    assert screenshot.stat().st_size > 10_000
