"""Claim-filing steps per second of the real bot through the sandbox, against the echo floor,
and the bot's handling latency at a steady offered load (goals: ratio >= 0.6; p99 reported).

One run, one sandbox process (``benchmarks/filing_driver.py``: the sandbox with flood control
off, plus the users, who act inside the sandbox process and see the bot's answers in its call
log the moment they are logged), one bot process (this one):

1. Echo floor. The bare aiogram echo bot (``benchmarks/echo_bot.py``) polls the sandbox: a
   backlog of ``--echo-messages`` texts from ``--echo-users`` users queued at once, timed from
   the first update queued to the log entry of the last echo (as ``bench_sandbox_echo``);
   then the filing run's way of working — ``--buyers`` users each sending a text, waiting
   for its echo, sending the next (closed loop).
2. Dialog floor. The buyers' script below against a bot with no database and no logic that
   makes the same Bot API calls per step as the real dialog (a text → a message with a
   keyboard; a press → edit that message, answer the press; Confirm also sends the card):
   the most the dialog could reach here, so ``ratio_ceiling`` = its rate / the echo rate.
3. Filing throughput. The real bot (``bot.app.run_bot``: the aiogram dispatcher, the engine,
   a SQLite file database; the back office idle so that only updates are measured) with
   ``--buyers`` bound buyers, each filing ``--claims`` claims one after the other through the
   buyer's dialog, all buyers at once: nine updates per claim (/new, the order, the line,
   Next, the type, the reason, the description typed, Done with photos, Confirm), each taken
   when the bot has finished the previous one. Steps per second = updates handled / time from
   the first update queued to the bot's last answer. Ratio = that / the echo backlog rate.
4. Latency at ``--rate`` updates/s (several: ``--rate 25,200``). For ``--duration`` seconds a
   pacer on the monotonic clock queues one dialog step every 1/rate s, taken by one of
   ``--paced-buyers`` buyers whose previous step is finished (buyers start another claim
   after each one). Latency per update: from queueing it to the bot's first Bot API call for
   it (the call log's time). "Kept up": every update offered on time (never every buyer still
   waiting for the bot), answered, the offered rate achieved and every confirmed claim in
   the database. Offering stops at the end of the window, so a bot that cannot keep up is
   offered fewer updates, never given longer.

The bot's orders are generated for the run: two-line orders, delivered two days ago, five per
buyer (one page of the order list), so every buyer always has a claimable line. The database
is checked afterwards: the claims filed must be exactly the claims the dialogs confirmed.
The bot's CPU time per phase, its Bot API calls per step and its SQL statements per step are
recorded with the rates.

    .venv/bin/python -m benchmarks.bench_bot_filing [--buyers 30] [--claims 4]
        [--rate 200] [--duration 10] [--paced-buyers 100] [--echo-messages 2000]
        [--engine sqlite|postgres] [--profile] [--sqlite-pool N] [--pin-responses]

``--profile`` runs cProfile over the bot's process during the throughput run (own time by
function and by package printed, the ``.prof`` file written next to the JSON) and times
every SQL statement the bot runs. ``--sqlite-pool`` and ``--pin-responses`` try two fixes
from the outside (see ``--help``; both are in the core code since); without them the bot
runs exactly as configured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy import event, func, select

from benchmarks.common import (
    RESULTS,
    drop_database,
    free_port,
    fresh_database,
    wait_until_up,
    write_result,
)
from benchmarks.echo_bot import build_echo_dispatcher, make_bot
from benchmarks.filing_driver import STEPS_PER_CLAIM
from bot import i18n
from bot.app import run_bot
from bot.conversations.context import BotConfig, Services
from bot.flood import SendLimits
from bot.scheduler import Intervals
from sandbox.app import DEFAULT_TOKEN
from sandbox.client import SandboxClient
from storage import tables as t
from storage.engine import make_engine
from storage.importer import import_orders
from storage.uow import UnitOfWorkFactory
from workflow.claims import SYSTEM
from workflow.orders import LineImport, OrderImport
from workflow.services.accounts import mint_binding
from workflow.services.common import Env
from workflow.simulated import SystemClock

ECHO_USER_BASE = 10_000
BUYER_USER_BASE = 100_000
ORDERS_PER_BUYER = 5  # one page of the buyer's order list
LINES_PER_ORDER = 2
CLAIMS_PER_BUYER = ORDERS_PER_BUYER * LINES_PER_ORDER  # one claim per line
CONSIGNORS = 20
# The back office never runs during the run: only updates are measured.
IDLE = Intervals(sweeps=3600, providers=3600, payment_callbacks=3600, tracking=3600, delivery=3600)
GOAL_RATIO = 0.6


# ---- set-up ------------------------------------------------------------------------------


def bench_orders(buyers: int, now: datetime) -> list[OrderImport]:
    """Five delivered two-line orders per buyer (``B-FILE-00000`` …)."""
    orders = []
    for b in range(buyers):
        for o in range(ORDERS_PER_BUYER):
            n = b * ORDERS_PER_BUYER + o
            paid = now - timedelta(days=6, minutes=n)
            lines = tuple(
                LineImport(
                    f"SKU-{n:06d}-{k}",
                    f"Item {n}-{k}",
                    "general",
                    f"C-FILE-{(n + k) % CONSIGNORS:02d}",
                    f"Consignor {(n + k) % CONSIGNORS}",
                    1,
                    10_000 + 100 * ((n + k) % 50),
                    1_000,
                )
                for k in range(LINES_PER_ORDER)
            )
            orders.append(
                OrderImport(
                    order_ref=f"SO-F{n:06d}",
                    buyer_ref=f"B-FILE-{b:05d}",
                    buyer_name=f"Buyer {b}",
                    currency="CNY",
                    paid_at=paid,
                    ship_by=paid + timedelta(days=2),
                    shipped_at=paid + timedelta(days=1),
                    delivered_at=now - timedelta(days=2),
                    lines=lines,
                )
            )
    return orders


async def bind_tokens(services: Services, buyers: int) -> dict[int, str]:
    """A binding token for each bench buyer, by the sandbox user who will redeem it."""
    async with services.uows() as uow:
        rows = (
            await uow.session.execute(
                select(t.Buyer.id, t.Buyer.external_ref).where(
                    t.Buyer.external_ref.like("B-FILE-%")
                )
            )
        ).all()
        by_ref = {ref: buyer_id for buyer_id, ref in rows}
        tokens = {}
        for b in range(buyers):
            party_id = by_ref[f"B-FILE-{b:05d}"]
            token = await mint_binding(uow, services.env, SYSTEM, "buyer", party_id)
            tokens[BUYER_USER_BASE + b] = f"/start {token}"
        await uow.commit()
    return tokens


def pin_response_models() -> list[Any]:
    """aiogram parses every answer with ``Response[method.__returning__]``; pydantic keeps
    such generic models in a WeakValueDictionary, so whenever the garbage collector frees
    one it is built again (milliseconds each). Holding them keeps them cached."""
    from aiogram import methods

    used = (
        methods.GetMe,
        methods.GetUpdates,
        methods.SendMessage,
        methods.EditMessageText,
        methods.AnswerCallbackQuery,
        methods.SendPhoto,
        methods.SendDocument,
        methods.SetMyCommands,
    )
    return [methods.Response[m.__returning__] for m in used]  # type: ignore[name-defined]


class Bench:
    """The orchestration: this process runs the bots; the sandbox process runs the users."""

    def __init__(self, client: SandboxClient, http: aiohttp.ClientSession):
        self.client = client
        self.http = http

    async def drive(self, route: str, **body: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.client.url}/bench/{route}", json=body) as response:
            response.raise_for_status()
            return dict(await response.json())

    async def polling_started(self, since: int) -> None:
        """Wait until the bot under test has asked for updates (it is up and polling); a
        long poll is logged when it returns, at most ``polling_timeout`` (1 s) after it began."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            calls = (await self.client.calls(method="getUpdates", since=since))["calls"]
            if calls:
                return
            await self.client.wait_idle(quiet_ms=50, timeout_ms=1000)
        raise RuntimeError("the bot never polled")

    async def last_seq(self) -> int:
        async with self.http.get(f"{self.client.url}/bench/seq") as response:
            return int((await response.json())["seq"])


# ---- the phases --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def polling(bench: Bench, dp: Dispatcher) -> AsyncIterator[None]:
    """A bare dispatcher polling the sandbox, from its first getUpdates until the block ends."""
    bot = make_bot(bench.client.url, DEFAULT_TOKEN)
    since = await bench.last_seq()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        await bench.polling_started(since)
        yield
        await bench.client.wait_idle(quiet_ms=100)
    finally:
        await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # The last updates it fetched were never confirmed by a further getUpdates: confirm
        # them, or the next bot would get them again.
        pending = (await bench.client.request("GET", "/sandbox/updates"))["pending"]
        if pending:
            await bot.get_updates(offset=pending[-1]["update_id"] + 1, timeout=0)
        await bot.session.close()


async def echo_floor(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    echo_users = [ECHO_USER_BASE + n for n in range(max(args.echo_users, args.buyers))]
    async with polling(bench, build_echo_dispatcher()):
        cpu = _CpuMeter()
        backlog = await bench.drive(
            "backlog",
            users=echo_users[: args.echo_users],
            messages=args.echo_messages,
            time_limit=args.time_limit,
        )
        backlog["bot_cpu"] = cpu.read()
        cpu = _CpuMeter()
        closed = await bench.drive(
            "closed",
            kind="echo",
            users=echo_users[: args.buyers],
            rounds=args.claims * STEPS_PER_CLAIM,
            time_limit=args.time_limit,
        )
        closed["bot_cpu"] = cpu.read()
    async with polling(bench, dialog_floor_dispatcher()):
        cpu = _CpuMeter()
        dialog = await bench.drive(
            "closed",
            kind="filing",
            users=echo_users[: args.buyers],
            rounds=args.claims,
            time_limit=args.time_limit,
        )
        dialog["bot_cpu"] = cpu.read()
    return {"backlog": backlog, "closed_loop": closed, "dialog_floor": dialog}


# Every button the buyer's script presses, on every screen of the dialog floor.
_FLOOR_BUTTONS = (
    "d:order:1",
    "d:line:1",
    "d:lines_done:1",
    "d:type:return_refund",
    "d:reason:no_reason_7_days",
    "d:photos:done",
    "d:confirm:yes",
)


def dialog_floor_dispatcher() -> Dispatcher:
    """The claim dialog's Bot API traffic without the bot: no database, no logic.

    The same calls per step as the real bot's dialog — a text is answered by a message with a
    keyboard, a press by editing that message and then answering the press (Confirm also
    sends the claim's card) — so its rate is the most the real dialog could reach here.
    """
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d)] for d in _FLOOR_BUTTONS]
    )
    router = Router(name="dialog-floor")

    @router.message(F.text)
    async def on_text(message: Message) -> None:
        await message.answer(f"Next step after {message.text}", reply_markup=keyboard)

    @router.callback_query()
    async def on_press(query: CallbackQuery, bot: Bot) -> None:
        message = query.message
        assert isinstance(message, Message)
        await bot.edit_message_text(
            text=f"Screen for {query.data} ({query.id})",
            chat_id=message.chat.id,
            message_id=message.message_id,
            reply_markup=keyboard,
        )
        if query.data == "d:confirm:yes":
            await bot.send_message(message.chat.id, "Claim card", reply_markup=keyboard)
        await query.answer()

    dp = Dispatcher()
    dp.include_router(router)
    return dp


class StatementTimer:
    """Counts (and with ``timing``, times) every SQL statement the bot runs."""

    def __init__(self, engine: Any, timing: bool):
        self.count = 0
        self.timing = timing
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.sync = engine.sync_engine
        event.listen(self.sync, "before_cursor_execute", self.before)
        if timing:
            event.listen(self.sync, "after_cursor_execute", self.after)

    def before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        if self.timing:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info["bench_started"].pop()
        key = " ".join(statement.split())[:90]
        self.seconds[key] += time.perf_counter() - started
        self.calls[key] += 1

    def top(self, n: int = 12) -> list[dict[str, Any]]:
        return [
            {"statement": k, "calls": self.calls[k], "ms_total": round(1000 * s, 1)}
            for k, s in self.seconds.most_common(n)
        ]


async def real_bot(
    bench: Bench, args: argparse.Namespace, db_url: str, stamp: str
) -> dict[str, Any]:
    engine_options = {}
    if args.sqlite_pool and args.engine == "sqlite":
        engine_options = {"pool_size": args.sqlite_pool, "max_overflow": 0}
    engine = make_engine(db_url, **engine_options)
    clock = SystemClock()
    now = clock.now()
    total_buyers = args.buyers + args.paced_buyers
    await import_orders(engine, bench_orders(total_buyers, now), now)
    services = Services(
        uows=UnitOfWorkFactory(engine),
        env=Env(clock=clock),
        translate=i18n.t,
        config=BotConfig(send_limits=SendLimits(scale=1000.0)),
    )
    bot = make_bot(bench.client.url, DEFAULT_TOKEN)
    stop, ready = asyncio.Event(), asyncio.Event()
    since = await bench.last_seq()
    running = asyncio.create_task(
        run_bot(
            services,
            bot,
            stop=stop,
            intervals=IDLE,
            polling_timeout=1,
            handle_signals=False,
            on_ready=lambda _me: ready.set(),
        )
    )
    out: dict[str, Any] = {}
    try:
        await asyncio.wait(
            {running, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if running.done():
            running.result()  # the bot could not start: raise why
        await bench.polling_started(since)

        tokens = await bind_tokens(services, total_buyers)
        bound = await bench.drive(
            "closed", kind="bind", users=list(tokens), texts=tokens, time_limit=args.time_limit
        )
        await bench.client.wait_idle(quiet_ms=100)
        if not bound["completed"]:
            raise RuntimeError(f"binding the buyers failed: {bound['first_errors']}")

        buyers = [BUYER_USER_BASE + b for b in range(args.buyers)]
        statements = StatementTimer(engine, timing=args.profile)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        cpu = _CpuMeter()
        filing = await bench.drive(
            "closed", kind="filing", users=buyers, rounds=args.claims, time_limit=args.time_limit
        )
        if profiler is not None:
            profiler.disable()
        filing["bot_cpu"] = cpu.read()
        filing["sql_statements"] = statements.count
        filing["sql_statements_per_step"] = round(statements.count / max(filing["steps"], 1), 2)
        if args.profile:
            filing["sql_by_time"] = statements.top()
        await bench.client.wait_idle(quiet_ms=100)
        filing["claims_in_database"] = await _claims(services)
        filing["claims_expected"] = args.buyers * args.claims
        out["filing"] = filing
        if profiler is not None:
            out["profile"] = _profile_report(profiler, stamp)

        paced_buyers = [BUYER_USER_BASE + args.buyers + b for b in range(args.paced_buyers)]
        out["paced"] = []
        # Buyers at every step of the dialog, so that the steps offered are the dialog's mix.
        warm = await bench.drive("stagger", users=paced_buyers, rounds=CLAIMS_PER_BUYER)
        await bench.client.wait_idle(quiet_ms=100)
        out["paced_warm_up_steps"] = warm["warm_up_steps"]
        for rate in args.rate:
            before = await _claims(services)
            cpu = _CpuMeter()
            paced = await bench.drive(
                "paced",
                users=paced_buyers,
                rate=rate,
                duration=args.duration,
                rounds=CLAIMS_PER_BUYER,
                drain_limit=min(30.0, args.time_limit),
            )
            paced["bot_cpu"] = cpu.read()
            await bench.client.wait_idle(quiet_ms=100)
            paced["claims_in_database"] = await _claims(services) - before
            paced["kept_up"] = (
                paced["stalls"] == 0
                and paced["errors"] == 0
                and paced["answered"] == paced["sent"] == paced["planned"]
                and paced["achieved_rate"] >= 0.98 * rate
                and paced["claims_in_database"] == paced["claims_filed"]
            )
            out["paced"].append(paced)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await bot.session.close()
        await engine.dispose()
    return out


class _CpuMeter:
    """CPU time of this process (all threads) and of the event loop's thread, over wall time:
    a loop thread well below 100% is a bot waiting, not a bot working."""

    def __init__(self) -> None:
        self.wall, self.process, self.thread = (
            time.monotonic(),
            time.process_time(),
            time.thread_time(),
        )

    def read(self) -> dict[str, float]:
        wall = max(time.monotonic() - self.wall, 1e-9)
        process = time.process_time() - self.process
        thread = time.thread_time() - self.thread
        return {
            "wall_seconds": round(wall, 3),
            "process_cpu_seconds": round(process, 3),
            "loop_thread_cpu_seconds": round(thread, 3),
            "loop_thread_busy": round(thread / wall, 3),
        }


async def _claims(services: Services) -> int:
    async with services.uows() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(t.Claim)) or 0)


def _profile_report(profiler: cProfile.Profile, stamp: str) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bot_filing-{stamp}.prof"
    profiler.dump_stats(path)
    report: dict[str, Any] = {"file": str(path), "by_package": _by_package(profiler)}
    # cumulative times are unreliable here: coroutine resumptions and SQLAlchemy's greenlet
    # switches confuse cProfile's call stack; own time (tottime) is sound
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("tottime")
    stats.print_stats(30)
    report["tottime"] = buffer.getvalue()
    return report


def _by_package(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    """Own time summed by where the code lives: a third-party package, this project's
    top-level package, the standard library, or a builtin (by name)."""
    stats = pstats.Stats(profiler)
    own: Counter[str] = Counter()
    root = str(Path(__file__).resolve().parent.parent) + "/"
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        if "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(root):
            key = filename[len(root) :].split("/", 1)[0]
        elif filename == "~":
            key = f"builtin {name}"
        else:
            key = "stdlib " + Path(filename).name
        own[key] += tottime
    total = sum(own.values()) or 1.0
    return [
        {"where": k, "seconds": round(v, 3), "share": round(v / total, 3)}
        for k, v in own.most_common(15)
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.filing_driver",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
    )
    folder = Path(tempfile.mkdtemp(prefix="bench-filing-"))
    client = SandboxClient(f"http://127.0.0.1:{port}")
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=args.time_limit + 60))
    db_url: str | None = None
    started = time.monotonic()
    stamp = str(int(time.time()))
    try:
        await wait_until_up(client.url, time.monotonic() + 30)
        bench = Bench(client, http)
        users = [ECHO_USER_BASE + n for n in range(max(args.echo_users, args.buyers))]
        users += [BUYER_USER_BASE + b for b in range(args.buyers + args.paced_buyers)]
        for user_id in users:
            await client.create_user(id=user_id, first_name=f"User {user_id}", language_code="en")
        db_url = await fresh_database(folder, args.engine)
        echo = await echo_floor(bench, args)
        bot = await real_bot(bench, args, db_url, stamp)
    finally:
        await http.close()
        await client.close()
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
        if db_url is not None and args.engine == "postgres":
            await drop_database(db_url)
        shutil.rmtree(folder, ignore_errors=True)

    filing = bot["filing"]
    echo_rate = echo["backlog"]["updates_per_second"]
    closed_echo_rate = echo["closed_loop"]["steps_per_second"]
    floor_rate = echo["dialog_floor"]["steps_per_second"]
    ratio = filing["steps_per_second"] / echo_rate if echo_rate else 0.0
    return {
        "engine": args.engine,
        "settings": {
            k: getattr(args, k)
            for k in (
                "buyers",
                "claims",
                "echo_messages",
                "echo_users",
                "rate",
                "duration",
                "paced_buyers",
                "sqlite_pool",
                "pin_responses",
            )
        },
        "load_average": _load(),
        "filing_steps_per_second": filing["steps_per_second"],
        "echo_updates_per_second": echo_rate,
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "ratio_met": ratio >= GOAL_RATIO,
        "dialog_floor_steps_per_second": floor_rate,
        "ratio_ceiling": round(floor_rate / echo_rate, 3) if echo_rate else None,
        "ratio_to_dialog_floor": round(filing["steps_per_second"] / floor_rate, 3)
        if floor_rate
        else None,
        "echo_closed_loop_steps_per_second": closed_echo_rate,
        "ratio_to_closed_loop_echo": round(filing["steps_per_second"] / closed_echo_rate, 3)
        if closed_echo_rate
        else None,
        "paced": bot["paced"],
        "paced_warm_up_steps": bot["paced_warm_up_steps"],
        "filing": filing,
        "echo": echo,
        "profile_file": bot.get("profile", {}).get("file"),
        "profile_by_package": bot.get("profile", {}).get("by_package"),
        "completed": bool(
            echo["backlog"]["completed"]
            and echo["dialog_floor"]["completed"]
            and filing["completed"]
            and filing["claims_in_database"] == filing["claims_expected"]
            and all(p["answered"] == p["sent"] for p in bot["paced"])
        ),
        "wall_seconds_total": round(time.monotonic() - started, 1),
        "_profile": bot.get("profile"),
    }


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates are positive numbers, comma-separated")
    return rates


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=30, help="buyers filing at once")
    parser.add_argument(
        "--claims", type=int, default=4, help=f"claims per buyer (at most {CLAIMS_PER_BUYER})"
    )
    parser.add_argument("--echo-messages", type=int, default=2000)
    parser.add_argument("--echo-users", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=_rates,
        default=[200.0],
        help="offered updates per second; several (50,200) are run one after the other",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds at that rate")
    parser.add_argument("--paced-buyers", type=int, default=100)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--profile", action="store_true", help="cProfile the throughput run")
    what_if = parser.add_argument_group(
        "what if", "proposed fixes tried from the outside; off by default (the bot as it is)"
    )
    what_if.add_argument(
        "--sqlite-pool",
        type=int,
        default=0,
        help="give the bot's SQLite engine this many connections (pool_size, no overflow)",
    )
    what_if.add_argument(
        "--pin-responses",
        action="store_true",
        help="hold aiogram's Response[...] models so pydantic never rebuilds them (both bots)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.claims <= CLAIMS_PER_BUYER:
        parser.error(f"--claims must be 1..{CLAIMS_PER_BUYER}")
    capacity = args.paced_buyers * CLAIMS_PER_BUYER * STEPS_PER_CLAIM
    if capacity < sum(args.rate) * args.duration * 1.2:
        parser.error("too few --paced-buyers for --rate x --duration steps")

    pinned = pin_response_models() if args.pin_responses else []
    result = asyncio.run(run(args))
    del pinned
    profile = result.pop("_profile", None)
    path = write_result("bot_filing", result)
    if profile:
        print(profile["tottime"])
        for row in profile["by_package"]:
            print(f"{row['seconds']:9.3f} s {100 * row['share']:5.1f}%  {row['where']}")
    print(
        f"claim filing through the sandbox ({args.engine}): "
        f"{result['filing_steps_per_second']} steps/s vs echo "
        f"{result['echo_updates_per_second']} updates/s → ratio {result['ratio']} "
        f"(goal {GOAL_RATIO}; closed-loop echo {result['echo_closed_loop_steps_per_second']}/s)"
    )
    print(
        f"the same dialog without database or logic: {result['dialog_floor_steps_per_second']} "
        f"steps/s → at most ratio {result['ratio_ceiling']} for this dialog's Bot API calls"
    )
    for rate, paced in zip(args.rate, result["paced"], strict=True):
        lat = paced["first_answer_ms"]
        print(
            f"at {rate:g} updates/s offered for {args.duration:g} s: sent "
            f"{paced['achieved_rate']}/s, handled {paced['handled_rate']}/s, "
            f"first answer p50 {lat.get('p50')} ms, p95 "
            f"{lat.get('p95')} ms, p99 {lat.get('p99')} ms; kept up: {paced['kept_up']}"
        )
    print(f"→ {path}")
    if not result["completed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
