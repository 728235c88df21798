"""Importing a 100,000-row order file: rows per second, and the re-import that changes nothing.

.venv/bin/python -m benchmarks.bench_import [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.common import drop_database, engines, fresh_database, order_file, write_result
from bot.cli import parse_file
from bot.settings import Settings
from storage.engine import make_engine
from storage.importer import import_orders
from workflow.simulated import SystemClock


async def measure(rows: int) -> dict[str, object]:
    out: dict[str, object] = {"rows": rows}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        file = order_file(folder / "orders.csv", rows)
        for kind in engines():
            url = await fresh_database(folder, kind)
            engine = make_engine(url)
            for attempt in ("first", "again"):
                started = time.perf_counter()
                report = await import_orders(
                    engine, parse_file(file, Settings()), SystemClock().now()
                )
                seconds = time.perf_counter() - started
                out[f"{kind}_{attempt}_seconds"] = round(seconds, 2)
                out[f"{kind}_{attempt}_rows_per_s"] = round(rows / seconds)
                out[f"{kind}_{attempt}_imported_orders"] = report.imported
                out[f"{kind}_{attempt}_errors"] = len(report.errors)
            await engine.dispose()
            if kind == "postgres":
                await drop_database(url)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    write_result("import", asyncio.run(measure(args.rows)))


if __name__ == "__main__":
    main()
