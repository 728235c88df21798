"""The aiogram Dispatcher: one router, two handlers, all plumbing in the engine."""

from __future__ import annotations

from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery, Message, Update

from bot.conversations import engine
from bot.conversations.context import Services
from bot.conversations.model import Incoming
from bot.flood import gate_for
from bot.telegram_aiogram import responses as _responses  # noqa: F401  (keeps models built)
from bot.telegram_aiogram.convert import from_callback, from_message
from bot.telegram_aiogram.render import render

# Edited messages too: they are not acted on, but a user who corrects a message in a private
# chat is told so instead of believing the correction was read.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def build_dispatcher(services: Services) -> Dispatcher:
    router = Router(name="aftersales")

    async def answer(bot: Bot, incoming: Incoming) -> None:
        outputs = await engine.process(services, incoming)
        await render(bot, incoming, outputs, gate_for(bot.token, services.config.send_limits))

    @router.message()
    async def on_message(message: Message, bot: Bot, event_update: Update) -> None:
        incoming = from_message(event_update.update_id, message)
        if incoming is None:
            return
        await answer(bot, incoming)

    @router.edited_message()
    async def on_edited(message: Message, bot: Bot, event_update: Update) -> None:
        incoming = from_message(event_update.update_id, message, edited=True)
        if incoming is None:
            return
        await answer(bot, incoming)

    @router.callback_query()
    async def on_callback(query: CallbackQuery, bot: Bot, event_update: Update) -> None:
        await answer(bot, from_callback(event_update.update_id, query))

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher
