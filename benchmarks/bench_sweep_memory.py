"""Resident memory while sweeping 100,000 open claims (goal: under 50 MB of growth).

Orders are imported through the real import path; the claims are then written in bulk (one
line each, ``submitted``, due for auto review now), and the auto-review sweep runs over all
of them while a sampler records the process's resident set size. No machine or model object
is held per claim: the sweep works in short batches, one unit of work at a time.

    .venv/bin/python -m benchmarks.bench_sweep_memory [--claims 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psutil

from benchmarks.common import engines, fresh_database, order_file, write_result
from bot.cli import parse_file
from bot.settings import Settings
from storage.engine import make_engine
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from tests.factories import bulk_open_claims
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_sweep


async def measure(claims: int, kind: str) -> dict[str, object]:
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = await fresh_database(folder, kind)
        engine = make_engine(url)
        uows = UnitOfWorkFactory(engine)
        file = order_file(folder / "orders.csv", claims, lines_per_order=1)
        clock = ManualClock()
        await import_orders(engine, parse_file(file, Settings()), clock.now())
        clock.set(
            clock.now() + timedelta(days=400)
        )  # every order delivered long ago: rules decide fast
        made = await bulk_open_claims(uows, clock.now())
        env = Env(clock=clock)
        gc.collect()
        baseline = peak = process.memory_info().rss
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        moved = await run_sweep(uows, env, SWEEPS[0], batch=200)
        seconds = time.perf_counter() - started
        done.set()
        await sampler
        peak = max(peak, process.memory_info().rss)
        await engine.dispose()
    return {
        f"{kind}_claims": made,
        f"{kind}_moved": moved,
        f"{kind}_sweep_seconds": round(seconds, 1),
        f"{kind}_claims_per_s": round(moved / seconds),
        f"{kind}_rss_baseline_mb": round(baseline / 2**20, 1),
        f"{kind}_rss_peak_mb": round(peak / 2**20, 1),
        f"{kind}_rss_growth_mb": round((peak - baseline) / 2**20, 1),
        f"{kind}_goal_growth_under_50mb": (peak - baseline) / 2**20 < 50,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=100_000)
    args = parser.parse_args(argv)
    result: dict[str, object] = {"claims": args.claims}
    for kind in engines():
        result |= asyncio.run(measure(args.claims, kind))
    write_result("sweep_memory", result)


if __name__ == "__main__":
    main()
