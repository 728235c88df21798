"""Pacing sends under Telegram's flood limits, so that a 429 is the exception, not the plan.

Telegram's Bots FAQ publishes the limits the Bot API enforces on a bot's messages: about one
message per second to one private chat (a short burst passes), twenty per minute to one
group (all topics of a forum together), and about thirty per second overall; a bot that
sends faster is answered ``429 Too Many Requests`` with a ``retry_after``. (The Bot API spec
itself only names the paid broadcast that lifts the overall limit.) :class:`FloodGate` keeps
one token bucket per chat and one overall, and makes each send wait for a token of both —
waiting, not refusing, so a backlog drains at the limit. A 429 that still comes back pauses
that chat for its ``retry_after``.

Buckets hand out *reservations*: a send that takes a token not yet refilled is told how long
to wait, and the next one queues behind it, so concurrent senders never overshoot together.
``scale`` speeds everything up for a sped-up sandbox (tests, the demo); it is 1 in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SendLimits:
    """Telegram's published limits; the defaults are the real ones."""

    overall_per_second: float = 30.0
    overall_burst: float = 30.0
    private_per_second: float = 1.0
    private_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 20.0
    scale: float = 1.0
    # Tokens of each burst left unused. Telegram counts a send when it arrives, this gate when
    # it leaves; a token in hand absorbs the difference (a first request slower than the next,
    # jitter), so pacing at the full rate does not run into a 429. The rate is not reduced.
    chat_slack: float = 1.0
    overall_slack: float = 2.0
    # ... and at least this long a stretch of the overall rate, whichever is more tokens.
    overall_slack_seconds: float = 0.05


@dataclass
class Bucket:
    """``capacity`` tokens, refilled at ``rate`` per second; tokens may go below zero, which
    is how far ahead sends have been promised."""

    capacity: float
    rate: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, now: float, count: float = 1.0) -> float:
        """Take ``count`` tokens; the seconds to wait until they exist."""
        self.refill(now)
        self.tokens -= count
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, now: float, count: float = 1.0) -> bool:
        self.refill(now)
        if self.tokens < count:
            return False
        self.tokens -= count
        return True


@dataclass
class FloodGate:
    limits: SendLimits = field(default_factory=SendLimits)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _chats: dict[int, Bucket] = field(default_factory=dict)
    _overall: Bucket | None = None
    _paused: dict[int, float] = field(default_factory=dict)

    @staticmethod
    def is_group(chat_id: int) -> bool:
        """Groups, supergroups and channels have negative ids; users positive."""
        return chat_id < 0

    def _chat(self, chat_id: int, now: float) -> Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 10_000:
                self._forget_idle(now)
            lim = self.limits
            if self.is_group(chat_id):
                capacity, rate = lim.group_burst, lim.group_per_minute / 60
            else:
                capacity, rate = lim.private_burst, lim.private_per_second
            capacity = max(1.0, capacity - lim.chat_slack)
            bucket = Bucket(capacity, rate * lim.scale, capacity, now)
            self._chats[chat_id] = bucket
        return bucket

    def _all(self, now: float) -> Bucket:
        if self._overall is None:
            lim = self.limits
            rate = lim.overall_per_second * lim.scale
            slack = max(lim.overall_slack, rate * lim.overall_slack_seconds)
            capacity = max(1.0, lim.overall_burst - slack)
            self._overall = Bucket(capacity, rate, capacity, now)
        return self._overall

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets of chats that are full again: they would be made the same."""
        for chat_id, bucket in list(self._chats.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity and self._paused.get(chat_id, 0) <= now:
                del self._chats[chat_id]
                self._paused.pop(chat_id, None)

    async def acquire(self, chat_id: int, count: int = 1) -> None:
        """Wait until ``count`` sends to ``chat_id`` fit both the chat's and the overall
        budget, and spend them. One chat's sends must come from one task at a time."""
        paused = self._paused.get(chat_id, 0.0) - self.clock()
        if paused > 0:
            await self.sleep(paused)
        wait = self._chat(chat_id, self.clock()).reserve(self.clock(), count)
        if wait > 0:
            await self.sleep(wait)
        wait = self._all(self.clock()).reserve(self.clock(), count)
        if wait > 0:
            await self.sleep(wait)

    def try_acquire(self, chat_id: int, count: int = 1) -> bool:
        """Spend ``count`` sends now if both budgets have them; never waits."""
        now = self.clock()
        if self._paused.get(chat_id, 0.0) > now:
            return False
        chat, overall = self._chat(chat_id, now), self._all(now)
        chat.refill(now)
        overall.refill(now)
        need = float(count)
        if chat.tokens < min(need, chat.capacity) or overall.tokens < min(need, overall.capacity):
            return False
        chat.tokens -= need
        overall.tokens -= need
        return True

    def pause(self, chat_id: int, retry_after: float) -> None:
        """Telegram said 429: nothing more to this chat for ``retry_after`` seconds."""
        until = self.clock() + retry_after / self.limits.scale
        self._paused[chat_id] = max(self._paused.get(chat_id, 0.0), until)
        bucket = self._chat(chat_id, self.clock())
        bucket.tokens = min(bucket.tokens, 0.0)


BACKOFF_BASE_S, BACKOFF_CAP_S = 2, 600


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones (5xx, network errors):
    2, 4, 8 … 10 minutes."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


# One gate per bot token in this process (every Bot object of a token shares Telegram's limits).
_GATES: dict[tuple[str, float], FloodGate] = {}


def gate_for(token: str, limits: SendLimits) -> FloodGate:
    key = (token, limits.scale)
    gate = _GATES.get(key)
    if gate is None or gate.limits != limits:
        gate = _GATES[key] = FloodGate(limits)
    return gate


def forget_gates() -> None:
    """Start every gate afresh (tests that moved a gate's clock by hand)."""
    _GATES.clear()
