"""A bare aiogram 3 echo bot: the floor any real bot is measured against.

Kept importable so a later benchmark can run the real bot and this one through the same
sandbox and compare.
"""

from __future__ import annotations

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


def echo_router() -> Router:
    router = Router(name="echo")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    return router


def build_echo_dispatcher() -> Dispatcher:
    dp = Dispatcher()
    dp.include_router(echo_router())
    return dp


def make_bot(sandbox_url: str, token: str) -> Bot:
    """An aiogram Bot that talks to the sandbox at ``sandbox_url`` instead of Telegram."""
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox_url)))
