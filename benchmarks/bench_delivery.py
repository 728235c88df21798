"""Delivered messages per second, as a fraction of the flood limit the sandbox enforces.

The sandbox runs in its own process with flood control ON, sped up ``--scale`` times
(Telegram's 30 messages a second overall becomes ``30 × scale``). ``--messages`` outbox
messages, spread over ``--chats`` bound buyers (enough chats that the per-chat limit of one a
second is not what binds), are written to a SQLite file the way the services write them; the
bot's real delivery (``bot.delivery.deliver_pending``: fan-out, leases, the flood gate, outcome
records) then runs round after round until every delivery is recorded as sent. The rate is
taken from the sandbox's own call log — accepted sendMessage calls from the first to the last
— and compared with the overall limit. Goal: ≥ 0.95, with no 429 (the bot paces itself).

    .venv/bin/python -m benchmarks.bench_delivery [--messages 3000] [--chats 100] [--scale 10]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from benchmarks.common import free_port, wait_until_up, write_result
from bot import i18n
from bot.conversations.context import BotConfig, Services
from bot.delivery import deliver_pending
from bot.flood import SendLimits
from sandbox.app import DEFAULT_TOKEN
from sandbox.client import SandboxClient
from storage import tables as t
from storage.engine import make_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.uow import UnitOfWorkFactory
from workflow.claims import OutboxMessage
from workflow.services.common import Env
from workflow.simulated import SystemClock

FIRST_CHAT = 50_000
LEASE_BATCH = 250  # rows leased at a time: more, and each lease holds up the sends longer


async def _prepare(uows: UnitOfWorkFactory, chats: int, messages: int) -> None:
    """Buyers bound to chats, and the backlog of messages to them."""
    now = SystemClock().now()
    async with uows() as uow:
        s = uow.session
        for n in range(chats):
            buyer = t.Buyer(external_ref=f"BENCH-{n}", name=f"Buyer {n}")
            s.add(buyer)
            await s.flush()
            s.add(
                t.Identity(
                    channel="telegram",
                    external_id=FIRST_CHAT + n,
                    party_kind="buyer",
                    party_id=buyer.id,
                    created_at=now,
                )
            )
        await s.flush()
        for n in range(messages):
            await uow.outbox.add(
                OutboxMessage(
                    dedupe_key=f"bench:{n}",
                    recipient_kind="buyer",
                    recipient_id=1 + n % chats,
                    template="claim.approved",
                    params={"claim_id": n},
                    claim_id=None,
                ),
                now,
            )
        await uow.commit()


async def run(messages: int, chats: int, scale: float, time_limit: float) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "sandbox", "--port", str(port), "--scale", str(scale)],
        stdout=asyncio.subprocess.DEVNULL,
    )
    client = SandboxClient(url)
    folder = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    engine = make_engine(sqlite_url_for(folder / "bench.db"))
    bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    try:
        await wait_until_up(url, time.monotonic() + 30)
        for n in range(chats):
            await client.create_user(id=FIRST_CHAT + n, first_name=f"Buyer {n}")
            await client.send(FIRST_CHAT + n, "hi")  # the chat exists: the user wrote first
        await upgrade(engine)
        uows = UnitOfWorkFactory(engine)
        await _prepare(uows, chats, messages)
        services = Services(
            uows=uows,
            env=Env(clock=SystemClock()),
            translate=i18n.t,
            config=BotConfig(send_limits=SendLimits(scale=scale)),
        )
        started = time.monotonic()
        rounds = 0
        while time.monotonic() - started < time_limit:
            rounds += 1
            await deliver_pending(services, bot, limit=LEASE_BATCH)
            async with uows() as uow:
                counts = await uow.delivery.counts()
            if counts.get("sent", 0) >= messages:
                break
        wall = time.monotonic() - started
        calls = (await client.calls(method="sendMessage"))["calls"]
        accepted = [c for c in calls if c["ok"]]
        refused = [c for c in calls if not c["ok"]]
        span = max(c["at"] for c in accepted) - min(c["at"] for c in accepted)
        # The first ``burst`` sends go at once; the limit governs the rest of the span.
        burst = SendLimits().overall_burst
        rate = (len(accepted) - burst) / span if span > 0 else 0.0
        limit = SendLimits().overall_per_second * scale
        return {
            "messages": messages,
            "chats": chats,
            "scale": scale,
            "enforced_limit_per_second": limit,
            "delivered": len(accepted),
            "refused": len(refused),
            "refused_429": sum(1 for c in refused if c.get("error_code") == 429),
            "rounds": rounds,
            "span_seconds": round(span, 3),
            "wall_seconds": round(wall, 3),
            "messages_per_second": round(rate, 1),
            "fraction_of_limit": round(rate / limit, 3),
            "completed": counts.get("sent", 0) == messages,
            "python": platform.python_version(),
        }
    finally:
        await bot.session.close()
        await engine.dispose()
        await client.close()
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--scale", type=float, default=10.0, help="sandbox speed-up")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds at most")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.messages, args.chats, args.scale, args.time_limit))
    path = write_result("delivery", result)
    print(
        f"delivery: {result['messages_per_second']} messages/s against a limit of "
        f"{result['enforced_limit_per_second']:.0f}/s → {result['fraction_of_limit']:.3f} of it "
        f"({result['delivered']}/{result['messages']} in {result['span_seconds']} s, "
        f"{result['refused_429']} × 429, {result['rounds']} rounds) → {path}"
    )
    if not result["completed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
