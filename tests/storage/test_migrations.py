"""Alembic is the only way the schema is made, and it matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from storage.engine import make_engine
from storage.migrate import current, downgrade, upgrade
from storage.tables import Base, Evidence
from storage.uow import UnitOfWorkFactory
from tests import factories
from workflow.services.common import Env


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)

    def diff(conn: Connection) -> list[object]:
        return compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await current(engine) is not None
    await engine.dispose()


async def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    await downgrade(engine, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await upgrade(engine)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert set(Base.metadata.tables) <= set(tables)
    await engine.dispose()


async def test_sqlite_runs_in_wal_mode(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        return
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
    await engine.dispose()
    assert mode == "wal"


async def test_evidence_stored_before_kinds_were_noted_gets_its_kind(
    db_url: str, uows: UnitOfWorkFactory, env: Env
) -> None:
    """0009: a reference stored as a bare Bot API file id is given the kind Telegram's file id
    layout says (document ids start with type byte 5); downgrading takes the kinds off."""
    [placed] = await factories.place(
        uows, env.clock.now(), factories.order("EV-1", env.clock.now())
    )
    claim = await factories.no_reason_return(uows, env, placed)
    noted = ("photo:AgACAgIAAxkBAAIBY2Zx", "document:BQACAgIAAxkBAAIBZGZx", "photo:?")
    async with uows() as uow:
        await uow.claims.add_evidence(claim.id, noted, env.clock.now())
        await uow.commit()

    async def refs() -> list[str]:
        async with uows() as uow:
            rows = await uow.session.scalars(select(Evidence.ref).order_by(Evidence.id))
            return list(rows)

    await downgrade(uows.engine, "0008")
    assert await refs() == ["AgACAgIAAxkBAAIBY2Zx", "BQACAgIAAxkBAAIBZGZx", "?"]
    await upgrade(uows.engine)
    assert await refs() == list(noted)
