"""Telegram's size limits on what the bot sends, and fitting text under them.

The numbers are the Bot API spec's (``sandbox/data/bot-api-spec.json``, the same file the
sandbox enforces them from); each names the spec field it comes from, and
``tests/bot/test_limits.py`` reads that field's prose to check the number still holds.
Telegram refuses a message over its limit outright (the user sees nothing at all), so a
screen that can grow with user data is drawn to fit, never cut blindly: user text is
shortened *before* it is escaped, so a cut never lands inside an HTML tag or entity.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

# (limit, where the spec states it): method or type, field.
MESSAGE_TEXT = 4096  # sendMessage.text / editMessageText.text, after entity parsing
CAPTION = 1024  # sendPhoto.caption / sendDocument.caption, after entity parsing
CALLBACK_DATA_BYTES = 64  # InlineKeyboardButton.callback_data, in bytes
CALLBACK_ANSWER = 200  # answerCallbackQuery.text
TOPIC_NAME = 128  # createForumTopic.name / editForumTopic.name
COMMAND_DESCRIPTION = 256  # BotCommand.description
COMMANDS = 100  # setMyCommands.commands

SPEC_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "MESSAGE_TEXT": (("methods", "sendMessage", "text"), ("methods", "editMessageText", "text")),
    "CAPTION": (("methods", "sendPhoto", "caption"), ("methods", "sendDocument", "caption")),
    "CALLBACK_DATA_BYTES": (("types", "InlineKeyboardButton", "callback_data"),),
    "CALLBACK_ANSWER": (("methods", "answerCallbackQuery", "text"),),
    "TOPIC_NAME": (("methods", "createForumTopic", "name"), ("methods", "editForumTopic", "name")),
    "COMMAND_DESCRIPTION": (("types", "BotCommand", "description"),),
    "COMMANDS": (("methods", "setMyCommands", "commands"),),
}

ELLIPSIS = "…"
_TAG = re.compile(r"<[^>]*>")


def plain(text: str) -> str:
    """An HTML text as Telegram shows it: tags gone, ``&lt;`` and the like one character."""
    return html.unescape(_TAG.sub("", text))


def visible_length(text: str) -> int:
    """How long Telegram finds an HTML text: its characters once the markup is parsed
    (:func:`plain`) — what the limits count. Counted in UTF-16 code units, as Telegram
    counts text (entity offsets are UTF-16): an emoji outside the Basic Multilingual Plane
    is two. Never less than the code points, so a text that fits by this measure fits
    whichever way the server counts."""
    return len(plain(text).encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """Plain text in at most ``limit`` characters, ending in "…" where it was cut. Clip user
    text before :func:`html.escape`, never after (a cut could split an entity)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def first_fitting(drafts: Iterable[str], room: int = MESSAGE_TEXT) -> str:
    """The first of ``drafts`` (HTML, fullest first) that fits in ``room``; the last if none
    does. Drafts are drawn lazily, so the shorter ones are only drawn when needed."""
    text = ""
    for text in drafts:
        if visible_length(text) <= room:
            break
    return text
