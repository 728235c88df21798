"""Does a sweep's cost follow the due work or the size of the database? (goal: ratio <= 2)

The same due work — 1,000 submitted claims due for auto review and 200 orders not shipped by
their deadline — once among 10,000 orders and once among 1,000,000 orders. The sweep
(``run_all``'s sequence: ``run_overdue_orders``, then ``run_sweep`` for every entry of
``SWEEPS``) is timed on each database; the result is the ratio of the two sweep times,
large / small. A sweep that finds its work through the deadline indexes and touches rows by
key costs the same either way; one that scans orders, items or claims grows with the database.

Set-up (one child process per database, bulk Core ``executemany`` inserts with explicit ids,
not the import path, so a million orders take about a minute): one line and one item per
order, one buyer per five orders, 300 consignors. The due work is the same rows in both
databases: orders ``0 .. claims-1`` were delivered two days ago and each has one open claim
due now (one per buyer, so the rules decide alike: the no-reason return is approved), the
next ``overdue`` orders are pending past their ``ship_by``. Every other order is not due:
99% delivered long ago (1 in 50 of them with a closed claim), 0.5% pending with ``ship_by``
still ahead, 0.5% pending, overdue and already flagged (the sweep acted on them before),
0.5% with a claim waiting for the buyer's return parcel (its deadlines ahead). PostgreSQL
databases are ``ANALYZE``d after set-up (autovacuum would do it soon after a bulk load);
SQLite ones are not, as the application never runs ``ANALYZE``.

Measurement: every run sweeps a fresh copy of the set-up database (a file copy, or
``CREATE DATABASE … TEMPLATE``) in a fresh child process. Runs alternate small, large, small,
… (``--repeat`` each), so that a burst of other work on the machine hits both sizes alike;
the ratio is that of the fastest runs (noise only adds time); the medians' ratio and the
ratio of the sweeping process's CPU time are reported too. Before sweeping, each sweep's
due query (``OrderRepo.overdue``, ``ClaimRepo.due``) is timed alone (median of 20) and its
plan recorded (``EXPLAIN QUERY PLAN``; ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL).
``--statements`` also times every SQL statement of the sweep (grouped by text; top ones
printed), at some cost in overhead.

    .venv/bin/python -m benchmarks.bench_sweep_scale [--small 10000] [--large 1000000]
        [--claims 1000] [--overdue 200] [--repeat 3] [--engine sqlite|postgres] [--statements]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.common import (
    POSTGRES_ENV,
    drop_database,
    engines,
    fresh_database,
    write_result,
)
from storage import tables as t
from storage.engine import make_engine, sqlite_url_for
from storage.uow import UnitOfWorkFactory
from workflow.lifecycle import INITIAL
from workflow.services.common import Env
from workflow.services.filing import FILE_TRIGGER
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, Sweep, run_overdue_orders, run_sweep

T = TypeVar("T")
NOW = datetime(2027, 6, 1, 9, tzinfo=UTC)  # the sweep's clock
HISTORY = timedelta(days=720)  # the not-due orders were paid over the two years before NOW
CONSIGNORS = 300
ORDERS_PER_BUYER = 5
CHUNK = 20_000  # orders per set-up transaction
BATCH = 200  # the sweeps' batch size (run_all's default)
PROBES = 20
RETURNING = "awaiting_return"


# ---- set-up ----------------------------------------------------------------------------


def _kind(n: int, claims: int, overdue: int) -> str:
    if n < claims:
        return "claimed"
    if n < claims + overdue:
        return "overdue"
    m = n % 200
    if m == 0:
        return "recent"
    if m == 1:
        return "flagged"
    if m == 2:
        return "returning"
    return "history_claim" if n % 50 == 3 else "delivered"


def _order(n: int, orders: int, buyers: int, kind: str) -> dict[str, Any]:
    if kind == "claimed":
        paid = NOW - timedelta(days=6)
    elif kind == "overdue":
        paid = NOW - timedelta(days=5, minutes=n % 600)
    elif kind == "recent":
        paid = NOW - timedelta(hours=1)
    else:
        paid = NOW - HISTORY + HISTORY * n / orders - timedelta(days=4)
    ship_by = paid + timedelta(days=2)
    pending = kind in ("overdue", "recent", "flagged")
    return {
        "id": n + 1,
        "external_ref": f"SO-{n:08d}",
        "buyer_id": n % buyers + 1,
        "currency": "CNY",
        "paid_amount": _price(n) + 1000,
        "refunded_amount": 0,
        "shipping_state": "pending" if pending else "delivered",
        "paid_at": paid,
        "ship_by": ship_by,
        "shipped_at": None if pending else paid + timedelta(days=1),
        "delivered_at": None if pending else paid + timedelta(days=4),
        "overdue_flagged_at": ship_by + timedelta(hours=1) if kind == "flagged" else None,
    }


def _price(n: int) -> int:
    return 10_000 + (n % 900) * 100  # 100.00 .. 999.00: below the manual-review threshold


def _claim(claim_id: int, n: int, buyers: int, status: str, at: datetime) -> dict[str, Any]:
    """A claim on order ``n``: submitted and due for review at ``at``, waiting for the buyer's
    return parcel (its deadlines ahead), or closed."""
    due = {"review_due_at": None, "return_by": None, "remind_due_at": None, "closed_at": None}
    if status == INITIAL:
        due["review_due_at"] = at
    elif status == RETURNING:
        due["return_by"] = NOW + timedelta(days=5)
        due["remind_due_at"] = NOW + timedelta(days=2)
    else:
        due["closed_at"] = at + timedelta(days=9)
    return {
        "id": claim_id,
        "version": 1 if status == INITIAL else 3,
        "status": status,
        "buyer_id": n % buyers + 1,
        "claim_type": "return_refund",
        "reason": "no_reason_7_days",
        "source": "buyer",
        "description": "",
        "currency": "CNY",
        "claimed_amount": _price(n),
        "created_at": at,
        "updated_at": at,
        **due,
    }


async def _insert(conn: AsyncConnection, model: type[t.Base], rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(model), rows)


async def _populate(engine: AsyncEngine, orders: int, claims: int, overdue: int) -> int:
    """Write the orders (with buyers, consignors, items, lines) and the claims; returns the
    number of claims written (due, waiting for a return parcel, closed)."""
    buyers = max(claims, orders // ORDERS_PER_BUYER)
    async with engine.begin() as conn:
        await _insert(
            conn,
            t.Consignor,
            [
                {"id": c + 1, "external_ref": f"C-{c:03d}", "name": f"Consignor {c}"}
                for c in range(CONSIGNORS)
            ],
        )
        for start in range(0, buyers, CHUNK * 5):
            await _insert(
                conn,
                t.Buyer,
                [
                    {"id": b + 1, "external_ref": f"B-{b:07d}", "name": f"Buyer {b}"}
                    for b in range(start, min(buyers, start + CHUNK * 5))
                ],
            )
    claim_id = 0
    for start in range(0, orders, CHUNK):
        numbers = range(start, min(orders, start + CHUNK))
        kinds = [_kind(n, claims, overdue) for n in numbers]
        order_rows = [_order(n, orders, buyers, k) for n, k in zip(numbers, kinds, strict=True)]
        claim_rows: list[dict[str, Any]] = []
        claim_lines: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for n, kind, order in zip(numbers, kinds, order_rows, strict=True):
            if kind not in ("claimed", "history_claim", "returning"):
                continue
            claim_id += 1
            if kind == "claimed":
                claim_rows.append(_claim(claim_id, n, buyers, INITIAL, NOW))
                events.append(
                    {
                        "claim_id": claim_id,
                        "version": 1,
                        "from_status": "",
                        "to_status": INITIAL,
                        "trigger": FILE_TRIGGER,
                        "actor": "buyer",
                        "at": NOW,
                    }
                )
            elif kind == "returning":
                claim_rows.append(_claim(claim_id, n, buyers, RETURNING, NOW - timedelta(days=2)))
            else:
                at = order["delivered_at"] + timedelta(days=2)
                claim_rows.append(_claim(claim_id, n, buyers, "closed", at))
            claim_lines.append(
                {
                    "claim_id": claim_id,
                    "order_line_id": n + 1,
                    "quantity": 1,
                    "amount": _price(n),
                }
            )
        async with engine.begin() as conn:
            await _insert(
                conn,
                t.Item,
                [
                    {
                        "id": n + 1,
                        "consignor_id": n % CONSIGNORS + 1,
                        "sku": f"SKU-{n:08d}",
                        "title": f"Item {n}",
                        "category": "general",
                        "status": "sold",
                        "quantity_on_hand": 0,
                        "damaged_quantity": 0,
                    }
                    for n in numbers
                ],
            )
            await _insert(conn, t.Order, order_rows)
            await _insert(
                conn,
                t.OrderLine,
                [
                    {
                        "id": n + 1,
                        "order_id": n + 1,
                        "item_id": n + 1,
                        "quantity": 1,
                        "unit_price": _price(n),
                        "commission": _price(n) // 10,
                    }
                    for n in numbers
                ],
            )
            await _insert(conn, t.Claim, claim_rows)
            await _insert(conn, t.ClaimLine, claim_lines)
            await _insert(conn, t.ClaimEvent, events)
    return claim_id


async def _finish(engine: AsyncEngine) -> None:
    """PostgreSQL: move the id sequences past the explicit ids, and gather statistics."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.begin() as conn:
        for table in ("consignors", "buyers", "items", "orders", "order_lines", "claims"):
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text("ANALYZE"))


async def _setup(folder: Path, kind: str, orders: int, claims: int, overdue: int) -> dict[str, Any]:
    started = time.perf_counter()
    url = await fresh_database(folder, kind)
    engine = make_engine(url)
    try:
        written = await _populate(engine, orders, claims, overdue)
        await _finish(engine)
    finally:
        await engine.dispose()
    return {"url": url, "claims_written": written, "setup_s": time.perf_counter() - started}


def setup(folder: str, kind: str, orders: int, claims: int, overdue: int) -> dict[str, Any]:
    """Runs in a child process: a migrated database with ``orders`` orders and the due work."""
    return asyncio.run(_setup(Path(folder), kind, orders, claims, overdue))


# ---- measurement -------------------------------------------------------------------------


class _Statements:
    """Time of every SQL statement, grouped by its text (on the engine's sync events)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.totals: dict[str, list[float]] = {}
        self.last: tuple[str, Any] | None = None
        self.recording = False
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.last = (statement, params)
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self.recording:
            spent = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
            entry = self.totals.setdefault(" ".join(statement.split()), [0, 0.0])
            entry[0] += 1
            entry[1] += spent

    def top(self, n: int = 10) -> list[dict[str, Any]]:
        rows = sorted(self.totals.items(), key=lambda kv: kv[1][1], reverse=True)[:n]
        return [
            {
                "sql": sql[:160],
                "count": int(c),
                "total_s": round(s, 3),
                "mean_ms": round(s / c * 1000, 3),
            }
            for sql, (c, s) in rows
        ]


async def _explain(engine: AsyncEngine, statement: str, params: Any) -> list[str]:
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + statement, params)
        rows = result.all()
        await conn.rollback()
    if postgres:
        return [r[0] for r in rows]
    return [f"{r[1]}>{r[0]} {r[-1]}" for r in rows]  # parent>id detail


async def _probe(
    uows: UnitOfWorkFactory, statements: _Statements, query: Callable[[Any], Any]
) -> dict[str, Any]:
    """Median time of one due query (in a unit of work that is rolled back), and its plan."""
    seconds = []
    found = 0
    for _ in range(PROBES):
        async with uows() as uow:
            started = time.perf_counter()
            found = len(await query(uow))
            seconds.append(time.perf_counter() - started)
    assert statements.last is not None
    statement, params = statements.last
    plan = await _explain(uows.engine, statement, params)
    return {"ms": round(statistics.median(seconds) * 1000, 3), "rows": found, "plan": plan}


def _due_query(each: Sweep) -> Callable[[Any], Any]:
    return lambda uow: uow.claims.due(each.deadline, NOW, each.states, BATCH)


async def _probes(uows: UnitOfWorkFactory, statements: _Statements) -> dict[str, Any]:
    """Every sweep's query for due work (the first batch): the overdue orders, then the
    claims due for each claim sweep."""
    out = {
        "overdue_shipment": await _probe(uows, statements, lambda u: u.orders.overdue(NOW, BATCH))
    }
    for each in SWEEPS:
        out[each.name] = await _probe(uows, statements, _due_query(each))
    return out


async def _counts(uows: UnitOfWorkFactory) -> dict[str, int]:
    async with uows() as uow:
        s = uow.session
        return {
            "orders": int(
                (await s.execute(select(func.count()).select_from(t.Order))).scalar_one()
            ),
            "claims": int(
                (await s.execute(select(func.count()).select_from(t.Claim))).scalar_one()
            ),
        }


async def sweep(url: str, record_statements: bool) -> dict[str, Any]:
    engine = make_engine(url)
    uows = UnitOfWorkFactory(engine)
    env = Env(clock=ManualClock(NOW))
    statements = _Statements(engine)
    out: dict[str, Any] = await _counts(uows)  # also connects and warms the pool
    out["due_queries"] = await _probes(uows, statements)
    statements.recording = record_statements
    # run_all's order: the overdue-shipment sweep (it files claims), then every claim sweep.
    phases: dict[str, float] = {}
    moved: dict[str, int] = {}
    started, cpu = time.perf_counter(), time.process_time()
    mark = started
    moved["overdue_shipment"] = await run_overdue_orders(uows, env, BATCH)
    phases["overdue_shipment"] = time.perf_counter() - mark
    for each in SWEEPS:
        mark = time.perf_counter()
        moved[each.name] = await run_sweep(uows, env, each, BATCH)
        phases[each.name] = time.perf_counter() - mark
    out["sweep_s"] = time.perf_counter() - started
    out["sweep_cpu_s"] = round(time.process_time() - cpu, 3)
    statements.recording = False
    out["phase_s"] = {k: round(v, 3) for k, v in phases.items()}
    out["moved"] = moved
    if record_statements:
        out["statements"] = statements.top()
    await engine.dispose()
    return out


def measured_sweep(url: str, record_statements: bool) -> dict[str, Any]:
    """Runs in a fresh child process: nothing from the set-up is cached in it."""
    return asyncio.run(sweep(url, record_statements))


def _in_child(fn: Callable[..., T], *args: object) -> T:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _copy(url: str, folder: Path, name: str) -> str:
    """A fresh copy of a set-up database (the sweep changes it; each run gets its own)."""
    if make_url(url).get_backend_name() == "sqlite":
        target = folder / f"{name}.db"
        shutil.copyfile(str(make_url(url).database), target)
        return sqlite_url_for(target)
    copy = f"{make_url(url).database}_{name}"
    asyncio.run(_create_from_template(copy, str(make_url(url).database)))
    return make_url(url).set(database=copy).render_as_string(hide_password=False)


async def _create_from_template(name: str, template: str) -> None:
    admin = make_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        await admin.dispose()


def _discard(url: str) -> None:
    if make_url(url).get_backend_name() == "sqlite":
        Path(str(make_url(url).database)).unlink(missing_ok=True)
    else:
        asyncio.run(drop_database(url))


def _plan_lines(kind: str, plan: list[str]) -> list[str]:
    """SQLite's plan whole; of PostgreSQL's, the lines that say how rows are found."""
    if kind == "sqlite":
        return plan
    keys = ("Scan", "Sort Key", "Rows Removed", "Index Cond", "Execution Time")
    return [line for line in plan if any(k in line for k in keys)]


def _print_run(kind: str, size: str, run: dict[str, Any]) -> None:
    queries = run["due_queries"]
    print(
        f"{kind} {size} run {run['run']}: {run['orders']:,} orders, {run['claims']:,} claims; "
        f"sweep {run['sweep_s']:.2f} s (this process's CPU {run['sweep_cpu_s']:.2f} s); "
        f"phases {run['phase_s']}; moved {run['moved']}; due queries (ms) "
        f"{ {name: q['ms'] for name, q in queries.items()} }",
        flush=True,
    )
    if run["run"] == 1:
        for name, query in queries.items():
            print(f"  {name}: {query['ms']} ms, {query['rows']} rows")
            for line in _plan_lines(kind, query["plan"]):
                print(f"      {line.strip() if kind == 'sqlite' else line}")
    for row in run.get("statements", []):
        print(
            f"    {row['total_s']:8.3f} s {row['count']:6d}× {row['mean_ms']:8.3f} ms  {row['sql']}"
        )


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best run's details, and every run's sweep time (noise on a shared machine only
    ever adds time, so the fastest run is the best estimate of the sweep's own cost)."""
    best = min(runs, key=lambda r: r["sweep_s"])
    times = [r["sweep_s"] for r in runs]
    return best | {
        "sweep_s_runs": times,
        "sweep_cpu_s_runs": [r["sweep_cpu_s"] for r in runs],
        "sweep_s_min": min(times),
        "sweep_s_median": round(statistics.median(times), 3),
    }


def measure(kind: str, sizes: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    made: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, Any]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for size, orders in sizes.items():
                made[size] = _in_child(setup, tmp, kind, orders, args.claims, args.overdue)
                print(
                    f"{kind} {size}: {orders:,} orders set up in {made[size]['setup_s']:.1f} s",
                    flush=True,
                )
            # Interleaved (small, large, small, large, ...) on fresh copies, so that a burst
            # of other work on the machine hits both sizes alike.
            for number in range(1, args.repeat + 1):
                for size in sizes:
                    url = _copy(made[size]["url"], Path(tmp), f"{size}_{number}")
                    try:
                        run = _in_child(measured_sweep, url, args.statements)
                    finally:
                        _discard(url)
                    run |= {"run": number, "sweep_s": round(run["sweep_s"], 3)}
                    runs[size].append(run)
                    _print_run(kind, size, run)
        finally:
            if kind == "postgres":
                for each in made.values():
                    asyncio.run(drop_database(each["url"]))
    small, large = _summary(runs["small"]), _summary(runs["large"])
    ratio = large["sweep_s_min"] / small["sweep_s_min"]
    median_ratio = large["sweep_s_median"] / small["sweep_s_median"]
    cpu_ratio = min(large["sweep_cpu_s_runs"]) / min(small["sweep_cpu_s_runs"])
    # Per phase, for the phases that take time (the idle sweeps take a millisecond or two).
    phase_ratio = {
        name: round(large["phase_s"][name] / small["phase_s"][name], 2)
        for name in small["phase_s"]
        if small["phase_s"][name] >= 0.1
    }
    print(
        f"{kind}: sweep large / small = {ratio:.2f} fastest runs, {median_ratio:.2f} medians "
        f"(goal <= 2); the sweeping process's CPU {cpu_ratio:.2f}; per phase (fastest runs) "
        f"{phase_ratio}",
        flush=True,
    )
    return {
        f"{kind}_small": small | {"setup_s": round(made["small"]["setup_s"], 1)},
        f"{kind}_large": large | {"setup_s": round(made["large"]["setup_s"], 1)},
        f"{kind}_ratio": round(ratio, 2),
        f"{kind}_ratio_medians": round(median_ratio, 2),
        f"{kind}_ratio_process_cpu": round(cpu_ratio, 2),
        f"{kind}_phase_ratio": phase_ratio,
        f"{kind}_goal_ratio_at_most_2": ratio <= 2,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="orders in the small database")
    parser.add_argument("--large", type=int, default=1_000_000, help="orders in the large one")
    parser.add_argument("--claims", type=int, default=1_000, help="claims due for auto review")
    parser.add_argument("--overdue", type=int, default=200, help="orders due for the overdue sweep")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), help="only this engine")
    parser.add_argument(
        "--repeat", type=int, default=3, help="sweeps per size, interleaved (default 3)"
    )
    parser.add_argument(
        "--statements", action="store_true", help="time every SQL statement of the sweep"
    )
    args = parser.parse_args(argv)
    if args.small < args.claims + args.overdue:
        parser.error("--small must hold the claimed and the overdue orders")
    sizes = {"small": args.small, "large": args.large}
    result: dict[str, Any] = {
        "small_orders": args.small,
        "large_orders": args.large,
        "due_claims": args.claims,
        "overdue_orders": args.overdue,
        "batch": BATCH,
        "repeat": args.repeat,
    }
    for kind in [args.engine] if args.engine else engines():
        result |= measure(kind, sizes, args)
    write_result("sweep_scale", result)


if __name__ == "__main__":
    main()
