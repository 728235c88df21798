"""Token buckets on a fake clock: burst, refill, shared group budget, scale."""

from __future__ import annotations

import pytest

from sandbox.flood import FloodControl, Rates
from sandbox.spec import ApiError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_private_chat_allows_a_short_burst_then_one_per_second() -> None:
    clock = Clock()
    flood = FloodControl(clock=clock)
    for _ in range(3):
        flood.take(1, is_private=True)
    with pytest.raises(ApiError) as caught:
        flood.take(1, is_private=True)
    assert caught.value.code == 429 and caught.value.parameters == {"retry_after": 1}
    flood.take(2, is_private=True)  # another chat has its own budget
    clock.now += 1.0
    flood.take(1, is_private=True)


def test_a_group_has_twenty_per_minute_shared_by_all_topics() -> None:
    clock = Clock()
    flood = FloodControl(clock=clock)
    for _ in range(20):
        flood.take(-100, is_private=False)
    with pytest.raises(ApiError) as caught:
        flood.take(-100, is_private=False)
    assert caught.value.description == "Too Many Requests: retry after 3"


def test_overall_limit_and_scale() -> None:
    clock = Clock()
    flood = FloodControl(clock=clock, rates=Rates(overall_burst=30), scale=10)
    for chat in range(30):
        flood.take(chat, is_private=True)
    with pytest.raises(ApiError):
        flood.take(99, is_private=True)
    clock.now += 0.1 / 30 * 10  # ten times faster: a token is back after 1/300 s
    flood.take(99, is_private=True)
