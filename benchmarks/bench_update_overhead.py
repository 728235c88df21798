"""What every Telegram update pays the database before its own logic runs, and how much of
that is SQLAlchemy: CPU per unit of work, three ways, in one run.

.venv/bin/python -m benchmarks.bench_update_overhead [--units 3000] [--rounds 3]

- ``empty``: a unit of work that begins and commits (session, connection, BEGIN, COMMIT).
- ``per_update``: the same plus the five statements the engine runs for every update — the
  update recorded as handled, the chat user's upsert, their bindings, their dialog read and
  written — through the repositories, as the bot runs them.
- ``raw_driver`` (SQLite only): the same five statements on the unit of work's own sqlite3
  connection, past SQLAlchemy's execution (the floor an update's statements could reach).

Variants alternate (A, B, C, A, B, C, …) so a burst of other work on the machine hits each
alike; each variant's number is the median of its rounds. The claim-filing benchmark
(``bench_bot_filing``) measures whole updates; this one says how much of them is fixed
database cost, for deciding where the next millisecond comes from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import drop_database, engines, fresh_database, write_result
from storage.engine import make_engine
from storage.uow import SqlUnitOfWork, UnitOfWorkFactory

CHANNEL = "telegram"
USER = 7

_RAW = (
    "INSERT INTO processed_updates (channel, update_id, processed_at) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING",
    "INSERT INTO chat_users (channel, external_id, first_name, language, unreachable,"
    " updated_at) VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (channel, external_id) DO UPDATE SET"
    " first_name = excluded.first_name, unreachable = 0, updated_at = excluded.updated_at"
    " RETURNING language",
    "SELECT party_kind, party_id FROM identities WHERE channel = ? AND external_id = ? ORDER BY id",
    "SELECT flow, step, data FROM conversations WHERE channel = ? AND external_id = ?",
    "UPDATE conversations SET flow = ?, step = ?, data = ?, updated_at = ?"
    " WHERE channel = ? AND external_id = ?",
)

Unit = Callable[[SqlUnitOfWork, int], Awaitable[None]]


async def _empty(uow: SqlUnitOfWork, n: int) -> None:
    await uow.session.connection()


async def _per_update(uow: SqlUnitOfWork, n: int) -> None:
    now = datetime.now(UTC)
    await uow.chat.seen_update(CHANNEL, n, now)
    await uow.chat.touch_user(CHANNEL, USER, "Ann", now, "en")
    await uow.accounts.bindings(CHANNEL, USER)
    await uow.chat.conversation(CHANNEL, USER)
    await uow.chat.save_conversation(
        CHANNEL, USER, "file_claim", "lines", {"order": n, "lines": {}}, now
    )


async def _raw_driver(uow: SqlUnitOfWork, n: int) -> None:
    connection = await uow.session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    now = datetime.now(UTC).isoformat(sep=" ")
    seen, touch, bindings, read, write = _RAW
    raw.execute(seen, (CHANNEL, n, now))
    raw.execute(touch, (CHANNEL, USER, "Ann", "en", now)).fetchone()
    raw.execute(bindings, (CHANNEL, USER)).fetchall()
    raw.execute(read, (CHANNEL, USER)).fetchone()
    data = json.dumps({"order": n, "lines": {}})
    raw.execute(write, ("file_claim", "lines", data, now, CHANNEL, USER))


async def _cpu_per_unit(uows: UnitOfWorkFactory, unit: Unit, first: int, count: int) -> float:
    started = time.process_time()
    for n in range(first, first + count):
        async with uows() as uow:
            await unit(uow, n)
            await uow.commit()
    return (time.process_time() - started) / count * 1e6


async def measure_engine(url: str, units: int, rounds: int) -> dict[str, object]:
    engine = make_engine(url)
    uows = UnitOfWorkFactory(engine)
    async with uows() as uow:  # the user and their dialog exist, as mid-dialog
        now = datetime.now(UTC)
        await uow.chat.touch_user(CHANNEL, USER, "Ann", now, "en")
        await uow.chat.save_conversation(CHANNEL, USER, "file_claim", "order", {"page": 0}, now)
        await uow.commit()
    variants: dict[str, Unit] = {"empty": _empty, "per_update": _per_update}
    if engine.dialect.name == "sqlite":
        variants["raw_driver"] = _raw_driver
    samples: dict[str, list[float]] = {name: [] for name in variants}
    next_id = 1
    for unit in variants.values():  # warm up: caches, prepared statements, pages
        await _cpu_per_unit(uows, unit, next_id, 200)
        next_id += 200
    for _ in range(rounds):
        for name, unit in variants.items():
            samples[name].append(await _cpu_per_unit(uows, unit, next_id, units))
            next_id += units
    await engine.dispose()
    median = {name: statistics.median(values) for name, values in samples.items()}
    out: dict[str, object] = {f"{name}_cpu_us": round(value, 1) for name, value in median.items()}
    out["samples_cpu_us"] = {k: [round(v, 1) for v in vs] for k, vs in samples.items()}
    out["statements_cpu_us"] = round(median["per_update"] - median["empty"], 1)
    if "raw_driver" in median:
        out["raw_statements_cpu_us"] = round(median["raw_driver"] - median["empty"], 1)
        out["sqlalchemy_share_of_statements"] = round(
            1 - (median["raw_driver"] - median["empty"]) / (median["per_update"] - median["empty"]),
            3,
        )
    return out


async def measure(units: int, rounds: int) -> dict[str, object]:
    out: dict[str, object] = {"units_per_round": units, "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in engines():
            url = await fresh_database(Path(tmp), kind)
            try:
                out[kind] = await measure_engine(url, units, rounds)
            finally:
                if kind == "postgres":
                    await drop_database(url)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=3000, help="units of work per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.units, args.rounds))
    write_result("update_overhead", result)
    for kind in engines():
        numbers = result[kind]
        assert isinstance(numbers, dict)
        print(
            f"{kind}: empty unit of work {numbers['empty_cpu_us']} µs CPU, with the five"
            f" per-update statements {numbers['per_update_cpu_us']} µs"
            + (
                f", the same statements on the raw driver {numbers['raw_driver_cpu_us']} µs"
                f" (SQLAlchemy's share of the statements' cost:"
                f" {numbers['sqlalchemy_share_of_statements']:.0%})"
                if "raw_driver_cpu_us" in numbers
                else ""
            )
        )


if __name__ == "__main__":
    main()
