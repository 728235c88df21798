"""Flood control as Telegram applies it to a bot's sends.

Telegram answers a bot that sends faster than about one message per second to a private
chat (a short burst is tolerated), twenty per minute to a group (all topics of a forum share
one budget) or thirty per second overall with ``429 Too Many Requests: retry after N``. A bot
that never sees a 429 in tests will see one in production, so the sandbox enforces the same
three token buckets. ``scale`` speeds the refill up for fast tests (scale=10 refills ten
times faster); ``retry_after`` stays a whole number of seconds, at least 1, as Telegram's is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.spec import ApiError


@dataclass
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now


@dataclass(frozen=True)
class Rates:
    """Telegram's published limits; the defaults are the real ones."""

    private_per_second: float = 1.0
    private_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 20.0
    overall_per_second: float = 30.0
    overall_burst: float = 30.0


@dataclass
class FloodControl:
    rates: Rates = field(default_factory=Rates)
    scale: float = 1.0
    enabled: bool = True
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[object, Bucket] = field(default_factory=dict)

    def _bucket(self, key: object, capacity: float, per_second: float, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(capacity, per_second * self.scale, capacity, now)
        bucket.refill(now)
        return bucket

    def take(self, chat_id: int, is_private: bool, count: int = 1) -> None:
        """Spend ``count`` sends to ``chat_id`` or raise the 429 Telegram would answer."""
        if not self.enabled:
            return
        now = self.clock()
        r = self.rates
        if is_private:
            chat = self._bucket(("chat", chat_id), r.private_burst, r.private_per_second, now)
        else:
            chat = self._bucket(("chat", chat_id), r.group_burst, r.group_per_minute / 60, now)
        overall = self._bucket("overall", r.overall_burst, r.overall_per_second, now)
        buckets = (chat, overall)
        needs = [min(float(count), b.capacity) for b in buckets]
        waits = [
            max(0.0, (need - b.tokens) / b.per_second)
            for need, b in zip(needs, buckets, strict=True)
        ]
        if max(waits) > 0:
            raise too_many_requests(max(1, math.ceil(max(waits))))
        for need, bucket in zip(needs, buckets, strict=True):
            bucket.tokens -= need

    def reset(self) -> None:
        self._buckets.clear()


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )
