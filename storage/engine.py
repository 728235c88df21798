"""Engines for SQLite (the default) and PostgreSQL, set up for many writers.

SQLite: WAL so readers never block the writer, ``BEGIN IMMEDIATE`` so a write transaction
takes the write lock up front (no lock-upgrade deadlocks between two read-then-write
transactions), and a busy timeout so a second process waits instead of failing.
PostgreSQL: row locks (``FOR UPDATE``, ``SKIP LOCKED`` for sweeps) in the repositories, and
``pool_pre_ping`` so a connection the server dropped (a restart, an outage) is replaced when
next checked out instead of failing the next use.

:func:`unavailable` tells an outage (the server unreachable, the connection lost, SQLite's
write lock held by another process beyond the busy timeout) from a bug: an outage passes, and
the caller says "try again in a moment" instead of reporting a failure. :func:`until_written`
writes a fact that happened outside (Telegram took a message) however long an outage lasts:
dropping it would do that outside thing a second time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import sqlite_inline

SQLITE_BUSY_TIMEOUT_S = 30

# PostgreSQL error codes of a database that cannot be used for now: class 08 (connection
# exception), class 53 (insufficient resources: too many connections, out of memory or disk),
# 57P01–57P04 (shut down by an administrator or a crash, starting up, dropped) and 55000 as
# PostgreSQL reports it on connecting to a database that does not accept connections.
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_PG_UNAVAILABLE_CODES = frozenset({"55000"})
# PostgreSQL's codes for "run the transaction again": serialization failure, deadlock.
_PG_RETRY_CODES = frozenset({"40001", "40P01"})

# A write :func:`until_written` could not make is tried again after this many seconds,
# doubled each time up to the second number.
WRITE_RETRY_S = (0.05, 5.0)

T = TypeVar("T")


def sqlite_url_for(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("module", sqlite_inline.InlineDbapi())  # on the loop's thread
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)
        sqlite_inline.install(engine.sync_engine)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database cannot be used for now rather
    than that something is wrong: the transaction did not happen, and the same work can be
    tried again in a moment."""
    return _caused(error, _passes)


def _conflict(error: BaseException) -> bool:
    """PostgreSQL chose this transaction to give way (a deadlock, or a serialization
    failure): it did not happen, and running it again is how such a conflict is resolved."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code in _PG_RETRY_CODES


def _caused(error: BaseException, test: Callable[[BaseException], bool]) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if test(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def until_written(write: Callable[[], Awaitable[T]], what: str, log: logging.Logger) -> T:
    """Run ``write`` (one whole transaction) until it is made: while the database is
    unavailable — or after PostgreSQL made it give way to another transaction — one warning
    line per try and a growing pause; any other error is raised."""
    pause = WRITE_RETRY_S[0]
    while True:
        try:
            return await write()
        except Exception as error:
            if unavailable(error):
                why = "the database is unavailable"
            elif _caused(error, _conflict):
                why = "it gave way to another transaction"
            else:
                raise
            log.warning(
                "%s not written yet, %s (%s); trying again in %ss",
                what,
                why,
                type(error).__name__,
                pause,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, WRITE_RETRY_S[1])


def _passes(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True  # the connection broke mid-use; the pool has discarded it
    if isinstance(error, exc.TimeoutError):
        return True  # every pooled connection busy past the pool's timeout
    if isinstance(error, sqlite3.OperationalError):
        # The write lock held elsewhere past the busy timeout (SQLITE_BUSY / SQLITE_LOCKED).
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return True  # the server refused, reset or did not answer; its name did not resolve
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(code, str) and (
        code.startswith(_PG_UNAVAILABLE_CLASSES) or code in _PG_UNAVAILABLE_CODES
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
