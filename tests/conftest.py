"""Shared fixtures: real databases (SQLite always, PostgreSQL when a URL is given) and a clock.

SQLite tests get a copy of a database file migrated once per session; PostgreSQL tests share
one database migrated once per session and truncated before each test. The schema comes from
the Alembic migrations, as in production.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.engine import make_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.tables import Base
from storage.uow import UnitOfWorkFactory
from workflow.rules import ReviewPolicy
from workflow.services.common import Env
from workflow.simulated import ManualClock

POSTGRES_ENV = "AFTERSALES_TEST_POSTGRES_URL"
IN_CI = os.environ.get("CI") == "true"


def postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url and IN_CI:
        pytest.fail(
            f"{POSTGRES_ENV} must be set in CI: the storage tests run on both engines there"
        )
    return url


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(sqlite_url_for(path)))
    return path


async def _create_database(admin_url: str, name: str) -> str:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    admin_url = postgres_admin_url()
    if not admin_url:
        yield None
        return
    name = f"aftersales_test_{os.getpid()}"
    url = asyncio.run(_create_database(admin_url, name))
    asyncio.run(_migrate(url))
    yield url


async def truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_url: str | None,
) -> AsyncIterator[str]:
    """A migrated, empty database URL on each engine."""
    if request.param == "sqlite":
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copy(sqlite_template, path)
        yield sqlite_url_for(path)
        return
    if postgres_url is None:
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} to run this on PostgreSQL too")
    await truncate_all(postgres_url)
    yield postgres_url


@pytest.fixture
async def uows(db_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    engine = make_engine(db_url)
    yield UnitOfWorkFactory(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# The tests' platform also sells in yen, with a value limit for automatic approval set for
# it as an operator would (AFTERSALES_MANUAL_REVIEW_ABOVE_IN); unset, every yen claim would
# need a person (tests/workflow/test_rules.py).
YEN_LIMIT = (("JPY", 100_000),)


@pytest.fixture
def env(clock: ManualClock) -> Env:
    return Env(clock=clock, policy=ReviewPolicy(manual_review_above_in=YEN_LIMIT))
