"""Writes that must not be lost are tried again when the database cannot take them yet."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.engine import make_engine, until_written

log = logging.getLogger("tests.storage.engine")


async def _waiting_for_a_lock(engine: AsyncEngine, pid: int) -> None:
    """Until the backend ``pid`` waits for a row lock (asked of the server, not timed)."""
    async with engine.connect() as watcher:
        while True:
            waiting = await watcher.scalar(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            )
            if waiting:
                return
            await watcher.rollback()


async def _deadlock(engine: AsyncEngine, table: str, mine: AsyncConnection) -> None:
    """``mine`` and another transaction lock two rows in opposite orders; PostgreSQL makes
    ``mine`` give way (it looks for the cycle first: the shorter ``deadlock_timeout``)."""
    await mine.execute(text("SET deadlock_timeout = '20ms'"))
    async with engine.connect() as other:
        await other.execute(text("SET deadlock_timeout = '60s'"))
        await mine.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = 1"))
        await other.execute(text(f"UPDATE {table} SET v = v + 10 WHERE id = 2"))
        other_pid = await other.scalar(text("SELECT pg_backend_pid()"))
        blocked = asyncio.create_task(
            other.execute(text(f"UPDATE {table} SET v = v + 10 WHERE id = 1"))
        )
        try:
            await _waiting_for_a_lock(engine, int(other_pid or 0))
            await mine.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = 2"))
        finally:
            await mine.rollback()  # the deadlock's loser is rolled back; the other goes on
            await blocked
            await other.commit()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_write_that_lost_a_deadlock_is_written_again(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(db_url)
    table = f"tug_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)"))
        await conn.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    tries = 0

    async def write() -> int:
        nonlocal tries
        tries += 1
        async with engine.connect() as mine:
            if tries == 1:
                await _deadlock(engine, table, mine)
            await mine.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id IN (1, 2)"))
            await mine.commit()
        return tries

    try:
        with caplog.at_level(logging.WARNING, logger=log.name):
            assert await until_written(write, "the tug", log) == 2
        async with engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT id, v FROM {table} ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, 11), (2, 11)]  # the other's, then ours once
        [line] = [r.getMessage() for r in caplog.records if r.name == log.name]
        assert line.startswith("the tug not written yet, it gave way to another transaction")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
        await engine.dispose()


async def test_a_write_that_is_wrong_is_not_tried_again(db_url: str) -> None:
    engine = make_engine(db_url)
    tries = 0

    async def write() -> None:
        nonlocal tries
        tries += 1
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO staff (id, name, role) VALUES (1, 'a', 'x')"))
            await conn.execute(text("INSERT INTO staff (id, name, role) VALUES (1, 'b', 'x')"))

    try:
        with pytest.raises(IntegrityError):
            await until_written(write, "two of one", log)
        assert tries == 1
    finally:
        await engine.dispose()
