"""The sandbox side of ``bench_bot_filing``: the sandbox, and the people who use the bot.

``python -m benchmarks.filing_driver --port N`` serves the ordinary sandbox (flood control
off, as ``python -m sandbox --no-flood``) plus a few ``/bench/...`` routes that play users
*inside the sandbox process*: they type and press through the sandbox's own user actions
(the same code as ``POST /sandbox/messages`` and ``/sandbox/press``), and they learn that the
bot has answered from the sandbox's call log — every Bot API call is seen the moment it is
logged, so no user ever polls and the bot's process runs nothing but the bot.

A step is one update: a text or a button press. A user waits until the bot has finished with
a step before taking the next one, as a person would (a button can only be pressed once the
bot has drawn it): a text step is finished by the bot's ``sendMessage`` to that chat, a press
by ``answerCallbackQuery`` for that press (the bot answers a press last, after editing the
screen). The step's *first answer* is the first Bot API call the bot makes for it (to that
chat, or for that press); its latency is measured from the moment the update was queued.
Times are the call log's ``at`` (when the sandbox received the call), in this one process.

Routes (JSON in, JSON out; each answers when its run is over):

  POST /bench/backlog {users, messages}        queue ``messages`` texts at once, round robin
       over ``users``, then wait until each has been echoed (``sendMessage`` to the chat)
  POST /bench/closed  {kind, users, rounds, tokens?, time_limit}
       every user runs ``rounds`` scripts back to back, all users at once; kind "filing"
       (the buyer's claim dialog, 9 steps), "echo" (one text) or "bind" (``/start <token>``)
  POST /bench/stagger {users, rounds}           walk buyer i to step i mod 9 of the dialog
  POST /bench/paced   {users, rate, duration, drain_limit}
       claim-dialog steps offered at ``rate`` per second for ``duration`` seconds, each taken
       by a buyer whose previous step is finished (buyers start a new claim after each one)
  GET  /bench/seq                               the sequence number of the latest call logged
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.app import DEFAULT_TOKEN, WORLD, create_app
from sandbox.users import UserActions, UserError
from sandbox.world import World

# The buyer's claim dialog (bot/conversations/claim_dialog.py), one entry per update: a text
# to send, or the callback data of the button to press (a prefix: the first such button).
FILING_SCRIPT: tuple[tuple[str, str], ...] = (
    ("send", "/new"),
    ("press", "d:order:"),  # the first order still open to a claim
    ("press", "d:line:"),  # the first line still claimable
    ("press", "d:lines_done:"),  # Next
    ("press", "d:type:return_refund"),
    ("press", "d:reason:no_reason_7_days"),
    ("send", "Changed my mind"),  # the description
    ("press", "d:photos:done"),  # no photos
    ("press", "d:confirm:yes"),
)
STEPS_PER_CLAIM = len(FILING_SCRIPT)


class StepFailed(Exception):
    """The bot's answer was not the one the script needed (an error, a missing button)."""


@dataclass
class Step:
    """One update in flight: sent, waiting for the bot to finish with it."""

    user_id: int
    kind: str  # "send" (finished by sendMessage) or "press" (finished by answerCallbackQuery)
    sent_at: float
    done: asyncio.Future[None]
    query_id: str | None = None
    first_answer_at: float | None = None
    done_at: float | None = None
    reply_message_id: int | None = None  # sendMessage's message, for "send" steps
    error: str | None = None


class CallWatch:
    """Follows the call log and finishes the steps the bot's calls belong to."""

    def __init__(self, world: World):
        self.by_user: dict[int, Step] = {}
        self.by_query: dict[str, Step] = {}
        self.methods: Counter[str] = Counter()  # every call logged, by method
        log: deque[dict[str, Any]] = _NotifyingLog(self.seen, world.calls.maxlen)
        log.extend(world.calls)
        world.calls = log

    def expect(self, step: Step) -> None:
        self.by_user[step.user_id] = step
        if step.query_id is not None:
            self.by_query[step.query_id] = step

    def seen(self, call: dict[str, Any]) -> None:
        method = call.get("method")
        self.methods[str(method)] += 1
        if method == "getUpdates":
            return
        params = call.get("params") or {}
        if method == "answerCallbackQuery":
            step = self.by_query.get(str(params.get("callback_query_id")))
        else:
            step = self.by_user.get(_as_int(params.get("chat_id")) or 0)
        if step is None:
            return
        if step.first_answer_at is None:
            step.first_answer_at = float(call["at"])
        if not call.get("ok"):
            step.error = f"{method}: {call.get('description')}"
        if step.kind == "press" and method == "answerCallbackQuery":
            if params.get("text") and params.get("show_alert"):
                step.error = f"alert: {params.get('text')}"
            self._finish(step, call)
        elif step.kind == "send" and method == "sendMessage":
            result = call.get("result") or {}
            step.reply_message_id = result.get("message_id")
            self._finish(step, call)

    def _finish(self, step: Step, call: dict[str, Any]) -> None:
        step.done_at = float(call["at"])
        self.by_user.pop(step.user_id, None)
        if step.query_id is not None:
            self.by_query.pop(step.query_id, None)
        if not step.done.done():
            step.done.set_result(None)


class _NotifyingLog(deque):  # type: ignore[type-arg]
    """The sandbox's call log, telling the watch of every call as it is logged."""

    def __init__(self, on_append: Callable[[dict[str, Any]], None], maxlen: int | None):
        super().__init__(maxlen=maxlen)
        self.on_append = on_append

    def append(self, call: dict[str, Any]) -> None:
        super().append(call)
        self.on_append(call)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Person:
    """A user working through a script: ``rounds`` times, one step at a time."""

    user_id: int
    script: tuple[tuple[str, str], ...]
    rounds: int
    position: int = 0
    finished_rounds: int = 0
    screen: int | None = None  # the bot's message whose buttons the next press is on
    steps: int = 0
    errors: list[str] = field(default_factory=list)

    def next_action(self) -> tuple[str, str] | None:
        if self.finished_rounds >= self.rounds or self.errors:
            return None
        return self.script[self.position]

    def advance(self) -> None:
        self.position += 1
        self.steps += 1
        if self.position == len(self.script):
            self.position = 0
            self.finished_rounds += 1


class Driver:
    def __init__(self, world: World):
        self.world = world
        self.users = UserActions(world)
        self.watch = CallWatch(world)
        self.echo_count = 0

    # --- one step -------------------------------------------------------------------------

    def act(self, person: Person, action: tuple[str, str]) -> Step:
        """Queue the update for ``action`` now; the step is finished by the bot's answer."""
        what, value = action
        loop = asyncio.get_running_loop()
        if what == "send":
            if value == "{echo}":
                self.echo_count += 1
                value = f"message {self.echo_count}"
            step = Step(person.user_id, "send", time.time(), loop.create_future())
            self.watch.expect(step)
            self.users.send({"user_id": person.user_id, "text": value}, {})
            return step
        data = self._button(person, value)
        step = Step(person.user_id, "press", time.time(), loop.create_future())
        answer = self.users.press(
            {"user_id": person.user_id, "message_id": person.screen, "callback_data": data}
        )
        step.query_id = answer["callback_query_id"]
        self.watch.expect(step)
        return step

    def _button(self, person: Person, prefix: str) -> str:
        chat = self.world.chats[person.user_id]
        message = chat.messages.get(person.screen or 0) or {}
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data") or ""
                if data.startswith(prefix):
                    return str(data)
        shown = str(message.get("text") or "")[:120]
        raise StepFailed(f"user {person.user_id}: no button {prefix!r} on {shown!r}")

    def finished(self, person: Person, step: Step) -> None:
        if step.error:
            person.errors.append(step.error)
            return
        if step.kind == "send" and step.reply_message_id is not None:
            person.screen = step.reply_message_id
        person.advance()

    # --- runs -----------------------------------------------------------------------------

    async def backlog(self, users: list[int], messages: int, time_limit: float) -> dict[str, Any]:
        """``messages`` texts queued at once; done when every one has been echoed."""
        wanted = set(users)
        echoed = 0
        last_at = 0.0
        all_done = asyncio.get_running_loop().create_future()
        previous = self.watch.seen

        def count(call: dict[str, Any]) -> None:
            nonlocal echoed, last_at
            previous(call)
            if call.get("method") != "sendMessage" or not call.get("ok"):
                return
            if _as_int((call.get("params") or {}).get("chat_id")) in wanted:
                echoed += 1
                last_at = max(last_at, float(call["at"]))
                if echoed >= messages and not all_done.done():
                    all_done.set_result(None)

        self.world.calls.on_append = count  # type: ignore[attr-defined]
        try:
            started = time.time()
            for n in range(messages):
                self.users.send({"user_id": users[n % len(users)], "text": f"message {n}"}, {})
            queued = time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done, time_limit)
        finally:
            self.world.calls.on_append = previous  # type: ignore[attr-defined]
        seconds = max(last_at - started, 1e-9)
        return {
            "users": len(users),
            "messages": messages,
            "answered": echoed,
            "completed": echoed >= messages,
            "queue_seconds": round(queued - started, 4),
            "seconds": round(seconds, 3),
            "updates_per_second": round(echoed / seconds, 1),
        }

    async def closed(
        self,
        people: list[Person],
        time_limit: float,
        texts: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Every person runs their script to the end, all at once, each waiting for the bot."""
        latencies: list[float] = []
        completions: list[float] = []
        done_times: list[float] = []
        started = time.time()

        async def run(person: Person) -> None:
            while (action := person.next_action()) is not None:
                if texts is not None and action[1] == "{text}":
                    action = (action[0], texts[person.user_id])
                try:
                    step = self.act(person, action)
                except (StepFailed, UserError) as exc:
                    person.errors.append(str(exc))
                    return
                await step.done
                self.finished(person, step)
                assert step.first_answer_at is not None and step.done_at is not None
                latencies.append(step.first_answer_at - step.sent_at)
                completions.append(step.done_at - step.sent_at)
                done_times.append(step.done_at)

        methods_before = Counter(self.watch.methods)
        tasks = [asyncio.create_task(run(p)) for p in people]
        _, pending = await asyncio.wait(tasks, timeout=time_limit)
        calls = self.watch.methods - methods_before
        for task in pending:
            task.cancel()
        steps = sum(p.steps for p in people)
        last = max(done_times, default=started)
        seconds = max(last - started, 1e-9)
        errors = [e for p in people for e in p.errors]
        return {
            "users": len(people),
            "rounds": people[0].rounds if people else 0,
            "steps": steps,
            "expected_steps": sum(p.rounds * len(p.script) for p in people),
            "completed": not pending and not errors,
            "timed_out": bool(pending),
            "errors": len(errors),
            "first_errors": errors[:5],
            "seconds": round(seconds, 3),
            "steps_per_second": round(steps / seconds, 1),
            "first_answer_ms": _percentiles(latencies),
            "step_done_ms": _percentiles(completions),
            "bot_api_calls": dict(calls),
            "bot_api_calls_per_step": round(
                sum(n for m, n in calls.items() if m != "getUpdates") / max(steps, 1), 2
            ),
        }

    async def stagger(self, people: list[Person]) -> int:
        """Walk buyers who have not started to different steps of the dialog (unmeasured),
        buyer i to step i mod 9, so that whichever buyers the bot is busy with, its steps are
        the dialog's mix — not every buyer's first few steps at once."""
        fresh = [p for p in people if p.steps == 0]

        async def walk(person: Person, count: int) -> None:
            for _ in range(count):
                action = person.next_action()
                if action is None:
                    return
                step = self.act(person, action)
                await step.done
                self.finished(person, step)

        await asyncio.gather(*(walk(p, i % len(p.script)) for i, p in enumerate(fresh)))
        return sum(p.steps for p in fresh)

    async def paced(
        self, people: list[Person], rate: float, duration: float, drain_limit: float
    ) -> dict[str, Any]:
        """Steps offered at ``rate``/s on the monotonic clock, each by a buyer who is free."""
        ready: deque[Person] = deque(p for p in people if p.next_action() is not None)
        filed_before = sum(p.finished_rounds for p in people)
        errors_before = sum(len(p.errors) for p in people)
        freed = asyncio.Event()
        steps: list[Step] = []
        lateness: list[float] = []
        in_flight: list[int] = []
        stalls = 0
        failures: list[str] = []

        def on_done(person: Person, step: Step, _done: asyncio.Future[None]) -> None:
            self.finished(person, step)
            if person.next_action() is not None:
                ready.append(person)
                freed.set()

        total = round(rate * duration)
        started_wall = time.time()
        t0 = time.monotonic()
        # Offering stops at the end of the window: a bot that cannot keep up is offered fewer
        # updates than planned (it is never given longer), so the run stays bounded.
        window_end = t0 + duration + 0.5  # half a second's grace for a late last slot
        for i in range(total):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not ready:
                stalls += 1  # every buyer is still waiting for the bot: it is not keeping up
                while not ready and time.monotonic() < window_end:
                    freed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(freed.wait(), window_end - time.monotonic())
            if time.monotonic() >= window_end:
                break
            lateness.append(time.monotonic() - target)
            in_flight.append(len(self.watch.by_user))
            # The buyer freed last goes next (a stack): a few buyers work through whole claims
            # (every kind of step in its share, Confirm included) and the others stand by for
            # when the bot is slow; a queue would walk all of them through their first steps.
            person = ready.pop()
            action = person.next_action()
            assert action is not None
            try:
                step = self.act(person, action)
            except (StepFailed, UserError) as exc:
                person.errors.append(str(exc))
                failures.append(str(exc))
                continue
            steps.append(step)
            step.done.add_done_callback(functools.partial(on_done, person, step))
        sending_seconds = min(time.monotonic(), window_end) - t0
        outstanding = [s.done for s in steps if not s.done.done()]
        if outstanding:
            await asyncio.wait(outstanding, timeout=drain_limit)
        finished = [s for s in steps if s.done_at is not None and s.first_answer_at is not None]
        first = [s.first_answer_at - s.sent_at for s in finished if s.first_answer_at]
        done = [s.done_at - s.sent_at for s in finished if s.done_at]
        errors = [e for p in people for e in p.errors][errors_before:]
        sent = len(steps)
        # the last send opens the last 1/rate slot: n sends on time take n/rate seconds
        achieved = sent / min(sending_seconds + 1 / rate, duration)
        # Is the bot keeping up? Latency per second of the run: a growing queue shows as a
        # growing latency from one second to the next.
        per_second: dict[int, list[float]] = {}
        for s in finished:
            per_second.setdefault(int(s.sent_at - started_wall), []).append(
                (s.first_answer_at or s.sent_at) - s.sent_at
            )
        trend = [round(1000 * _quantile(sorted(v), 0.5), 2) for _, v in sorted(per_second.items())]
        return {
            "users": len(people),
            "offered_rate": rate,
            "duration_seconds": duration,
            "planned": total,
            "sent": sent,
            "answered": len(finished),
            "achieved_rate": round(achieved, 1),
            # steps the bot finished within the window: below the offered rate when it lags
            "handled_rate": round(
                sum(1 for s in finished if s.done_at and s.done_at <= started_wall + duration)
                / duration,
                1,
            ),
            "stalls": stalls,
            "errors": len(errors),
            "first_errors": (errors + failures)[:5],
            "pacing_lateness_ms": _percentiles(lateness),
            "in_flight_max": max(in_flight, default=0),
            "in_flight_mean": round(sum(in_flight) / len(in_flight), 2) if in_flight else 0,
            "first_answer_ms": _percentiles(first),
            "step_done_ms": _percentiles(done),
            "median_first_answer_ms_by_second": trend,
            "claims_filed": sum(p.finished_rounds for p in people) - filed_before,
        }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50": round(1000 * _quantile(ordered, 0.50), 2),
        "p95": round(1000 * _quantile(ordered, 0.95), 2),
        "p99": round(1000 * _quantile(ordered, 0.99), 2),
        "max": round(1000 * ordered[-1], 2),
        "mean": round(1000 * sum(ordered) / len(ordered), 2),
    }


SCRIPTS: dict[str, tuple[tuple[str, str], ...]] = {
    "filing": FILING_SCRIPT,
    "echo": (("send", "{echo}"),),
    "bind": (("send", "{text}"),),
}


def add_routes(app: web.Application) -> None:
    driver: dict[str, Driver] = {}
    paced_people: dict[int, Person] = {}

    def the_driver() -> Driver:
        if "driver" not in driver:
            driver["driver"] = Driver(app[WORLD])
        return driver["driver"]

    async def backlog(request: web.Request) -> web.Response:
        body = await request.json()
        result = await the_driver().backlog(
            [int(u) for u in body["users"]],
            int(body["messages"]),
            float(body.get("time_limit", 120)),
        )
        return web.json_response(result)

    async def closed(request: web.Request) -> web.Response:
        body = await request.json()
        script = SCRIPTS[body["kind"]]
        rounds = int(body.get("rounds", 1))
        people = [Person(int(u), script, rounds) for u in body["users"]]
        tokens = body.get("texts")
        texts = {int(k): str(v) for k, v in tokens.items()} if tokens else None
        result = await the_driver().closed(people, float(body.get("time_limit", 120)), texts)
        return web.json_response({"kind": body["kind"], **result})

    def buyers(users: list[Any], rounds: int) -> list[Person]:
        # The same buyers across paced runs: each goes on where it stopped, and never files
        # more than ``rounds`` claims in all.
        return [
            paced_people.setdefault(int(u), Person(int(u), FILING_SCRIPT, rounds)) for u in users
        ]

    async def stagger(request: web.Request) -> web.Response:
        body = await request.json()
        people = buyers(body["users"], int(body.get("rounds", 1_000_000)))
        return web.json_response({"warm_up_steps": await the_driver().stagger(people)})

    async def paced(request: web.Request) -> web.Response:
        body = await request.json()
        people = buyers(body["users"], int(body.get("rounds", 1_000_000)))
        result = await the_driver().paced(
            people,
            float(body["rate"]),
            float(body["duration"]),
            float(body.get("drain_limit", 10)),
        )
        return web.json_response(result)

    async def last_seq(request: web.Request) -> web.Response:
        calls = app[WORLD].calls
        return web.json_response({"seq": calls[-1]["seq"] if calls else 0})

    async def start_driver(app: web.Application) -> None:
        the_driver()  # watch the call log from the first call on

    app.router.add_post("/bench/backlog", backlog)
    app.router.add_post("/bench/closed", closed)
    app.router.add_post("/bench/stagger", stagger)
    app.router.add_post("/bench/paced", paced)
    app.router.add_get("/bench/seq", last_seq)
    app.on_startup.append(start_driver)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.filing_driver")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = create_app(token=DEFAULT_TOKEN, flood_control=False)
    add_routes(app)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
