"""Delivery of outbox messages to the parties' chats: at least once, in order, under the limits.

An outbox message is written in the same transaction as the change that causes it. Delivery
then goes in three steps, each its own short transaction:

1. **Fan-out** — each due outbox message becomes one ``deliveries`` row per chat it goes to
   (every chat bound to the buyer or consignor; the staff group, or every staff member's
   private chat). The (message, chat) pair is unique: that is the dedupe key. A chat that
   blocked the bot gets its row marked unreachable at once.
2. **Lease** — the oldest pending rows are leased to this sender, a chat at a time and from
   its oldest row on, so one chat's messages are never sent out of order, by one process or
   by several; a chat whose oldest row waits for a retry holds back the rows behind it.
3. **Send** — chats are served side by side, each chat's rows one after another, every send
   paced by the :class:`~bot.flood.FloodGate` (per-chat and overall token buckets). Outcomes
   are written as they come: sent (with Telegram's message id) · 429 → the chat pauses for
   ``retry_after`` and the row is due again then · 5xx, timeouts, network errors → retried
   with exponential backoff · 403 (the user blocked the bot) → the chat's rows end
   unreachable, the user is marked unreachable and staff are told · another 400 → that row
   fails (logged) and the chat goes on.

A crash between Telegram's answer and the write of the outcome re-sends that message after
the lease expires (at least once, never never); nothing else is sent twice.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot import dates, staff_group
from bot.conversations.callbacks import ClaimAction
from bot.conversations.context import CHANNEL, Services, language_of
from bot.conversations.model import Button, Screen
from bot.conversations.staff_topics import staff_language
from bot.flood import FloodGate, gate_for
from bot.telegram_aiogram.render import markup
from storage import tables as t
from storage.uow import SqlUnitOfWork
from workflow.claims import OutboxMessage
from workflow.money import Money

log = logging.getLogger(__name__)

# Delivery states (``deliveries.status``) and what a send attempt came to.
PENDING, SENT, FAILED, UNREACHABLE = "pending", "sent", "failed", "unreachable"
RETRY, DEFERRED = "retry", "deferred"  # outcomes only: try again later / not tried
BACKOFF_BASE_S, BACKOFF_CAP_S = 2, 600
CHATS_AT_ONCE = 32  # chats served side by side in one round

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


async def _targets(uow: SqlUnitOfWork, services: Services, row: t.Outbox) -> list[tuple[int, bool]]:
    """(chat id, reachable) for each chat the message goes to."""
    if row.recipient_kind == "staff":
        if services.config.staff_chat_id is not None:
            return [(services.config.staff_chat_id, True)]
        externals = await uow.accounts.all_staff_externals(CHANNEL)
    elif row.recipient_kind in ("buyer", "consignor") and row.recipient_id is not None:
        externals = await uow.accounts.externals_of(CHANNEL, row.recipient_kind, row.recipient_id)
    else:
        return []
    out: list[tuple[int, bool]] = []
    for external in externals:
        user = await uow.chat.user(CHANNEL, external)
        out.append((external, not (user is not None and user.unreachable)))
    return out


async def fan_out(services: Services, limit: int = 500) -> int:
    """Turn due outbox messages into per-chat deliveries; returns how many messages."""
    now = services.env.clock.now()
    async with services.uows() as uow:
        rows = list(await uow.delivery.due_messages(now, limit))
        for row in rows:
            targets = await _targets(uow, services, row)
            for chat_id, reachable in targets:
                status = PENDING if reachable else UNREACHABLE
                await uow.delivery.add(row.id, chat_id, now, status)
            row.sent_at = now  # handed to its chats
            if not targets:
                row.last_error = "no chat to deliver to"
        await uow.commit()
    return len(rows)


@dataclass
class _Item:
    delivery_id: int
    chat_id: int
    outbox: t.Outbox
    screen: Screen | None  # None: a staff-group message, drawn by bot.staff_group


@dataclass
class _Outcome:
    item: _Item
    status: str  # sent | retry | failed | unreachable | deferred
    message_id: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds (429) — else backoff by attempts


async def _lease(services: Services, limit: int) -> dict[int, list[_Item]]:
    """This sender's share: per chat, its due rows from its oldest pending one on."""
    env, config = services.env, services.config
    now = env.clock.now()
    lease_until = now + timedelta(seconds=config.delivery_lease_seconds)
    plan: dict[int, list[_Item]] = {}
    async with services.uows() as uow:
        pending = list(await uow.delivery.pending(limit))
        heads = await uow.delivery.heads(d.chat_id for d in pending)
        held: set[int] = set()
        for d in pending:
            if d.chat_id in held:
                continue
            if d.chat_id not in plan and heads.get(d.chat_id) != d.id:
                held.add(d.chat_id)  # an older row of this chat is with another sender
                continue
            leased = d.leased_until is not None and _aware(d.leased_until) > now
            if leased or _aware(d.next_attempt_at) > now:
                held.add(d.chat_id)  # in flight elsewhere, or waiting for its retry
                continue
            d.leased_until = lease_until
            outbox = await uow.session.get(t.Outbox, d.outbox_id)
            assert outbox is not None
            if d.chat_id == config.staff_chat_id:
                screen = None
            else:
                user = await uow.chat.user(CHANNEL, d.chat_id)
                screen = render(
                    services, language_of(user.language if user else None, None), outbox
                )
            plan.setdefault(d.chat_id, []).append(_Item(d.id, d.chat_id, outbox, screen))
        await uow.commit()
    return plan


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 2, 4, 8 … 10 minutes."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


async def _attempt(services: Services, bot: Bot, gate: FloodGate, item: _Item) -> _Outcome:
    """One send, its result classified; never raises for what Telegram or the network did."""
    try:
        if item.screen is None:
            return await _to_staff_group(services, bot, item)
        await gate.acquire(item.chat_id)
        sent = await _send(bot, item.chat_id, None, item.screen)
        return _Outcome(item, SENT, message_id=sent)
    except TelegramRetryAfter as exc:
        gate.pause(item.chat_id, exc.retry_after)
        return _Outcome(
            item, RETRY, error=f"429 retry after {exc.retry_after}", retry_after=exc.retry_after
        )
    except TelegramForbiddenError as exc:
        return _Outcome(item, UNREACHABLE, error=f"403 {exc.message}")
    except TelegramBadRequest as exc:
        if "chat not found" in exc.message.lower():
            return _Outcome(item, UNREACHABLE, error=f"400 {exc.message}")
        log.error("message %s to chat %s refused: %s", item.outbox.id, item.chat_id, exc.message)
        return _Outcome(item, FAILED, error=f"400 {exc.message}")
    except (TelegramServerError, TelegramNetworkError, TelegramAPIError) as exc:
        return _Outcome(item, RETRY, error=f"{type(exc).__name__}: {exc}"[:500])
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return _Outcome(item, RETRY, error=f"{type(exc).__name__}: {exc}"[:500])


async def _to_staff_group(services: Services, bot: Bot, item: _Item) -> _Outcome:
    """A staff message into the case's forum topic (bot.staff_group budgets the group)."""
    async with services.uows() as uow:
        row = await uow.session.get(t.Outbox, item.outbox.id)
        assert row is not None
        note = render(services, staff_language(services), row).text
        if not await staff_group.deliver(uow, services, bot, row, note):
            await uow.rollback()
            return _Outcome(item, DEFERRED)
        await uow.commit()
    return _Outcome(item, SENT)


async def _record(services: Services, outcomes: list[_Outcome]) -> None:
    """Write a batch of outcomes in one transaction."""
    if not outcomes:
        return
    now = services.env.clock.now()
    async with services.uows() as uow:
        rows = {d.id: d for d in await uow.delivery.get_many(o.item.delivery_id for o in outcomes)}
        for outcome in outcomes:
            d = rows[outcome.item.delivery_id]
            d.leased_until = None
            if outcome.status == DEFERRED:
                continue
            d.attempts += 1
            d.last_error = outcome.error
            if outcome.status == SENT:
                d.status, d.sent_at, d.message_id = SENT, now, outcome.message_id
            elif outcome.status == RETRY:
                wait = (
                    outcome.retry_after if outcome.retry_after is not None else backoff(d.attempts)
                )
                d.next_attempt_at = now + timedelta(seconds=wait)
            elif outcome.status == FAILED:
                d.status = FAILED
            elif outcome.status == UNREACHABLE:
                await _unreachable(uow, services, d, outcome.error or "")
        await uow.commit()


async def _unreachable(uow: SqlUnitOfWork, services: Services, d: t.Delivery, error: str) -> None:
    """The user blocked the bot: their chat's rows end here, and staff hear of it once."""
    d.status = UNREACHABLE
    await uow.delivery.give_up_chat(d.chat_id, UNREACHABLE, error)
    user = await uow.chat.user(CHANNEL, d.chat_id)
    if user is not None and not user.unreachable:
        user.unreachable = True
        bindings = await uow.accounts.bindings(CHANNEL, d.chat_id)
        who = ", ".join(f"{b.party_kind} {b.party_id}" for b in bindings) or "-"
        await uow.outbox.add(
            OutboxMessage(
                dedupe_key=f"unreachable:{d.chat_id}:{d.id}",
                recipient_kind="staff",
                recipient_id=None,
                template="staff.unreachable",
                params={"name": user.first_name, "chat_id": d.chat_id, "parties": who},
                claim_id=None,
            ),
            services.env.clock.now(),
        )


class _Recorder:
    """Outcomes written in batches by one writer while the senders go on: a batch is what
    piled up while the previous one was being committed."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.queue: list[_Outcome] = []
        self.wake = asyncio.Event()
        self.closed = False
        self.task = asyncio.create_task(self._run(), name="delivery-recorder")

    def put(self, outcome: _Outcome) -> None:
        self.queue.append(outcome)
        self.wake.set()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.queue = self.queue, []
            await _record(self.services, batch)
            if self.closed and not self.queue:
                return

    async def close(self) -> None:
        self.closed = True
        self.wake.set()
        await self.task


async def send_due(services: Services, bot: Bot, limit: int = 200) -> int:
    """Send what is due now; returns how many deliveries were finished (sent or ended)."""
    plan = await _lease(services, limit)
    if not plan:
        return 0
    gate = gate_for(bot.token, services.config.send_limits)
    recorder = _Recorder(services)
    senders = asyncio.Semaphore(CHATS_AT_ONCE)
    finished = 0
    claim_ids: set[int] = set()

    async def serve(items: list[_Item]) -> None:
        nonlocal finished
        async with senders:
            for index, item in enumerate(items):
                outcome = await _attempt(services, bot, gate, item)
                recorder.put(outcome)
                if outcome.status in (SENT, FAILED, UNREACHABLE):
                    finished += 1
                    if item.outbox.claim_id is not None and outcome.status == SENT:
                        claim_ids.add(item.outbox.claim_id)
                if outcome.status in (RETRY, DEFERRED, UNREACHABLE):
                    # The rest of this chat waits: its order is kept, its lease given back.
                    for later in items[index + 1 :]:
                        recorder.put(_Outcome(later, DEFERRED))
                    return

    try:
        await asyncio.gather(*(serve(items) for items in plan.values()))
    finally:
        await recorder.close()
    if services.config.staff_chat_id is not None and claim_ids:
        # Every transition writes messages: the cases they are about get their topics renamed.
        async with services.uows() as uow:
            await staff_group.sync(uow, services, bot, claim_ids)
            await uow.commit()
    return finished


async def deliver_pending(services: Services, bot: Bot, limit: int = 200) -> int:
    """One delivery round: fan out what is due, then send what is due; returns the count of
    messages fanned out plus deliveries finished (0: nothing was due)."""
    moved = await fan_out(services, limit)
    moved += await send_due(services, bot, limit)
    return moved


async def _send(bot: Bot, chat_id: int, thread_id: int | None, screen: Screen) -> int:
    if screen.photo is not None:
        from aiogram.types import BufferedInputFile

        photo = (
            BufferedInputFile(screen.photo, "picture.png")
            if isinstance(screen.photo, bytes)
            else screen.photo
        )
        sent = await bot.send_photo(
            chat_id,
            photo,
            caption=screen.text,
            parse_mode="HTML",
            reply_markup=markup(screen.keyboard),
            message_thread_id=thread_id,
        )
        return sent.message_id
    message = await bot.send_message(
        chat_id,
        screen.text,
        parse_mode="HTML",
        reply_markup=markup(screen.keyboard),
        message_thread_id=thread_id,
    )
    return message.message_id
