"""SQLite on the event loop's thread, but never waiting there for another process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from storage import sqlite_inline
from storage.engine import SQLITE_BUSY_TIMEOUT_S, make_engine, sqlite_url_for


def _with_thread_function(engine: Any) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _register(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("thread_id", 0, threading.get_ident)


async def test_statements_run_on_the_loop_thread_and_marked_ones_on_a_worker(
    tmp_path: Path,
) -> None:
    engine = make_engine(sqlite_url_for(tmp_path / "inline.db"))
    _with_thread_function(engine)
    loop_thread = threading.get_ident()
    async with engine.begin() as conn:
        inline = (await conn.execute(text("SELECT thread_id()"))).scalar_one()
        off_loop = (
            await conn.execute(text("SELECT thread_id()"), execution_options=sqlite_inline.OFF_LOOP)
        ).scalar_one()
        again = (await conn.execute(text("SELECT thread_id()"))).scalar_one()
    await engine.dispose()
    assert inline == again == loop_thread
    assert off_loop != loop_thread


async def test_rows_counts_and_errors_come_through_as_with_any_driver(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url_for(tmp_path / "inline.db"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        inserted = await conn.execute(
            text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}, {"n": "c"}]
        )
        assert inserted.rowcount == 3
        one = await conn.execute(text("INSERT INTO t (name) VALUES ('d')"))
        assert one.lastrowid == 4
        returned = await conn.execute(text("INSERT INTO t (name) VALUES ('e') RETURNING id"))
        assert returned.scalar_one() == 5
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 3"))
        assert updated.rowcount == 2
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c"), (4, "d!"), (5, "e!")]
        partial = await conn.execute(text("SELECT id FROM t ORDER BY id"))
        assert partial.fetchmany(2) == [(1,), (2,)] and partial.fetchone() == (3,)
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
    await engine.dispose()
    assert count == 5


async def test_waiting_for_another_process_write_lock_leaves_the_loop_free(
    tmp_path: Path,
) -> None:
    """Another connection (as another process would) holds the write lock. Our transaction's
    BEGIN IMMEDIATE waits for it on a worker thread: meanwhile the loop runs the task that
    releases the lock. Were BEGIN run on the loop's thread, that task could not run until the
    busy timeout failed the transaction."""
    path = tmp_path / "locked.db"
    engine = create_async_engine(
        sqlite_url_for(path), module=sqlite_inline.InlineDbapi(), connect_args={"timeout": 5}
    )
    sqlite_inline.install(engine.sync_engine)

    @event.listens_for(engine.sync_engine, "connect")
    def _setup(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    beginning = asyncio.Event()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            beginning.set()

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    beginning.clear()
    events: list[str] = []

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
        events.append("written")

    writer = asyncio.create_task(write())
    await beginning.wait()  # the writer is taking the lock (or, run inline, blocking the loop)
    events.append("released")
    other.execute("COMMIT")
    other.close()
    await writer
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    await engine.dispose()
    assert events == ["released", "written"]
    async with engine.connect() as conn:  # the attempt on the loop's thread left no trace
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() == 5000


async def test_a_free_write_lock_is_taken_on_the_loop_thread(tmp_path: Path) -> None:
    """Nobody holds the lock: BEGIN IMMEDIATE runs where the statements run, no thread hop;
    the busy timeout is the configured one afterwards."""
    engine = make_engine(sqlite_url_for(tmp_path / "free.db"))
    traced: list[tuple[str, int]] = []

    @event.listens_for(engine.sync_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.set_trace_callback(
            lambda statement: traced.append((statement, threading.get_ident()))
        )

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
    await engine.dispose()
    begins = [thread for statement, thread in traced if statement == "BEGIN IMMEDIATE"]
    assert begins == [threading.get_ident()] * 2
    assert timeout == SQLITE_BUSY_TIMEOUT_S * 1000
