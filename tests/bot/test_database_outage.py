"""The database goes away under the running bot and comes back: users are told to try again,
the back office logs and keeps its turns, and nothing is lost or done twice.

An outage is real on both engines. PostgreSQL: the test's database stops taking connections
(``ALLOW_CONNECTIONS false``) and its open ones are ended, as in a failover. SQLite: another
process holds the write lock (``BEGIN EXCLUSIVE``) past the busy timeout, shortened here so
the bot gives up in a quarter of a second rather than thirty.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import CreateForumTopic, SendMediaGroup, SendMessage, TelegramMethod
from sqlalchemy import select, text

from bot.app import back_office_until_quiet
from bot.delivery import SENT
from bot.scheduler import Intervals, build_scheduler
from storage import engine as storage_engine
from storage import tables as t
from storage.engine import make_engine
from tests.bot.conversations.buyer_kit import bound_buyer, draft, press
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import last, toasts
from tests.bot.conversations.staff_kit import (
    BUYER,
    file_for_review,
    parties,
    photos,
    review_topic,
    staffed,
)
from tests.bot.test_delivery import bind_buyers, calls, drain, received, write_messages
from tests.conftest import postgres_admin_url
from workflow.simulated import ManualClock

# Holds SQLite's write lock for another process until told to let go (a line on stdin).
_LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


class Outage:
    """Takes the world's database away (:meth:`begin`) and gives it back (:meth:`end`)."""

    def __init__(self, world: World) -> None:
        self.url = world.uows.engine.url
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self.locker: asyncio.subprocess.Process | None = None
        self.down = False

    async def begin(self) -> None:
        if self.sqlite:
            self.locker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _LOCKER,
                str(self.url.database),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert self.locker.stdout is not None
            assert (await self.locker.stdout.readline()).strip() == b"locked"
        else:
            await self._postgres("ALLOW_CONNECTIONS false", end_connections=True)
        self.down = True

    async def end(self) -> None:
        if not self.down:
            return
        if self.locker is not None:
            assert self.locker.stdin is not None
            self.locker.stdin.write(b"\n")
            await self.locker.stdin.drain()
            assert await self.locker.wait() == 0
            self.locker = None
        else:
            await self._postgres("ALLOW_CONNECTIONS true")
        self.down = False

    async def drop_connections(self) -> None:
        """PostgreSQL ends every connection to the database (a restart, a failover)."""
        await self._postgres("ALLOW_CONNECTIONS true", end_connections=True)

    async def _postgres(self, connections: str, end_connections: bool = False) -> None:
        admin_url = postgres_admin_url()
        assert admin_url is not None
        name = self.url.database
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'ALTER DATABASE "{name}" {connections}'))
                if end_connections:
                    await conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = :name AND pid <> pg_backend_pid()"
                        ),
                        {"name": name},
                    )
        finally:
            await admin.dispose()


@pytest.fixture
async def outage(world: World, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Outage]:
    if world.uows.engine.dialect.name == "sqlite":
        monkeypatch.setattr(storage_engine, "SQLITE_BUSY_TIMEOUT_S", 0.25)
        await world.uows.engine.dispose()  # connections made from now on wait 0.25 s
    made = Outage(world)
    try:
        yield made
    finally:
        await made.end()


class Logged(logging.Handler):
    """Log records as they come, with a wait for the first one that matches."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()
        self.loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.loop.call_soon_threadsafe(self.changed.set)  # a record may come from a thread

    def lines(self, logger: str, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.name == logger and r.levelno >= level]

    async def first(self, *wanted: tuple[str, str]) -> logging.LogRecord:
        """The first record of one of the ``(logger, words)`` wanted, once logged."""
        async with asyncio.timeout(30):
            while True:
                for r in self.records:
                    if any(r.name == name and words in r.getMessage() for name, words in wanted):
                        return r
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def logged() -> AsyncIterator[Logged]:
    handler = Logged(asyncio.get_running_loop())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _processed(world: World, update_id: int) -> bool:
    async with world.uows() as uow:
        found = await uow.session.scalar(
            select(t.ProcessedUpdate.update_id).where(t.ProcessedUpdate.update_id == update_id)
        )
    return found is not None


async def test_a_buyer_is_asked_to_try_again_and_the_retry_works_once_the_database_is_back(
    world: World, outage: Outage, logged: Logged
) -> None:
    ann, bo = 951, 952
    await bound_buyer(world, ann, "RS1", ("R-1",))
    await bound_buyer(world, bo, "RS2", ("R-2",), lang="zh-hans")
    [orders] = await world.say(ann, "/new")
    await world.say(bo, "/new")
    for label in ("R-2", "Item R-2-B", "下一步", "仅退款", "质量问题"):
        await press(world, bo, label)
    before = await draft(world, ann), await draft(world, bo)
    assert before[1] is not None and before[1][1] == "description"

    await outage.begin()
    pressed = await world.client.press(
        ann, orders["message_id"], callback_data=_button(orders, "R-1")
    )
    typed = await world.client.send(bo, "缝线开了")
    for update_id in (pressed["update_id"], typed["update_id"]):
        await world.handled(update_id)
    await outage.end()

    [alert] = [
        a
        for a in (await world.client.messages(ann))["callback_answers"]
        if a["callback_query_id"] == pressed["callback_query_id"]
    ]
    assert alert["show_alert"] and alert["answered"]
    assert "temporarily unavailable" in alert["text"] and "try again in a moment" in alert["text"]
    assert "服务暂时不可用" in (await last(world, bo))["text"]
    said = [line.partition(": ") for line in logged.lines("bot.conversations.engine")]
    assert sorted(head for head, _, _ in said) == sorted(
        f"update {update_id} from {who} not handled, the database is unavailable"
        for update_id, who in ((pressed["update_id"], ann), (typed["update_id"], bo))
    )
    assert all(cause for _, _, cause in said)  # and why, in the driver's words
    for update_id in (pressed["update_id"], typed["update_id"]):
        assert not await _processed(world, update_id)  # a redelivery would be handled afresh
    assert (await draft(world, ann), await draft(world, bo)) == before  # no step taken

    # The database is back: the same press and the same answer work, at the first try.
    [lines] = await press(world, ann, "R-1", orders)
    assert "Order R-1: tap the items" in lines["text"]
    [photos] = await world.say(bo, "缝线开了")
    assert (await draft(world, bo) or ("", "", {}))[1] == "photos", photos["text"]
    assert (await draft(world, ann) or ("", "", {}))[1] == "lines"
    assert [r.getMessage() for r in logged.records if r.levelno >= logging.ERROR] == []


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_connections_the_server_dropped_while_the_bot_was_idle_are_replaced_unseen(
    world: World, outage: Outage, logged: Logged
) -> None:
    ann = 953
    await bound_buyer(world, ann, "RS3", ("R-3",))
    [orders] = await world.say(ann, "/new")  # the pool now holds connections
    await outage.drop_connections()
    [lines] = await press(world, ann, "R-3", orders)
    assert "Order R-3: tap the items" in lines["text"]
    assert "temporarily unavailable" not in str(await toasts(world, ann))
    assert [r.getMessage() for r in logged.records if r.levelno >= logging.WARNING] == []


def _button(message: dict[str, Any], label: str) -> str:
    markup = message.get("reply_markup") or {}
    [data] = [
        b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
        if label in b["text"]
    ]
    return str(data)


def _cut_after(
    sends: int, outage: Outage, cut: asyncio.Event, kind: type[TelegramMethod[Any]] = SendMessage
) -> Callable[..., Awaitable[Any]]:
    """A request middleware of the delivering bot: the database goes away right after
    Telegram has taken the ``sends``-th call of ``kind``, before the bot hears back."""
    taken = 0

    async def middleware(
        make_request: Callable[[Bot, TelegramMethod[Any]], Awaitable[Any]],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Any:
        nonlocal taken
        response = await make_request(bot, method)
        if isinstance(method, kind):
            taken += 1
            if taken == sends:
                await outage.begin()
                cut.set()
        return response

    return middleware


async def test_the_back_office_logs_an_outage_keeps_its_turns_and_sends_each_message_once(
    world: World, outage: Outage, logged: Logged
) -> None:
    chats = await bind_buyers(world, 2, first_user=9601)
    async with world.uows() as uow:
        sent_before = (await uow.delivery.counts()).get(SENT, 0)
    await write_messages(world, list(chats), 10)
    cut = asyncio.Event()
    bot = Bot(
        world.sandbox.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(world.sandbox.url)),
    )
    bot.session.middleware(_cut_after(3, outage, cut))
    fast = Intervals(
        sweeps=0.05, providers=0.05, payment_callbacks=0.05, tracking=0.05, delivery=0.05
    )
    scheduler = build_scheduler(world.services, bot, world.payment, world.carrier, fast)
    scheduler.start()
    try:
        await asyncio.wait_for(cut.wait(), 30)
        # Telegram has taken messages whose outcome the database cannot hear of yet; the
        # sweeps meet the outage too. Both say so and go on.
        await logged.first(("bot.delivery", "not written yet"), ("bot.scheduler", "job delivery"))
        await logged.first(("bot.scheduler", "job sweeps"))
        await outage.end()
        # Back at once, and long enough after that every lease taken before has run out.
        clock = world.env.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(seconds=world.services.config.delivery_lease_seconds + 1))
        # Every message goes out, by the same scheduler, without anyone restarting anything.
        await world.client.wait_calls(
            timeout_ms=30_000,
            method="sendMessage",
            ok=True,
            text_contains="has been approved",
            count=10,
            distinct=True,
        )
        async with asyncio.timeout(30):
            while True:  # until every outcome is written
                async with world.uows() as uow:
                    if await uow.delivery.counts() == {SENT: sent_before + 10}:
                        break
                await world.client.wait_idle(quiet_ms=50)
        assert {job.id for job in scheduler.get_jobs()} == {f.name for f in fields(Intervals)}
        # Each failed turn was one line about the outage; no traceback, no failed job.
        for line in logged.lines("bot.scheduler"):
            assert "the database is unavailable" in line, line
        # A turn that comes while the last one still waits for the database is let go
        # quietly, not logged a warning each time by the scheduler.
        assert logged.lines("apscheduler.scheduler") == []
        assert [r.getMessage() for r in logged.records if r.levelno >= logging.ERROR] == []
    finally:
        scheduler.shutdown(wait=False)
        await bot.session.close()
    await drain(world)  # nothing is left to send again
    got = await received(world, chats)
    assert sorted(n for numbers in got.values() for n in numbers) == list(range(1, 11))
    sends = await calls(world, method="sendMessage", ok=True)
    assert len([c for c in sends if "has been approved" in c["params"]["text"]]) == 10


@pytest.mark.parametrize("kind", [CreateForumTopic, SendMediaGroup], ids=["topic", "album"])
async def test_the_staff_group_gets_one_topic_and_one_album_when_the_database_goes_away_after_a_send(
    world: World, outage: Outage, logged: Logged, kind: type[TelegramMethod[Any]]
) -> None:
    """Telegram created the case's topic (or took the buyer's album) and the database went
    away before the bot could write it down: the bot writes it once the database is back,
    and neither is made a second time."""
    group = await staffed(world)
    assert group is not None
    await world.user(BUYER, "Ann")  # sends the photos; no chat of the case's parties is bound
    n = await file_for_review(world, await parties(world, bind=False), await photos(world, 2))
    cut = asyncio.Event()
    bot = Bot(
        world.sandbox.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(world.sandbox.url)),
    )
    bot.session.middleware(_cut_after(1, outage, cut, kind))
    try:
        delivering = asyncio.create_task(
            back_office_until_quiet(world.services, bot, world.payment, world.carrier)
        )
        await asyncio.wait_for(cut.wait(), 30)
        # The bot waits to write what Telegram did (or, without a topic, that it failed).
        await logged.first(
            ("bot.staff_group", "not written yet"), ("bot.delivery", "not written yet")
        )
        await outage.end()
        await asyncio.wait_for(delivering, 30)
    finally:
        await bot.session.close()
    clock = world.env.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(seconds=world.services.config.delivery_lease_seconds + 1))
    await world.back_office()

    _, album = await review_topic(world, group, n)
    assert len(album) == 2 and len({m.get("media_group_id") for m in album}) == 1
    for method in ("createForumTopic", "sendMediaGroup"):
        assert len(await calls(world, method=method, ok=True)) == 1, method
    assert [r.getMessage() for r in logged.records if r.levelno >= logging.ERROR] == []
