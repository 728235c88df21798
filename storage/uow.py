"""The unit of work: one database transaction per use case (or per Telegram update).

Repositories hang off it and never commit. A lost optimistic-locking race (the claim's version
moved under us) or a duplicate audit version surfaces as the domain's ``AlreadyHandled``, so
the loser of a double press gets a clear sentence, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from types import TracebackType
from typing import Self

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from storage.repositories import (
    AccountRepo,
    ChatRepo,
    ClaimRepo,
    DeliveryRepo,
    MoneyRepo,
    OrderRepo,
    OutboxRepo,
    PartyRepo,
    ShipmentRepo,
)
from workflow.errors import AlreadyHandled
from workflow.ports import UnitOfWork


def _is_audit_clash(exc: IntegrityError) -> bool:
    return "claim_events" in str(exc.orig)


class GuardedSession(Session):
    """A session whose flushes (explicit, auto or at commit) report lost races in domain terms.

    A flush fails with ``StaleDataError`` when the claim's version moved since it was loaded,
    or with a unique violation when another transaction wrote the same audit version first.
    Either way somebody else handled the claim: the caller gets ``AlreadyHandled``.
    """

    def flush(self, objects: object = None) -> None:
        try:
            super().flush(objects)  # type: ignore[arg-type]
        except StaleDataError as exc:
            raise AlreadyHandled() from exc
        except IntegrityError as exc:
            if _is_audit_clash(exc):
                raise AlreadyHandled() from exc
            raise


class WriterTurns:
    """SQLite has one writer at a time. Units of work of this process take turns on an
    asyncio lock before ``BEGIN IMMEDIATE``, instead of all but one sleeping in SQLite's busy
    handler (1–100 ms naps, in a thread each): the next in line starts the moment the
    previous one ends. Other processes still meet SQLite's own lock and busy timeout.

    A unit of work opened inside another in the same task (or a task it started) does not
    wait for itself: it goes straight to SQLite, as before.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._held: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"writer-turn-{id(self)}", default=False
        )

    async def take(self) -> contextvars.Token[bool] | None:
        if self._held.get():
            return None
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        await lock.acquire()
        return self._held.set(True)

    def give_back(self, token: contextvars.Token[bool] | None) -> None:
        if token is None:
            return
        self._held.reset(token)
        self._locks[asyncio.get_running_loop()].release()


class SqlUnitOfWork:
    parties: PartyRepo
    orders: OrderRepo
    claims: ClaimRepo
    money: MoneyRepo
    shipments: ShipmentRepo
    outbox: OutboxRepo
    accounts: AccountRepo
    chat: ChatRepo
    delivery: DeliveryRepo

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], turns: WriterTurns | None = None
    ) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._turns = turns
        self._turn: contextvars.Token[bool] | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        if self._turns is not None:
            self._turn = await self._turns.take()
        self._session = session = self._sessions()
        self.parties = PartyRepo(session)
        self.orders = OrderRepo(session)
        self.claims = ClaimRepo(session)
        self.money = MoneyRepo(session)
        self.shipments = ShipmentRepo(session)
        self.outbox = OutboxRepo(session)
        self.accounts = AccountRepo(session)
        self.chat = ChatRepo(session)
        self.delivery = DeliveryRepo(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing ends the database transaction (anything uncommitted is rolled back) and keeps
        # loaded rows readable, detached, for the caller to render after the unit of work.
        try:
            await self.session.close()
        finally:
            if self._turns is not None:
                self._turns.give_back(self._turn)
                self._turn = None
        self._session = None

    async def commit(self) -> None:
        try:
            await self.session.commit()
        except AlreadyHandled:
            await self.rollback()
            raise

    async def rollback(self) -> None:
        await self.session.rollback()
        self.chat.forget()


class UnitOfWorkFactory:
    """Makes a fresh unit of work per use case over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(
            engine, expire_on_commit=False, sync_session_class=GuardedSession
        )
        self.turns = WriterTurns() if engine.dialect.name == "sqlite" else None

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions, self.turns)


def _satisfies_the_port(uow: SqlUnitOfWork) -> UnitOfWork:
    """Never called: makes mypy prove the SQL unit of work implements the domain's port."""
    return uow
