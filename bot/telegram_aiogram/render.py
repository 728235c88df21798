"""Neutral outputs → Bot API calls, made after the update's transaction has committed.

A message sent or edited in a group (the staff group: replies to commands and buttons in its
topics) takes a token of that group's bucket in the bot's :class:`~bot.flood.FloodGate`,
the same bucket the delivery of outbox messages and the topic sync draw on, so the group's
20 messages a minute are one budget. A reply waits for its token rather than being dropped;
background traffic, which never waits, gives way to it.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)

from bot import limits
from bot.conversations.model import (
    Attachment,
    Commands,
    Incoming,
    Keyboard,
    Output,
    Screen,
    Toast,
)
from bot.flood import FloodGate

log = logging.getLogger(__name__)


def markup(keyboard: Keyboard) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=b.label, url=b.url)
                if b.url
                else InlineKeyboardButton(text=b.label, callback_data=b.data)
                for b in row
            ]
            for row in keyboard
        ]
    )


async def render(
    bot: Bot, incoming: Incoming, outputs: list[Output], gate: FloodGate | None = None
) -> None:
    # Screens first, the answer to a button press last: once the press is answered, what it
    # changed is already on screen. In a group, whose messages may wait for its budget (a
    # whole 429 pause), the press is answered first: a spinner must not outlast the wait, and
    # Telegram refuses answers to presses it finds too old.
    toasts = [o for o in outputs if isinstance(o, Toast)]
    screens = [o for o in outputs if not isinstance(o, Toast)]
    in_group = gate is not None and gate.is_group(incoming.chat_id)
    ordered = toasts + screens if in_group else screens + toasts
    for output in ordered:
        try:
            if isinstance(output, Commands):
                await set_commands(bot, output)
            elif isinstance(output, Attachment):
                await _spend(gate, _chat_of(incoming, output.chat_id))
                await send_attachment(bot, incoming, output)
            elif isinstance(output, Toast):
                if incoming.callback_id:
                    # Plain text, so cutting it is safe; over the limit the press would
                    # go unanswered (a spinner) instead of saying less.
                    text = limits.clip(output.text, limits.CALLBACK_ANSWER)
                    await bot.answer_callback_query(
                        incoming.callback_id, text=text or None, show_alert=output.alert
                    )
            else:
                await _spend(gate, _chat_of(incoming, output.chat_id))
                await _screen(bot, incoming, output)
        except TelegramBadRequest as exc:
            if not_modified(exc):
                continue
            log.warning("Telegram refused %s: %s", type(output).__name__, exc.message)


def not_modified(exc: TelegramBadRequest) -> bool:
    """Telegram's answer to an edit that changes nothing: the change is there already."""
    message = exc.message.lower()
    return "not modified" in message or "not_modified" in message


def _chat_of(incoming: Incoming, chat_id: int | None) -> int:
    return chat_id if chat_id is not None else incoming.chat_id


async def _spend(gate: FloodGate | None, chat_id: int) -> None:
    """A group's message waits for its token (private chats are paced by Telegram alone)."""
    if gate is not None and gate.is_group(chat_id):
        await gate.acquire(chat_id)


async def set_commands(bot: Bot, menu: Commands) -> None:
    """setMyCommands for one chat's scope, or for the default scope (per language)."""
    scope = (
        BotCommandScopeChat(chat_id=menu.chat_id)
        if menu.chat_id is not None
        else BotCommandScopeDefault()
    )
    await bot.set_my_commands(
        [BotCommand(command=name, description=text) for name, text in menu.commands],
        scope=scope,
        language_code=menu.language or None,
    )


async def send_attachment(bot: Bot, incoming: Incoming, attachment: Attachment) -> None:
    """sendDocument with the bytes uploaded under the attachment's file name."""
    chat_id = attachment.chat_id if attachment.chat_id is not None else incoming.chat_id
    thread_id = attachment.thread_id if attachment.chat_id is not None else incoming.thread_id
    await bot.send_document(
        chat_id,
        BufferedInputFile(attachment.data, filename=attachment.filename),
        caption=attachment.caption or None,
        parse_mode=ParseMode.HTML,
        message_thread_id=thread_id,
    )


async def _screen(bot: Bot, incoming: Incoming, screen: Screen) -> None:
    chat_id = screen.chat_id if screen.chat_id is not None else incoming.chat_id
    thread_id = screen.thread_id if screen.chat_id is not None else incoming.thread_id
    reply_markup = markup(screen.keyboard)
    if screen.edit and screen.message_id is not None and screen.chat_id is not None:
        target: int | None = screen.message_id  # a named message in a named chat
    else:
        target = incoming.message_id if chat_id == incoming.chat_id else None
    if screen.edit and target and screen.photo is None:
        await bot.edit_message_text(
            text=screen.text,
            chat_id=chat_id,
            message_id=target,
            parse_mode=ParseMode.HTML,
            reply_markup=reply_markup,
        )
        return
    await send_screen(bot, chat_id, thread_id, screen)


async def send_screen(bot: Bot, chat_id: int, thread_id: int | None, screen: Screen) -> int:
    """A screen as a new message (a photo with the text as its caption, when it has one);
    returns Telegram's message id."""
    reply_markup = markup(screen.keyboard)
    if screen.photo is not None:
        photo = (
            BufferedInputFile(screen.photo, filename="picture.png")
            if isinstance(screen.photo, bytes)
            else screen.photo
        )
        sent = await bot.send_photo(
            chat_id,
            photo,
            caption=screen.text or None,
            parse_mode=ParseMode.HTML,
            reply_markup=reply_markup,
            message_thread_id=thread_id,
        )
        return sent.message_id
    message = await bot.send_message(
        chat_id,
        screen.text,
        parse_mode=ParseMode.HTML,
        reply_markup=reply_markup,
        message_thread_id=thread_id,
    )
    return message.message_id
