"""Round-trip updates per second of a bare aiogram echo bot through the sandbox.

The sandbox runs in its own process (``python -m sandbox``, flood control off), as Telegram
would be another machine; the bot polls it from this process. A backlog of ``--messages``
user messages from ``--users`` users is queued first; the clock runs from the bot's start
until the sandbox has logged the last echo, so the number is what one bot process on this
machine can turn around. Bounded in count and in time (``--time-limit``); prints the rate
and writes a JSON result to benchmarks/results/.

    .venv/bin/python -m benchmarks.bench_sandbox_echo [--messages 2000] [--users 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import free_port, wait_until_up
from benchmarks.echo_bot import build_echo_dispatcher, make_bot
from sandbox.app import DEFAULT_TOKEN
from sandbox.client import SandboxClient

RESULTS = Path(__file__).parent / "results"


async def _queue_backlog(client: SandboxClient, users: int, messages: int) -> None:
    for n in range(users):
        await client.create_user(id=10_000 + n, first_name=f"User {n}")
    semaphore = asyncio.Semaphore(32)

    async def one(n: int) -> None:
        async with semaphore:
            await client.send(10_000 + n % users, f"message {n}")

    await asyncio.gather(*(one(n) for n in range(messages)))


async def run(messages: int, users: int, time_limit: float) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        "--no-flood",
        stdout=asyncio.subprocess.DEVNULL,
    )
    client = SandboxClient(url)
    try:
        await wait_until_up(url, time.monotonic() + 30)
        await _queue_backlog(client, users, messages)
        bot = make_bot(url, DEFAULT_TOKEN)
        dp = build_echo_dispatcher()
        started_wall = time.time()
        started = time.monotonic()
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=1)
        )
        idle = await client.wait_idle(quiet_ms=200, timeout_ms=int(time_limit * 1000))
        await dp.stop_polling()
        await polling
        replies = (await client.calls(method="sendMessage", ok=True))["calls"]
        last = max(c["at"] for c in replies) if replies else started_wall
        elapsed = max(last - started_wall, 1e-9)
        return {
            "benchmark": "sandbox_echo",
            "messages": messages,
            "users": users,
            "replies": len(replies),
            "seconds": round(elapsed, 3),
            "updates_per_second": round(len(replies) / elapsed, 1),
            "completed": bool(idle.get("idle")) and len(replies) == messages,
            "wall_seconds_total": round(time.monotonic() - started, 3),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    finally:
        await client.close()
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds at most")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.messages, args.users, args.time_limit))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sandbox_echo-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"aiogram echo through the sandbox: {result['updates_per_second']} updates/s "
        f"({result['replies']}/{result['messages']} in {result['seconds']} s) → {path}"
    )
    if not result["completed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
