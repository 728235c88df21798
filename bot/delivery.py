"""Delivery of outbox messages to the parties' chats: at least once, in order, under the limits.

An outbox message is written in the same transaction as the change that causes it. Delivery
then goes in three steps, each its own short transaction:

1. **Fan-out** — each due outbox message becomes one ``deliveries`` row per chat it goes to
   (every chat bound to the buyer or consignor, but the chat a party took their own step
   in, where the bot's answer is their record; the staff group, or every staff member's
   private chat). The (message, chat) pair is unique: that is the dedupe key. A chat that
   blocked the bot gets its row marked unreachable at once. A message that found no chat
   waits for the party's first one — unless it was about their own step (they were told).
2. **Lease** — the oldest pending rows are leased to this sender, a chat at a time and from
   its oldest row on, so one chat's messages are never sent out of order, by one process or
   by several; a chat whose oldest row waits for a retry holds back the rows behind it.
   Rows next to each other that were written together (one party, one claim, one
   transaction: ``told_with``) are sent as one message, their texts a line each.
3. **Send** — chats are served side by side, each chat's rows one after another, every send
   paced by the :class:`~bot.flood.FloodGate` (per-chat and overall token buckets). Outcomes
   are written as they come: sent (with Telegram's message id) · 429 → the chat pauses for
   ``retry_after`` and the row is due again then · 5xx, timeouts, network errors → retried
   with exponential backoff · 403 (the user blocked the bot) → the chat's rows end
   unreachable, the user is marked unreachable and staff are told · another 400 → that row
   fails, staff are told what the party did not get (in the case's topic when it is about a
   case), and the chat goes on.

Fan-out and lease are repeated while chats are being served, so a message written during a
long backlog to one chat goes out to another chat in the same pass.

Then the staff group's topics are brought in step with their cases
(:func:`bot.staff_group.sync`): renamed, cards redrawn, evidence posted, closed — for every
case whose topic shows less than there is, whether or not a message about it went out.

A crash between Telegram's answer and the write of the outcome re-sends that message after
the lease expires (at least once, never never); nothing else is sent twice. A database that
goes away mid-pass is not a crash: what is leased still goes out, and the outcomes are kept
and written once the database is back (an outcome dropped would send its message again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

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

from bot import limits, staff_group
from bot.conversations.context import CHANNEL, Services, language_of
from bot.conversations.model import Screen
from bot.conversations.staff_topics import staff_language
from bot.flood import FloodGate, backoff, gate_for
from bot.outbox_screens import joined, render
from bot.telegram_aiogram.render import send_screen
from storage import tables as t
from storage.engine import unavailable, until_written
from storage.repositories import NO_CHAT
from storage.uow import SqlUnitOfWork
from workflow.claims import OutboxMessage
from workflow.notifications import ORIGIN_CHAT

log = logging.getLogger(__name__)

# Delivery states (``deliveries.status``) and what a send attempt came to.
PENDING, SENT, FAILED, UNREACHABLE = "pending", "sent", "failed", "unreachable"
_REFUSED_EXCERPT = 300  # characters of a refused message shown to staff
RETRY, DEFERRED = "retry", "deferred"  # outcomes only: try again later / not tried


async def fan_out(services: Services, limit: int = 500) -> int:
    """Turn due outbox messages into per-chat deliveries; returns how many messages."""
    now = services.env.clock.now()
    group = services.config.staff_chat_id
    async with services.uows() as uow:
        rows = list(await uow.delivery.due_messages(now, limit))
        parties = {
            (row.recipient_kind, row.recipient_id)
            for row in rows
            if row.recipient_kind in ("buyer", "consignor") and row.recipient_id is not None
        }
        chats_of = await uow.accounts.externals_of_many(CHANNEL, parties)
        staff = (
            await uow.accounts.all_staff_externals(CHANNEL)
            if group is None and any(row.recipient_kind == "staff" for row in rows)
            else []
        )
        everyone = {c for chats in chats_of.values() for c in chats} | set(staff)
        users = await uow.chat.users(CHANNEL, everyone)
        deliveries: list[tuple[int, int, str]] = []
        for row in rows:
            if row.recipient_kind == "staff":
                targets = [group] if group is not None else staff
            else:
                targets = chats_of.get((str(row.recipient_kind), int(row.recipient_id or 0)), [])
            # Their own step: the chat they took it in has their answer already.
            origin = row.payload.get(ORIGIN_CHAT)
            targets = [chat_id for chat_id in targets if chat_id != origin]
            for chat_id in targets:
                user = users.get(chat_id)
                blocked = user is not None and user.unreachable and chat_id != group
                deliveries.append((row.id, chat_id, UNREACHABLE if blocked else PENDING))
            row.sent_at = now  # handed to its chats
            if not targets and origin is None:
                row.last_error = NO_CHAT  # it waits for their chat (AccountRepo.bind)
        await uow.delivery.add_many(deliveries, now)
        await uow.commit()
    return len(rows)


@dataclass
class _Item:
    """One Telegram message to one chat: one delivery, or several told together."""

    delivery_ids: tuple[int, ...]
    chat_id: int
    outboxes: tuple[t.Outbox, ...]
    screen: Screen | None  # None: a staff-group message, drawn by bot.staff_group

    @property
    def outbox(self) -> t.Outbox:
        return self.outboxes[0]


def _joined(item: _Item, delivery_id: int, row: t.Outbox, screen: Screen) -> _Item | None:
    """``item`` and the next message to its chat as one, when they were written together
    and still fit in one (:func:`bot.outbox_screens.joined`)."""
    if item.screen is None:
        return None
    both = joined(item.outbox, item.screen, row, screen)
    if both is None:
        return None
    return _Item((*item.delivery_ids, delivery_id), item.chat_id, (*item.outboxes, row), both)


@dataclass
class _Outcome:
    item: _Item
    status: str  # sent | retry | failed | unreachable | deferred
    message_id: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds (429) — else backoff by attempts


async def _lease(
    services: Services, limit: int, ours: set[int], mine: set[int], stopped: set[int]
) -> dict[int, list[_Item]]:
    """More of this sender's share: per chat, due rows from its oldest pending one on — or,
    for a chat this sender is already serving (``mine``), from the row after its own
    (``ours``: leased and not finished, or finished and not written yet). ``stopped`` chats
    wait for the next pass."""
    env, config = services.env, services.config
    now = env.clock.now()
    lease_until = now + timedelta(seconds=config.delivery_lease_seconds)
    plan: dict[int, list[_Item]] = {}
    async with services.uows() as uow:
        pending = list(await uow.delivery.pending(limit, exclude=ours))
        heads = await uow.delivery.heads(d.chat_id for d in pending)
        held: set[int] = set(stopped)
        taken: list[t.Delivery] = []
        for d in pending:
            if d.chat_id in held:
                continue
            first = d.chat_id not in plan
            if first and d.chat_id not in mine and heads.get(d.chat_id) != d.id:
                held.add(d.chat_id)  # an older row of this chat is with another sender
                continue
            leased = d.leased_until is not None and _aware(d.leased_until) > now
            if leased or _aware(d.next_attempt_at) > now:
                held.add(d.chat_id)  # in flight elsewhere, or waiting for its retry
                continue
            d.leased_until = lease_until
            taken.append(d)
            plan.setdefault(d.chat_id, [])
        outboxes = await uow.delivery.outboxes(d.outbox_id for d in taken)
        users = await uow.chat.users(CHANNEL, plan)
        for d in taken:
            outbox, items = outboxes[d.outbox_id], plan[d.chat_id]
            if d.chat_id == config.staff_chat_id:  # drawn by bot.staff_group, one by one
                items.append(_Item((d.id,), d.chat_id, (outbox,), None))
                continue
            user = users.get(d.chat_id)
            screen = render(services, language_of(user.language if user else None, None), outbox)
            joined = _joined(items[-1], d.id, outbox, screen) if items else None
            if joined is not None:
                items[-1] = joined
            else:
                items.append(_Item((d.id,), d.chat_id, (outbox,), screen))
        await uow.commit()
    return plan


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _attempt(services: Services, bot: Bot, gate: FloodGate, item: _Item) -> _Outcome:
    """One send, its result classified; never raises for what Telegram or the network did."""
    try:
        if item.screen is None:
            return await _to_staff_group(services, bot, item)
        await gate.acquire(item.chat_id)
        sent = await send_screen(bot, item.chat_id, None, item.screen)
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
    except Exception as exc:  # a bug, not Telegram: keep the message, say so, go on
        if unavailable(exc):  # reading the staff message's case, before anything was sent
            log.warning(
                "message %s to chat %s waits for the database", item.outbox.id, item.chat_id
            )
        else:
            log.exception("message %s to chat %s: unexpected failure", item.outbox.id, item.chat_id)
        return _Outcome(item, RETRY, error=f"{type(exc).__name__}: {exc}"[:500])


async def _to_staff_group(services: Services, bot: Bot, item: _Item) -> _Outcome:
    """A staff message into the case's forum topic (bot.staff_group budgets the group)."""
    note = render(services, staff_language(services), item.outbox).text
    if not await staff_group.deliver(services, bot, item.outbox.claim_id, note):
        return _Outcome(item, DEFERRED)
    return _Outcome(item, SENT)


async def _record(services: Services, outcomes: list[_Outcome]) -> None:
    """Write a batch of outcomes in one transaction."""
    if not outcomes:
        return
    now = services.env.clock.now()
    async with services.uows() as uow:
        wanted = (i for o in outcomes for i in o.item.delivery_ids)
        rows = {d.id: d for d in await uow.delivery.get_many(wanted)}
        for outcome in outcomes:
            for delivery_id in outcome.item.delivery_ids:  # messages told together: alike
                await _outcome(uow, services, rows[delivery_id], outcome, now)
        await uow.commit()


async def _outcome(
    uow: SqlUnitOfWork, services: Services, d: t.Delivery, outcome: _Outcome, now: datetime
) -> None:
    d.leased_until = None
    if outcome.status == DEFERRED:
        return
    d.attempts += 1
    d.last_error = outcome.error
    if outcome.status == SENT:
        d.status, d.sent_at, d.message_id = SENT, now, outcome.message_id
    elif outcome.status == RETRY:
        wait = outcome.retry_after if outcome.retry_after is not None else backoff(d.attempts)
        d.next_attempt_at = now + timedelta(seconds=wait)
    elif outcome.status == FAILED:
        d.status = FAILED
        if d.id == outcome.item.delivery_ids[0]:  # messages told together: one word to staff
            await _refused(uow, services, d, outcome)
    elif outcome.status == UNREACHABLE:
        await _unreachable(uow, services, d, outcome.error or "")


async def _unreachable(uow: SqlUnitOfWork, services: Services, d: t.Delivery, error: str) -> None:
    """The user blocked the bot: their chat's rows end here, and staff hear of it once."""
    d.status = UNREACHABLE
    await uow.delivery.give_up_chat(d.chat_id, UNREACHABLE, error)
    user = await uow.chat.user(CHANNEL, d.chat_id)
    if user is not None and not user.unreachable:
        user.unreachable = True
        await _tell_staff(
            uow, services, f"unreachable:{d.chat_id}:{d.id}", "staff.unreachable", d.chat_id, {}
        )


async def _refused(
    uow: SqlUnitOfWork, services: Services, d: t.Delivery, outcome: _Outcome
) -> None:
    """Telegram refused a message for good (a 400 other than a chat that is gone): the party
    will never see it, so staff are told who missed what — in the case's topic when it was
    about a case — and can reach them another way. A refused message to staff tells nobody
    (its notice could be refused alike, and over again)."""
    first = outcome.item.outbox
    if first.recipient_kind == "staff" or outcome.item.screen is None:
        return
    said = limits.clip(limits.plain(outcome.item.screen.text), _REFUSED_EXCERPT)
    await _tell_staff(
        uow,
        services,
        f"refused:{d.id}",
        "staff.undelivered",
        d.chat_id,
        {"error": outcome.error or "", "said": said},
        claim_id=first.claim_id,
    )


async def _tell_staff(
    uow: SqlUnitOfWork,
    services: Services,
    key: str,
    template: str,
    chat_id: int,
    params: dict[str, object],
    claim_id: int | None = None,
) -> None:
    """A word to staff about a party's chat, naming who it is: the user's name, the chat and
    the platform accounts bound to it (in the case's topic when ``claim_id`` is given)."""
    user = await uow.chat.user(CHANNEL, chat_id)
    bindings = await uow.accounts.bindings(CHANNEL, chat_id)
    who = {
        "name": user.first_name if user is not None else "-",
        "chat_id": chat_id,
        "parties": ", ".join(f"{b.party_kind} {b.party_id}" for b in bindings) or "-",
    }
    await uow.outbox.add(
        OutboxMessage(
            dedupe_key=key,
            recipient_kind="staff",
            recipient_id=None,
            template=template,
            params={**who, **params},
            claim_id=claim_id,
        ),
        services.env.clock.now(),
    )


class _Recorder:
    """Outcomes written in batches by one writer while the senders go on: a batch is what
    piled up while the previous one was being committed."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.queue: list[_Outcome] = []
        # Deliveries whose outcome is not written yet: their rows still read pending (with a
        # lease that may have run out), and must not be leased again meanwhile.
        self.unwritten: set[int] = set()
        self.wake = asyncio.Event()
        self.closed = False
        self.task = asyncio.create_task(self._run(), name="delivery-recorder")

    def put(self, outcome: _Outcome) -> None:
        self.queue.append(outcome)
        self.unwritten.update(outcome.item.delivery_ids)
        self.wake.set()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.queue = self.queue, []
            await self._write(batch)
            if self.closed and not self.queue:
                return

    async def _write(self, batch: list[_Outcome]) -> None:
        """What Telegram answered is a fact: written however long the database is away."""
        await until_written(
            partial(_record, self.services, batch), f"{len(batch)} delivery outcomes", log
        )
        self.unwritten.difference_update(i for o in batch for i in o.item.delivery_ids)

    async def close(self) -> None:
        self.closed = True
        self.wake.set()
        await self.task


# While chats are being served, what was written since is fanned out and leased at least
# this often (seconds): one chat's long backlog never holds up a new message to another chat.
LOOK_AGAIN_S = 1.0


async def send_due(services: Services, bot: Bot, limit: int = 200) -> int:
    """Fan out and send what is due, until nothing more is; returns how many messages were
    fanned out plus how many deliveries were finished (sent or ended). Each chat is served
    by one task, its rows one after another; more rows are fanned out and leased while the
    last ones are still going out (when half of them have, or every :data:`LOOK_AGAIN_S`),
    so a backlog flows without pauses and a message written meanwhile joins it."""
    gate = gate_for(bot.token, services.config.send_limits)
    recorder = _Recorder(services)
    queues: dict[int, deque[_Item]] = {}
    serving: dict[int, asyncio.Task[None]] = {}
    ours: set[int] = set()  # leased in this pass and not finished
    stopped: set[int] = set()  # chats over their budget: they wait for the next pass
    wake = asyncio.Event()
    finished = 0

    async def serve(chat_id: int) -> None:
        nonlocal finished
        queue = queues[chat_id]
        try:
            while queue:
                item = queue.popleft()
                outcome = await _attempt(services, bot, gate, item)
                ours.difference_update(item.delivery_ids)
                wake.set()
                recorder.put(outcome)
                if outcome.status in (SENT, FAILED, UNREACHABLE):
                    finished += len(item.delivery_ids)
                if outcome.status in (RETRY, DEFERRED, UNREACHABLE):
                    # The rest of this chat waits: its order is kept, its lease given back.
                    # A retry is due again at its time (a later lease takes it up); a message
                    # over the staff group's budget waits for the next pass.
                    if outcome.status == DEFERRED:
                        stopped.add(chat_id)
                    while queue:
                        later = queue.popleft()
                        ours.difference_update(later.delivery_ids)
                        recorder.put(_Outcome(later, DEFERRED))
        finally:
            del serving[chat_id]
            del queues[chat_id]
            wake.set()

    try:
        while True:
            finished += await fan_out(services, limit)
            plan = await _lease(services, limit, ours | recorder.unwritten, set(serving), stopped)
            for chat_id, items in plan.items():
                queues.setdefault(chat_id, deque()).extend(items)
                ours.update(i for item in items for i in item.delivery_ids)
                if chat_id not in serving:
                    serving[chat_id] = asyncio.create_task(serve(chat_id))
            if not serving:
                break
            if not plan:  # then one more look, when they are done or a while has passed
                await asyncio.wait(list(serving.values()), timeout=LOOK_AGAIN_S)
                continue
            # Lease more once half of what is in flight has gone out (or a while has passed).
            low_water = len(ours) // 2
            while serving and len(ours) > low_water:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), LOOK_AGAIN_S)
                except TimeoutError:
                    break
    except Exception:
        # No more fan-out or leases (the database went away): what is leased still goes out
        # rather than being cut off in flight, when Telegram may already have taken it.
        await asyncio.gather(*serving.values(), return_exceptions=True)
        raise
    finally:
        for task in list(serving.values()):
            task.cancel()
        await recorder.close()
    # The staff group's topics follow their cases whether or not a message went out: what
    # is due is read from the topics themselves, so a failed sync is simply due again.
    finished += await staff_group.sync(services, bot)
    return finished


async def deliver_pending(services: Services, bot: Bot, limit: int = 200) -> int:
    """One delivery round (:func:`send_due`); returns the count of messages fanned out plus
    deliveries finished (0: nothing was due)."""
    return await send_due(services, bot, limit)
