"""Shared bits of the benchmarks: result files, a migrated throwaway database, order files."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import platform
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.cli import CSV_COLUMNS
from storage.engine import make_engine, sqlite_url_for
from storage.migrate import upgrade

RESULTS = Path(__file__).parent / "results"
POSTGRES_ENV = "AFTERSALES_TEST_POSTGRES_URL"


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        **data,
    }
    path = RESULTS / f"{name}-{int(time.time())}.json"
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    return path


def order_file(path: Path, rows: int, lines_per_order: int = 2) -> Path:
    """A deterministic CSV of ``rows`` order lines (``lines_per_order`` per order)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for n in range(rows):
            order_no = n // lines_per_order
            paid = start + timedelta(minutes=order_no)
            writer.writerow(
                [
                    f"SO-{order_no:07d}",
                    f"B-{order_no % 5000:05d}",
                    f"Buyer {order_no % 5000}",
                    "CNY",
                    paid.isoformat(),
                    "",
                    (paid + timedelta(days=1)).isoformat(),
                    (paid + timedelta(days=3)).isoformat(),
                    f"SKU-{n:07d}",
                    f"Item {n}",
                    "general",
                    f"C-{n % 300:03d}",
                    f"Consignor {n % 300}",
                    "1",
                    f"{100 + n % 900}.00",
                    "10.00",
                ]
            )
    return path


async def fresh_database(folder: Path, engine_kind: str) -> str:
    """A migrated empty database URL: a SQLite file, or a new PostgreSQL database."""
    if engine_kind == "sqlite":
        url = sqlite_url_for(folder / f"bench-{time.time_ns()}.db")
    else:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        admin_url = os.environ[POSTGRES_ENV]
        name = f"aftersales_bench_{time.time_ns()}"
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


async def drop_database(url: str) -> None:
    """Remove a PostgreSQL database made by ``fresh_database`` (SQLite files go with their folder)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = make_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def engines() -> list[str]:
    return ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


def free_port() -> int:
    """A TCP port free on loopback now (for a sandbox in a child process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, deadline: float) -> None:
    """Until the sandbox at ``url`` answers (its child process has started listening)."""
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/sandbox/users") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the sandbox did not start in time")
