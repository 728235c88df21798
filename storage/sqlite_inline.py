"""SQLite for the async engine without a thread hop per call.

aiosqlite runs every call of a connection (cursor, execute, fetchall, close: four per
statement) on the connection's own thread and hands the result back through a queue and the
event loop's self-pipe. Our statements take microseconds (WAL, pages in memory), so the hand-
offs cost more than the work: they were most of the bot's database time per update.

This DB-API module is given to SQLAlchemy's aiosqlite dialect (``module=``) and runs SQLite
on the event loop's thread, except what can wait on something outside this process: opening
a connection and its pragmas, ``BEGIN IMMEDIATE`` when the write lock is taken (another
process, or another connection of this one, holds it: SQLite's busy timeout then waits up to
30 s; a free lock is taken here at once) and ``COMMIT`` (a WAL checkpoint writes and syncs
the file). Those go to a worker thread and are awaited, as are statements executed with
:data:`OFF_LOOP` (long aggregates). Inside a write
transaction no statement waits for a lock: in WAL mode readers never block the writer, and
this connection already holds the write lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_module
from sqlalchemy.engine import AdaptedConnection, Engine
from sqlalchemy.util.concurrency import await_only

# Statements that may wait on another process run on a worker thread: taking the write lock,
# committing, and the connection's set-up pragmas (switching to WAL takes a lock).
_WAITING = ("BEGIN", "COMMIT", "PRAGMA")


def _waits(operation: str) -> bool:
    return operation.lstrip()[:6].upper().startswith(_WAITING)


def _begins(operation: str) -> bool:
    return operation.lstrip()[:5].upper() == "BEGIN"


async def _at_once(run: Callable[[], None]) -> None:
    """Runs ``run`` on this thread without yielding to the loop: SQLAlchemy's async API
    wants every statement awaited, and this is the cheapest await there is."""
    run()


class InlineCursor:
    """A DB-API cursor as the aiosqlite dialect's: the statement runs at once, its rows are
    read in full and the sqlite3 cursor is closed (no statement stays open in SQLite)."""

    __slots__ = (
        "_connection",
        "_rows",
        "arraysize",
        "description",
        "lastrowid",
        "off_loop",
        "rowcount",
    )

    server_side = False

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.arraysize = 1
        self.description: Any = None
        self.lastrowid: int | None = -1
        self.rowcount = -1
        self._rows: deque[Any] = deque()
        self.off_loop = False  # set per statement by the engine's listener (see install)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> None:
        args = (operation,) if parameters is None else (operation, parameters)
        self._run(operation, lambda cursor: cursor.execute(*args), fetch=True)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._run(operation, lambda cursor: cursor.executemany(operation, seq_of_parameters))

    def _run(
        self, operation: str, call: Callable[[sqlite3.Cursor], object], fetch: bool = False
    ) -> None:
        def run() -> None:
            cursor = self._connection.cursor()
            try:
                call(cursor)
                self.description = cursor.description if fetch else None
                if self.description:
                    self.lastrowid = self.rowcount = -1
                    self._rows = deque(cursor.fetchall())
                else:
                    self.lastrowid, self.rowcount = cursor.lastrowid, cursor.rowcount
            finally:
                cursor.close()

        if self.off_loop:
            await_only(asyncio.to_thread(run))
        elif _begins(operation):
            self._begin(run)
        elif _waits(operation):
            await_only(asyncio.to_thread(run))
        else:
            await_only(_at_once(run))

    def _begin(self, run: Callable[[], None]) -> None:
        """Take the write lock on this thread when it is free (nearly always: this process's
        units of work take turns before they begin); wait on a worker thread only when another
        process holds it. A thread hop costs more CPU than all of an update's statements.

        The attempt here must not wait, so the busy timeout is 0 for it, and restored after."""
        connection = self._connection
        (timeout_ms,) = connection.execute("PRAGMA busy_timeout").fetchone()
        connection.execute("PRAGMA busy_timeout=0")
        try:
            await_only(_at_once(run))
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        finally:
            connection.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")
        await_only(asyncio.to_thread(run))

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass

    async def _async_soft_close(self) -> None:
        """Asked for by SQLAlchemy's async results; the rows are already read."""

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def close(self) -> None:
        self._rows.clear()


class InlineConnection(AdaptedConnection):
    """What the aiosqlite dialect expects of a connection, over a plain sqlite3 one."""

    __slots__ = ("_sqlite", "dbapi")

    def __init__(self, dbapi: InlineDbapi, connection: sqlite3.Connection) -> None:
        self.dbapi = dbapi
        self._sqlite = connection
        self._connection = cast(Any, connection)  # the driver connection SQLAlchemy hands out

    @property
    def isolation_level(self) -> str | None:
        return self._sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._sqlite.isolation_level = cast(Any, value)  # None: we issue BEGIN ourselves

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._sqlite.create_function(*args, **kw)

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self._sqlite)

    def execute(self, *args: Any, **kw: Any) -> Any:
        return self._sqlite.execute(*args, **kw)

    def commit(self) -> None:
        await_only(asyncio.to_thread(self._sqlite.commit))

    def rollback(self) -> None:
        self._sqlite.rollback()

    def close(self) -> None:
        self._sqlite.close()

    def terminate(self) -> None:
        self._sqlite.close()


class InlineDbapi(AsyncAdapt_dbapi_module):
    """The DB-API module handed to ``create_async_engine(..., module=...)``."""

    paramstyle = "qmark"
    has_stop = False  # no thread to stop: the dialect closes connections plainly
    sqlite = sqlite3

    def __init__(self) -> None:
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kw: Any) -> InlineConnection:
        kw.pop("async_fallback", None)
        kw["check_same_thread"] = False  # BEGIN and COMMIT run on a worker thread
        connection = await_only(asyncio.to_thread(sqlite3.connect, *args, **kw))
        return InlineConnection(self, connection)


# Execution option for statements that may take long (aggregates over every claim): they run
# on a worker thread, so the bot keeps answering meanwhile. ``session.execute(stmt,
# execution_options=OFF_LOOP)``; ignored by other drivers.
OFF_LOOP = {"off_loop": True}


def install(engine: Engine) -> None:
    """Let statements executed with :data:`OFF_LOOP` reach the cursor as a flag."""

    @event.listens_for(engine, "before_cursor_execute")
    def _mark(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if isinstance(cursor, InlineCursor):
            cursor.off_loop = bool(
                context is not None and context.execution_options.get("off_loop")
            )
