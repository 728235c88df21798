"""Alembic is the only way the schema is made, and it matches the models exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from storage.engine import make_engine
from storage.migrate import current, downgrade, upgrade
from storage.tables import Base, Evidence, OrderEvent
from storage.uow import UnitOfWorkFactory
from tests import factories
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import run_overdue_orders


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


async def test_orders_flagged_overdue_before_0011_get_their_audit_row(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    """0011: an order the sweep flagged before order events were recorded gets its row from
    ``overdue_flagged_at``, saying whether a claim was opened or offered; downgrading drops
    the table, the flags stay."""
    now = clock.now()
    [opened] = await factories.place(uows, now, factories.order("MG-1", now, delivered=False))
    clock.advance(timedelta(days=2))
    assert await run_overdue_orders(uows, env) == 1
    [offered] = await factories.place(
        uows, clock.now(), factories.order("MG-2", clock.now(), buyer="B2", delivered=False)
    )
    clock.advance(timedelta(days=2))
    offering = replace(env, policy=replace(env.policy, overdue_opens_claim=False))
    assert await run_overdue_orders(uows, offering) == 1

    async def rows() -> list[tuple[int, str, str, str | None, object]]:
        async with uows() as uow:
            got = await uow.session.scalars(select(OrderEvent).order_by(OrderEvent.order_id))
            return [(e.order_id, e.kind, e.actor, e.outcome, e.at) for e in got]

    recorded = await rows()
    assert recorded == [
        (opened.order_id, "flagged_overdue", "system", "claim_opened", now + timedelta(days=2)),
        (offered.order_id, "flagged_overdue", "system", "claim_offered", now + timedelta(days=4)),
    ]
    await downgrade(uows.engine, "0010")
    async with uows.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert "order_events" not in tables
    await upgrade(uows.engine)
    assert await rows() == recorded
    async with uows() as uow:
        notes = set(await uow.session.scalars(select(OrderEvent.note)))
    assert notes == {"recorded by migration 0011 from orders.overdue_flagged_at"}
