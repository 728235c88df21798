"""The staff group on the Bot API: a forum topic per case, kept in step with the case.

Two paths write into the group. **Delivery** of a staff message about a case
(:func:`deliver`, called by :mod:`bot.delivery`) posts the message with the case's card in
the case's topic, opening the topic first when the case has none (or someone deleted it).
**Sync** (:func:`sync`, run by every delivery round) brings each topic in step with its
case: renamed to the current state, the card redrawn, the buyer's evidence posted (photos
as a photo album, images sent as files as a document album; evidence sent later follows),
and the topic closed once the case has closed.

Sync does not depend on any message having gone out: the topic row records what it shows
(the case's version, the card's version, the last evidence shown), so a case that moved on
by any path — a button, a sweep, the buyer — is due, and stays due until its topic shows it.
A topic is recorded the moment it is created, so a card or album that fails afterwards is
retried in that topic, never in a second one. A sync that fails (5xx, network, 429) waits
on its row (``sync_after``, with backoff) and is tried again; the other topics go on.

No database transaction is open while the Bot API is called. What a step needs is read in a
short transaction first (opening a topic and each sync of one are leased to this process,
``sync_after`` moved past the lease, so two processes never open a case's topic twice or
bring one topic at once), and what Telegram did is
written right after in a transaction of its own — however long the database is away
(:func:`storage.engine.until_written`): a topic created or an album posted and not written
down would be made a second time.

Telegram lets a bot send about 20 messages a minute to one group, all topics together. The
group's bucket in :class:`bot.flood.FloodGate` budgets that here — every message, album item,
topic created, renamed or closed and card redrawn takes a token (replies to commands and
buttons in the group take theirs in :mod:`bot.telegram_aiogram.render`). What does not fit
waits for a later round instead of running into a 429. The gate lives in this process; a
second bot process on the same group would need its own share (or a shared budget).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InputMediaDocument, InputMediaPhoto

from bot.conversations import evidence, staff_topics
from bot.conversations.context import Services
from bot.conversations.model import Screen
from bot.flood import FloodGate, backoff, gate_for
from bot.telegram_aiogram.render import markup, not_modified, send_screen
from storage.engine import until_written
from storage.repositories import TopicRepo
from storage.uow import SqlUnitOfWork
from workflow import lifecycle
from workflow.claims import ClaimRecord, OutboxMessage

log = logging.getLogger(__name__)

# Bot API sendMediaGroup: an album holds 2-10 items.
ALBUM_MAX = 10
PHOTO, DOCUMENT = evidence.PHOTO, evidence.DOCUMENT
SYNC_BATCH = 50  # topics looked at per round

T = TypeVar("T")


def budget(services: Services, bot: Bot) -> FloodGate:
    """The process's flood gate for this bot: the group's share is one of its chat buckets."""
    return gate_for(bot.token, services.config.send_limits)


class _OverBudget(Exception):
    """The group's budget is spent for now: the rest waits for a later round."""


def _spend(gate: FloodGate, group: int, count: int = 1) -> None:
    if not gate.try_acquire(group, count):
        raise _OverBudget()


def _thread_gone(exc: TelegramBadRequest) -> bool:
    return "thread not found" in exc.message.lower()


async def deliver(services: Services, bot: Bot, claim_id: int | None, note: str) -> bool:
    """Send one staff message into the group; False when it must wait for the budget.

    The case and its topic are read in one short transaction, the Bot API is called with no
    transaction open, and what Telegram did (a topic created, the card posted) is written
    right after in its own (:func:`_recorded`), however long the database is away — a topic
    created and not recorded would be created again."""
    group = services.config.staff_chat_id
    assert group is not None
    gate = budget(services, bot)
    if claim_id is None:
        if not gate.try_acquire(group):
            return False
        await bot.send_message(group, note, parse_mode="HTML")
        return True
    for again in (False, True):
        async with services.uows() as uow:
            claim = await uow.claims.get(claim_id)
            if claim is None:
                return True  # nothing to tell about
            topic = await TopicRepo(uow.session).get(claim_id)
            screen = await staff_topics.topic_card(uow, services, claim_id, note)
        thread = topic.thread_id if topic is not None and topic.chat_id == group else None
        if thread is None:
            if not gate.try_acquire(group, 2):  # the topic and the card
                return False
            if not await _lease_opening(services, claim_id, group):
                return False  # another process is opening it: this message goes there next
            try:
                thread = await _open(services, bot, claim)
            except Exception:
                await _recorded(services, claim_id, "topic not opened", _changes(sync_after=None))
                raise
        elif not gate.try_acquire(group):
            return False
        try:
            card_id = await send_screen(bot, group, thread, screen)
        except TelegramBadRequest as exc:
            if again or not _thread_gone(exc):
                raise
            log.info("topic of claim %s was deleted; opening a new one", claim_id)
            await _recorded(services, claim_id, "topic deleted", _forget)
            continue
        await _recorded(
            services,
            claim_id,
            "card posted",
            _changes(card_message_id=card_id, card_version=claim.version),
        )
        break
    return True


_Change = Callable[[SqlUnitOfWork, int, datetime], Awaitable[None]]


def _changes(**values: Any) -> _Change:
    async def change(uow: SqlUnitOfWork, claim_id: int, now: datetime) -> None:
        await TopicRepo(uow.session).changed(claim_id, now, **values)

    return change


async def _forget(uow: SqlUnitOfWork, claim_id: int, now: datetime) -> None:
    await TopicRepo(uow.session).forget(claim_id, now)


async def _recorded(services: Services, claim_id: int, what: str, change: _Change) -> None:
    """What the bot did to a case's topic, written in a transaction of its own once
    Telegram has done it — and written however long the database is away."""

    async def write() -> None:
        async with services.uows() as uow:
            await change(uow, claim_id, services.env.clock.now())
            await uow.commit()

    await until_written(write, f"topic of claim {claim_id} ({what})", log)


def _lease_window(services: Services) -> tuple[datetime, datetime]:
    """Now, and until when a lease taken now holds (as long as a delivery's lease)."""
    now = services.env.clock.now()
    return now, now + timedelta(seconds=services.config.delivery_lease_seconds)


async def _lease_opening(services: Services, claim_id: int, group: int) -> bool:
    """Whether this process may open the case's topic (leased, so two processes telling
    staff of one case at once open one topic, not two)."""
    now, until = _lease_window(services)
    async with services.uows() as uow:
        won = await TopicRepo(uow.session).lease_opening(claim_id, group, now, until)
        await uow.commit()
    return won


async def _open(services: Services, bot: Bot, claim: ClaimRecord) -> int:
    """Create the case's topic and record it at once: whatever fails after this — the card,
    the evidence — is tried again in this topic, not in a second one."""
    group = services.config.staff_chat_id
    assert group is not None
    name = staff_topics.topic_name(services, claim)
    created = await bot.create_forum_topic(group, name)
    thread = created.message_thread_id

    async def opened(uow: SqlUnitOfWork, claim_id: int, now: datetime) -> None:
        await TopicRepo(uow.session).opened(claim_id, group, thread, name, now)

    await _recorded(services, claim.id, "topic created", opened)
    return thread


class _Synced(enum.Enum):
    DONE = "done"  # the topic shows the case as it is
    LATER = "later"  # failed: its row says when to try again
    STOP = "stop"  # the group's budget is spent (or Telegram said 429): no more this round
    SKIPPED = "skipped"  # not due after all, or another process has it


async def sync(services: Services, bot: Bot, limit: int = SYNC_BATCH) -> int:
    """Bring every due topic in step with its case; returns how many were brought. Never
    raises for what Telegram or the network did."""
    group = services.config.staff_chat_id
    if group is None:
        return 0
    async with services.uows() as uow:
        due = await TopicRepo(uow.session).due(group, services.env.clock.now(), limit)
    gate = budget(services, bot)
    done = 0
    for claim_id in due:
        result = await _sync_one(services, bot, gate, group, claim_id)
        if result is _Synced.DONE:
            done += 1
        elif result is _Synced.STOP:
            break
    return done


@dataclass(frozen=True)
class _Due:
    """What one topic lacks, read (and its sync leased) in one short transaction."""

    claim_id: int
    thread: int
    version: int
    needs_staff: bool  # the case waits for staff: a deleted topic is opened again
    name: str | None  # the topic's new name (None: it has the right one)
    card_message_id: int | None
    card: Screen | None  # the card to redraw (None: it shows this version, or is not there)
    evidence: list[list[tuple[int, str]]]  # runs of evidence not yet shown
    close: bool


async def _lease(services: Services, group: int, claim_id: int) -> _Due | None:
    """Lease the topic's sync to this process (``sync_after`` moved past the lease; None:
    not due after all, or another process has it) and read what it lacks."""
    now, until = _lease_window(services)
    async with services.uows() as uow:
        topics = TopicRepo(uow.session)
        if not await topics.lease_sync(claim_id, group, now, until):
            return None
        topic = await topics.get(claim_id)
        claim = await uow.claims.get(claim_id)
        if topic is None or topic.thread_id is None or claim is None:
            return None  # not committed: the lease is undone with the rest
        name = staff_topics.topic_name(services, claim)
        card = None
        if topic.card_message_id is not None and topic.card_version != claim.version:
            card = await staff_topics.topic_card(uow, services, claim_id, "")
        # Evidence follows the card: while the card's delivery is still being retried, a
        # topic would otherwise show the buyer's photos above a card that arrives later.
        evidence = []
        if topic.card_message_id is not None:
            evidence = _runs(await topics.evidence_after(claim_id, topic.evidence_upto))
        due = _Due(
            claim_id,
            topic.thread_id,
            claim.version,
            claim.status in lifecycle.WAITING_FOR_STAFF,
            name if name != topic.name else None,
            topic.card_message_id,
            card,
            evidence,
            claim.status in lifecycle.TERMINAL_STATES,
        )
        await uow.commit()
    return due


async def _sync_one(
    services: Services, bot: Bot, gate: FloodGate, group: int, claim_id: int
) -> _Synced:
    due = await _lease(services, group, claim_id)
    if due is None:
        return _Synced.SKIPPED
    try:
        await _bring(services, bot, gate, group, due)
    except _OverBudget:  # what was done is recorded; the rest is due again next round
        await _recorded(services, claim_id, "sync deferred", _changes(sync_after=None))
        return _Synced.STOP
    except TelegramRetryAfter as exc:
        gate.pause(group, exc.retry_after)
        error = f"429 retry after {exc.retry_after}"
        await _recorded(services, claim_id, "sync failed", _failed(error, exc.retry_after))
        return _Synced.STOP
    except Exception as exc:  # 5xx, 403, timeouts, network — or a bug: tried again later
        if isinstance(exc, TelegramBadRequest) and _thread_gone(exc):
            await _recorded(services, claim_id, "topic deleted", _gone(due))
            return _Synced.DONE
        log.warning("topic of claim %s not brought up to date: %r", claim_id, exc)
        error = f"{type(exc).__name__}: {exc}"[:500]
        await _recorded(services, claim_id, "sync failed", _failed(error, None))
        return _Synced.LATER
    done = _changes(synced_version=due.version, sync_attempts=0, sync_after=None, sync_error=None)
    await _recorded(services, claim_id, "sync done", done)
    return _Synced.DONE


def _failed(error: str, wait: float | None) -> _Change:
    """Tried again after Telegram's ``retry_after``, else after a backoff by attempts."""

    async def change(uow: SqlUnitOfWork, claim_id: int, now: datetime) -> None:
        topics = TopicRepo(uow.session)
        topic = await topics.get(claim_id)
        attempts = (topic.sync_attempts if topic is not None else 0) + 1
        seconds = wait if wait is not None else backoff(attempts)
        await topics.changed(
            claim_id,
            now,
            sync_attempts=attempts,
            sync_after=now + timedelta(seconds=seconds),
            sync_error=error,
        )

    return change


def _gone(due: _Due) -> _Change:
    """Someone deleted the topic. If the case needs staff, a staff message says so, and its
    delivery opens a new topic with the case's card (durably, like any message)."""

    async def change(uow: SqlUnitOfWork, claim_id: int, now: datetime) -> None:
        await TopicRepo(uow.session).forget(claim_id, now)  # its sync lease with it
        if not due.needs_staff:
            return
        await uow.outbox.add(
            OutboxMessage(
                dedupe_key=f"topic-reopened:{claim_id}:{due.thread}",
                recipient_kind="staff",
                recipient_id=None,
                template="staff.topic_reopened",
                params={"claim_id": claim_id},
                claim_id=claim_id,
            ),
            now,
        )

    return change


async def _bring(services: Services, bot: Bot, gate: FloodGate, group: int, due: _Due) -> None:
    """Each step is recorded as soon as Telegram has done it, so a failure part-way — of
    Telegram, of the network or of the database — repeats none of them."""
    claim_id, thread = due.claim_id, due.thread
    if due.name is not None:
        _spend(gate, group)
        await _refusable(bot.edit_forum_topic(group, thread, name=due.name), claim_id, "rename")
        await _recorded(services, claim_id, "renamed", _changes(name=due.name))
    if due.card is not None and due.card_message_id is not None:
        _spend(gate, group)
        redraw = bot.edit_message_text(
            due.card.text,
            chat_id=group,
            message_id=due.card_message_id,
            parse_mode="HTML",
            reply_markup=markup(due.card.keyboard),
        )
        await _refusable(redraw, claim_id, "card redraw")
        await _recorded(services, claim_id, "card redrawn", _changes(card_version=due.version))
    for run in due.evidence:
        _spend(gate, group, len(run))
        await _send_evidence(bot, group, thread, run, claim_id)
        await _recorded(services, claim_id, "evidence shown", _changes(evidence_upto=run[-1][0]))
    if due.close:
        _spend(gate, group)
        await _refusable(bot.close_forum_topic(group, thread), claim_id, "close")
        await _recorded(services, claim_id, "topic closed", _changes(closed=True))


async def _refusable(call: Awaitable[T], claim_id: int, what: str) -> T | None:
    """A step Telegram refuses for good (400) is logged and counts as done — trying again
    would not help; "not modified" means it was done already. A deleted topic is raised."""
    try:
        return await call
    except TelegramBadRequest as exc:
        if _thread_gone(exc):
            raise
        if not not_modified(exc):
            log.warning("topic of claim %s: %s refused: %s", claim_id, what, exc.message)
        return None


def _runs(items: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Evidence in order, cut into albums of one kind (Telegram does not mix documents with
    photos in one album) of at most ten."""
    runs = []
    for _, same in groupby(items, key=lambda item: evidence.parse(item[1])[0]):
        batch = list(same)
        runs += [batch[i : i + ALBUM_MAX] for i in range(0, len(batch), ALBUM_MAX)]
    return runs


async def _send_evidence(
    bot: Bot, group: int, thread: int, run: list[tuple[int, str]], claim_id: int
) -> None:
    """One run of evidence: a single photo or file, or an album of them."""
    kind = evidence.parse(run[0][1])[0]
    files = [evidence.parse(ref)[1] for _, ref in run]
    if len(files) == 1:
        await _send_one(bot, group, thread, files[0], kind, claim_id)
        return
    media = [
        InputMediaPhoto(media=file) if kind == PHOTO else InputMediaDocument(media=file)
        for file in files
    ]
    try:
        await bot.send_media_group(group, media, message_thread_id=thread)  # type: ignore[arg-type]
    except TelegramBadRequest as exc:
        if _thread_gone(exc):
            raise
        if "file of type" not in exc.message:
            log.warning("evidence of claim %s not shown: %s", claim_id, exc.message)
            return
        # A reference stored without its kind was guessed wrong: one by one (on the tokens
        # the album did not use), each as what Telegram says it is.
        for file in files:
            await _send_one(bot, group, thread, file, kind, claim_id)


async def _send_one(
    bot: Bot, group: int, thread: int, file_id: str, kind: str, claim_id: int
) -> None:
    for attempt in (kind, DOCUMENT if kind == PHOTO else PHOTO):
        send = bot.send_photo if attempt == PHOTO else bot.send_document
        try:
            await send(group, file_id, message_thread_id=thread)
            return
        except TelegramBadRequest as exc:
            if _thread_gone(exc):
                raise
            if "file of type" in exc.message and attempt == kind:
                continue
            log.warning("evidence of claim %s not shown: %s", claim_id, exc.message)
            return
