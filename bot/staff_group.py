"""The staff group on the Bot API: a forum topic per case, kept in step with the case.

Driven by the delivery of outbox messages (:mod:`bot.delivery`): a staff message about a
case goes into the case's topic — created on first need with the case's card and the
buyer's evidence (an album stays one album), recreated when someone deleted it — and after
every delivery round each case that has a topic is renamed to its current state and, once
the case has closed, the topic is closed.

Telegram lets a bot send about 20 messages a minute to one group, all topics together. The
group's bucket in :class:`bot.flood.FloodGate` budgets that here: a message that does not fit
waits for a later delivery round instead of running into a 429. The gate lives in this
process; a second bot process on the same group would need its own share (or a shared budget).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InputMediaPhoto

from bot.conversations import staff_topics
from bot.conversations.context import Services
from bot.flood import FloodGate, gate_for
from bot.telegram_aiogram.render import markup
from storage import tables as t
from storage.repositories import TopicRepo
from storage.uow import SqlUnitOfWork
from workflow import lifecycle

log = logging.getLogger(__name__)

# Bot API sendMediaGroup: an album holds 2-10 items.
ALBUM_MAX = 10


def budget(services: Services, bot: Bot) -> FloodGate:
    """The process's flood gate for this bot: the group's share is one of its chat buckets."""
    return gate_for(bot.token, services.config.send_limits)


def _thread_gone(exc: TelegramBadRequest) -> bool:
    return "thread not found" in exc.message.lower()


async def deliver(
    uow: SqlUnitOfWork, services: Services, bot: Bot, row: t.Outbox, note: str
) -> bool:
    """Send one staff message into the group; False when it must wait for the budget."""
    group = services.config.staff_chat_id
    assert group is not None
    gate = budget(services, bot)
    if row.claim_id is None:
        if not gate.try_acquire(group):
            return False
        await bot.send_message(group, note, parse_mode="HTML")
        return True
    topics = TopicRepo(uow.session)
    now = services.env.clock.now()
    topic = await topics.get(row.claim_id)
    if topic is not None and topic.thread_id is not None and topic.chat_id == group:
        if not gate.try_acquire(group):
            return False
        screen = await staff_topics.topic_card(uow, services, row.claim_id, note)
        try:
            sent = await bot.send_message(
                group,
                screen.text,
                parse_mode="HTML",
                reply_markup=markup(screen.keyboard),
                message_thread_id=topic.thread_id,
            )
        except TelegramBadRequest as exc:
            if not _thread_gone(exc):
                raise
            log.info("topic of claim %s was deleted; opening a new one", row.claim_id)
            await topics.changed(row.claim_id, now, thread_id=None, card_message_id=None)
        else:
            await topics.changed(row.claim_id, now, card_message_id=sent.message_id)
            claim = await uow.claims.get(row.claim_id)
            name = staff_topics.topic_name(services, claim) if claim else topic.name
            if name != topic.name:  # named for the state it is in now (before sync redraws)
                try:
                    await bot.edit_forum_topic(group, topic.thread_id, name=name)
                    await topics.changed(row.claim_id, now, name=name)
                except TelegramBadRequest as exc:
                    log.warning("topic of claim %s not renamed: %s", row.claim_id, exc.message)
            return True
    return await _open_topic(uow, services, bot, row.claim_id, note)


async def _open_topic(
    uow: SqlUnitOfWork, services: Services, bot: Bot, claim_id: int, note: str
) -> bool:
    group = services.config.staff_chat_id
    assert group is not None
    topics = TopicRepo(uow.session)
    claim = await uow.claims.get(claim_id)
    if claim is None:
        return True  # nothing to tell about
    evidence = await topics.evidence(claim_id, ALBUM_MAX)
    if not budget(services, bot).try_acquire(group, 1 + len(evidence)):
        return False
    name = staff_topics.topic_name(services, claim)
    created = await bot.create_forum_topic(group, name)
    thread = created.message_thread_id
    screen = await staff_topics.topic_card(uow, services, claim_id, note)
    sent = await bot.send_message(
        group,
        screen.text,
        parse_mode="HTML",
        reply_markup=markup(screen.keyboard),
        message_thread_id=thread,
    )
    await _send_evidence(bot, group, thread, evidence)
    await topics.opened(claim_id, group, thread, name, sent.message_id, services.env.clock.now())
    return True


async def _send_evidence(bot: Bot, group: int, thread: int, refs: list[str]) -> None:
    """The buyer's photos: one as a photo, several as one album."""
    try:
        if len(refs) == 1:
            await bot.send_photo(group, refs[0], message_thread_id=thread)
        elif refs:
            media = [InputMediaPhoto(media=ref) for ref in refs[:ALBUM_MAX]]
            await bot.send_media_group(group, media, message_thread_id=thread)  # type: ignore[arg-type]
    except TelegramBadRequest as exc:
        log.warning("evidence not shown in the staff group: %s", exc.message)


async def sync(uow: SqlUnitOfWork, services: Services, bot: Bot, claim_ids: Iterable[int]) -> None:
    """Rename each case's topic to its current state (and redraw its card); close it once
    the case has closed; a deleted topic is forgotten, and reopened if the case needs staff."""
    group = services.config.staff_chat_id
    if group is None:
        return
    topics = TopicRepo(uow.session)
    for claim_id in sorted(set(claim_ids)):
        topic = await topics.get(claim_id)
        if topic is None or topic.thread_id is None or topic.closed or topic.chat_id != group:
            continue
        claim = await uow.claims.get(claim_id)
        if claim is None:
            continue
        now = services.env.clock.now()
        name = staff_topics.topic_name(services, claim)
        try:
            if name != topic.name:
                await bot.edit_forum_topic(group, topic.thread_id, name=name)
                await topics.changed(claim_id, now, name=name)
                await _redraw_card(uow, services, bot, group, topic.card_message_id, claim_id)
            if claim.status in lifecycle.TERMINAL_STATES:
                await bot.close_forum_topic(group, topic.thread_id)
                await topics.changed(claim_id, now, closed=True)
        except TelegramBadRequest as exc:
            if not _thread_gone(exc):
                log.warning("topic of claim %s not updated: %s", claim_id, exc.message)
                continue
            await topics.changed(claim_id, now, thread_id=None, card_message_id=None)
            if claim.status in lifecycle.WAITING_FOR_STAFF:
                lang = staff_topics.staff_language(services)
                note = services.translate(lang, "staff.topic.reopened", number=claim_id)
                await _open_topic(uow, services, bot, claim_id, note)


async def _redraw_card(
    uow: SqlUnitOfWork,
    services: Services,
    bot: Bot,
    group: int,
    message_id: int | None,
    claim_id: int,
) -> None:
    """The card in the topic shows the case as it is now, with the buttons for now."""
    if message_id is None:
        return
    screen = await staff_topics.topic_card(uow, services, claim_id, "")
    try:
        await bot.edit_message_text(
            screen.text,
            chat_id=group,
            message_id=message_id,
            parse_mode="HTML",
            reply_markup=markup(screen.keyboard),
        )
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("card of claim %s not redrawn: %s", claim_id, exc.message)
