"""Resident memory while sweeping 100,000 open claims (goal: under 50 MB of growth).

Orders are imported through the real import path; the claims are then written in bulk (one
line each, ``submitted``, due for auto review now). That set-up runs in a separate process,
so its own high-water mark (100,000 parsed rows) cannot hide what the sweep needs: the
measuring process starts small, opens the database, records its resident set size, and runs
the auto-review sweep over every claim while a sampler records the peak. No machine or model
object is held per claim: the sweep works in short batches, one unit of work at a time.

Bounded in time (``--time-limit``): if the sweep is not done by then it is cancelled and the
claims it moved are counted from the database. ``--profile`` adds a cProfile of the sweep
(top functions printed, full stats written next to the JSON result).

    .venv/bin/python -m benchmarks.bench_sweep_memory [--claims 100000] [--time-limit 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import psutil
from sqlalchemy import func, select

from benchmarks.common import (
    RESULTS,
    drop_database,
    engines,
    fresh_database,
    order_file,
    write_result,
)
from bot.cli import parse_file
from bot.settings import Settings
from storage import tables as t
from storage.engine import make_engine
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from workflow.lifecycle import INITIAL
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_sweep

T = TypeVar("T")
AUTO_REVIEW = next(s for s in SWEEPS if s.name == "auto_review")
START = datetime(2026, 1, 1, 9, tzinfo=UTC)
# Every order was delivered long before the claims are reviewed: the rules decide at once.
REVIEW_AT = START + timedelta(days=400)


async def _setup(folder: Path, kind: str, claims: int) -> tuple[str, int, float]:
    from tests.factories import bulk_open_claims

    started = time.perf_counter()
    url = await fresh_database(folder, kind)
    engine = make_engine(url)
    try:
        file = order_file(folder / "orders.csv", claims, lines_per_order=1)
        await import_orders(engine, parse_file(file, Settings()), START)
        made = await bulk_open_claims(UnitOfWorkFactory(engine), REVIEW_AT)
    finally:
        await engine.dispose()
    return url, made, time.perf_counter() - started


def setup(folder: str, kind: str, claims: int) -> tuple[str, int, float]:
    """Runs in a child process: a migrated database with ``claims`` open claims."""
    return asyncio.run(_setup(Path(folder), kind, claims))


async def sweep(url: str, kind: str, time_limit: float, profile: bool) -> dict[str, object]:
    process = psutil.Process()
    engine = make_engine(url)
    uows = UnitOfWorkFactory(engine)
    env = Env(clock=ManualClock(REVIEW_AT))
    async with uows() as uow:  # connect and warm the pool before the baseline
        await uow.session.execute(select(func.count()).select_from(t.Claim))
    gc.collect()
    baseline = peak = process.memory_info().rss
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    profiler = cProfile.Profile() if profile else None
    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    finished = True
    if profiler:
        profiler.enable()
    try:
        await asyncio.wait_for(run_sweep(uows, env, AUTO_REVIEW, batch=200), time_limit)
    except TimeoutError:
        finished = False
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    done.set()
    await sampler
    after = process.memory_info().rss
    peak = max(peak, after)
    async with uows() as uow:
        left = int(
            (
                await uow.session.execute(
                    select(func.count()).select_from(t.Claim).where(t.Claim.status == INITIAL)
                )
            ).scalar_one()
        )
        total = int(
            (await uow.session.execute(select(func.count()).select_from(t.Claim))).scalar_one()
        )
    await engine.dispose()
    moved = total - left
    mb = 2**20
    out: dict[str, object] = {
        f"{kind}_moved": moved,
        f"{kind}_finished": finished,
        f"{kind}_sweep_seconds": round(seconds, 1),
        f"{kind}_claims_per_s": round(moved / seconds, 1),
        f"{kind}_rss_baseline_mb": round(baseline / mb, 1),
        f"{kind}_rss_peak_mb": round(peak / mb, 1),
        f"{kind}_rss_after_mb": round(after / mb, 1),
        f"{kind}_rss_growth_mb": round((peak - baseline) / mb, 1),
        f"{kind}_goal_growth_under_50mb": (peak - baseline) / mb < 50,
    }
    if profiler:
        RESULTS.mkdir(exist_ok=True)
        stats_path = RESULTS / f"sweep_memory-{kind}-{int(time.time())}.prof"
        profiler.dump_stats(stats_path)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())
        out[f"{kind}_profile"] = str(stats_path)
    return out


def measured_sweep(url: str, kind: str, time_limit: float, profile: bool) -> dict[str, object]:
    """Runs in a fresh child process, so nothing measured before counts against it."""
    return asyncio.run(sweep(url, kind, time_limit, profile))


def _in_child(fn: Callable[..., T], *args: object) -> T:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def measure(claims: int, kind: str, time_limit: float, profile: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        url, made, setup_seconds = _in_child(setup, tmp, kind, claims)
        try:
            result = _in_child(measured_sweep, url, kind, time_limit, profile)
        finally:
            if kind == "postgres":
                asyncio.run(drop_database(url))
    return {f"{kind}_claims": made, f"{kind}_setup_seconds": round(setup_seconds, 1)} | result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument(
        "--time-limit", type=float, default=1500.0, help="seconds per engine at most"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the sweep")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), help="only this engine")
    args = parser.parse_args(argv)
    result: dict[str, object] = {"claims": args.claims, "time_limit_s": args.time_limit}
    for kind in [args.engine] if args.engine else engines():
        result |= measure(args.claims, kind, args.time_limit, args.profile)
    write_result("sweep_memory", result)


if __name__ == "__main__":
    main()
