"""The unit of work: one database transaction per use case (or per Telegram update).

Repositories hang off it and never commit. A lost optimistic-locking race (the claim's version
moved under us) or a duplicate audit version surfaces as the domain's ``AlreadyHandled``, so
the loser of a double press gets a clear sentence, never a stack trace.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage.repositories import (
    ClaimRepo,
    MoneyRepo,
    OrderRepo,
    OutboxRepo,
    PartyRepo,
    ShipmentRepo,
)
from workflow.errors import AlreadyHandled


class SqlUnitOfWork:
    parties: PartyRepo
    orders: OrderRepo
    claims: ClaimRepo
    money: MoneyRepo
    shipments: ShipmentRepo
    outbox: OutboxRepo

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        self._session = session = self._sessions()
        self.parties = PartyRepo(session)
        self.orders = OrderRepo(session)
        self.claims = ClaimRepo(session)
        self.money = MoneyRepo(session)
        self.shipments = ShipmentRepo(session)
        self.outbox = OutboxRepo(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing ends the database transaction (anything uncommitted is rolled back) and keeps
        # loaded rows readable, detached, for the caller to render after the unit of work.
        await self.session.close()
        self._session = None

    async def commit(self) -> None:
        try:
            await self.session.commit()
        except StaleDataError as exc:
            await self.session.rollback()
            raise AlreadyHandled() from exc
        except IntegrityError as exc:
            await self.session.rollback()
            if "claim_events" in str(exc.orig) or "uq_claim_events" in str(exc.orig):
                raise AlreadyHandled() from exc
            raise

    async def rollback(self) -> None:
        await self.session.rollback()


class UnitOfWorkFactory:
    """Makes a fresh unit of work per use case over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions)
