"""Delivery of outbox messages to the parties' chats, after the commits that wrote them.

Each message is rendered in its recipient's language and sent to every chat bound to the
recipient (a buyer or consignor may have several); staff messages go to the staff group when
one is configured, else to every staff member's private chat. A message is marked sent only
after Telegram accepted it, so a crash in between means at-least-once, never never.
Flood-safe pacing and retries come with the delivery worker of the time-driven work.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter

from bot import dates, staff_group
from bot.conversations.callbacks import ClaimAction
from bot.conversations.context import CHANNEL, Services, language_of
from bot.conversations.model import Button, Screen
from bot.conversations.staff_topics import staff_language
from bot.telegram_aiogram.render import markup
from storage import tables as t
from storage.uow import SqlUnitOfWork
from workflow.money import Money

log = logging.getLogger(__name__)

# Optional pictures for some messages (e.g. the return waybill's QR code): template → PNG.
PICTURES: dict[str, Callable[[dict[str, Any]], bytes | None]] = {}


def render(services: Services, lang: str, row: t.Outbox) -> Screen:
    params: dict[str, Any] = {}
    for key, value in row.payload.items():
        moment = dates.parse(value)
        shown = dates.when(moment, lang, services.config.timezone) if moment else str(value)
        params[key] = html.escape(shown)
    currency = str(row.payload.get("currency") or "CNY")
    for key in ("amount", "counter_offer", "consignor_total"):
        value = row.payload.get(key)
        if isinstance(value, int):
            params[f"{key}_text"] = Money(value, currency).format()
    text = services.translate(lang, f"notify.{row.template}", **params)
    keyboard: tuple[tuple[Button, ...], ...] = ()
    if row.claim_id is not None:
        label = services.translate(lang, "notify.open_claim")
        keyboard = ((Button(label, ClaimAction(row.claim_id, "view", 0).pack()),),)
    picture = PICTURES.get(row.template)
    return Screen(text, keyboard, photo=picture(dict(row.payload)) if picture else None)


async def _chats(
    uow: SqlUnitOfWork, services: Services, row: t.Outbox
) -> list[tuple[int, int | None, str]]:
    """(chat id, thread id, language) for each chat the message goes to."""
    if row.recipient_kind == "staff":
        # Without a staff group, to every staff member's private chat (with one, the
        # message goes into the case's topic: bot.staff_group).
        externals = await uow.accounts.all_staff_externals(CHANNEL)
    elif row.recipient_kind in ("buyer", "consignor") and row.recipient_id is not None:
        externals = await uow.accounts.externals_of(CHANNEL, row.recipient_kind, row.recipient_id)
    else:
        return []
    out: list[tuple[int, int | None, str]] = []
    for external in externals:
        user = await uow.chat.user(CHANNEL, external)
        if user is not None and user.unreachable:
            continue
        out.append((external, None, language_of(user.language if user else None, None)))
    return out


async def deliver_pending(services: Services, bot: Bot, limit: int = 100) -> int:
    """Send what is due; returns how many messages were completed."""
    done = 0
    async with services.uows() as uow:
        rows = list(await uow.delivery.due_messages(services.env.clock.now(), limit))
        claim_ids: set[int] = set()
        for row in rows:
            try:
                if row.recipient_kind == "staff" and services.config.staff_chat_id is not None:
                    note = render(services, staff_language(services), row).text
                    if not await staff_group.deliver(uow, services, bot, row, note):
                        continue  # over the group's budget: a later round sends it
                    chats = []
                else:
                    chats = await _chats(uow, services, row)
                for chat_id, thread_id, lang in chats:
                    screen = render(services, lang, row)
                    try:
                        await _send(bot, chat_id, thread_id, screen)
                    except TelegramForbiddenError:
                        user = await uow.chat.user(CHANNEL, chat_id)
                        if user is not None:
                            user.unreachable = True
                row.sent_at = services.env.clock.now()
                row.attempts += 1
                done += 1
                if row.claim_id is not None:
                    claim_ids.add(row.claim_id)
            except TelegramRetryAfter as exc:
                row.attempts += 1
                row.last_error = f"429 retry after {exc.retry_after}"
                break
        # Every transition writes messages; the cases they are about get their topics renamed.
        await staff_group.sync(uow, services, bot, claim_ids)
        await uow.commit()
    return done


async def _send(bot: Bot, chat_id: int, thread_id: int | None, screen: Screen) -> None:
    if screen.photo is not None:
        from aiogram.types import BufferedInputFile

        photo = (
            BufferedInputFile(screen.photo, "picture.png")
            if isinstance(screen.photo, bytes)
            else screen.photo
        )
        await bot.send_photo(
            chat_id,
            photo,
            caption=screen.text,
            parse_mode="HTML",
            reply_markup=markup(screen.keyboard),
            message_thread_id=thread_id,
        )
        return
    await bot.send_message(
        chat_id,
        screen.text,
        parse_mode="HTML",
        reply_markup=markup(screen.keyboard),
        message_thread_id=thread_id,
    )
