"""The simulated providers behave like real ones: later answers, failures, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflow.ports import ProviderUnavailable, RefundResult
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway


async def _drain(gateway: SimulatedPaymentGateway) -> list[RefundResult]:
    got: list[RefundResult] = []

    async def handler(result: RefundResult) -> None:
        got.append(result)

    await gateway.deliver_callbacks(handler)
    return got


async def test_refund_answers_come_later_once_each_and_the_key_is_idempotent() -> None:
    clock = ManualClock()
    gateway = SimulatedPaymentGateway(clock, seed=3, delay=timedelta(minutes=10))
    ref = await gateway.request_refund("k1", "O-1", 500, "CNY")
    assert await gateway.request_refund("k1", "O-1", 500, "CNY") == ref
    assert await _drain(gateway) == []
    assert await gateway.status("k1") is None
    clock.advance(timedelta(minutes=15))
    [result] = await _drain(gateway)
    assert result.idempotency_key == "k1"
    assert result.succeeded
    assert await _drain(gateway) == []
    assert await gateway.status("k1") == result


async def test_failures_are_deterministic_under_a_seed() -> None:
    async def outcomes(seed: int) -> list[bool]:
        clock = ManualClock()
        gateway = SimulatedPaymentGateway(clock, seed=seed, failure_rate=0.5)
        for n in range(40):
            await gateway.request_refund(f"k{n}", "O", 1, "CNY")
        clock.advance(timedelta(days=1))
        return [r.succeeded for r in sorted(await _drain(gateway), key=lambda r: r.idempotency_key)]

    first = await outcomes(11)
    assert first == await outcomes(11)
    assert 5 < first.count(False) < 35
    assert first != await outcomes(12)


async def test_an_unavailable_gateway_raises_and_remembers_nothing() -> None:
    gateway = SimulatedPaymentGateway(ManualClock(), seed=1, unavailable_rate=1.0)
    with pytest.raises(ProviderUnavailable):
        await gateway.request_refund("k", "O", 1, "CNY")
    assert gateway.requests == {}


async def test_a_return_parcel_moves_only_once_handed_over() -> None:
    clock = ManualClock()
    carrier = SimulatedCarrier(clock, seed=5, transit=timedelta(days=2))
    waybill = await carrier.create_waybill("w1", "return-1")
    assert waybill == await carrier.create_waybill("w1", "return-1")
    assert waybill.qr_payload.endswith("ref=return-1")
    clock.advance(timedelta(days=5))
    assert [e.status for e in await carrier.tracking(waybill.tracking_number)] == ["created"]
    carrier.hand_over(waybill.tracking_number)
    assert [e.status for e in await carrier.tracking(waybill.tracking_number)] == [
        "created",
        "in_transit",
    ]
    clock.advance(timedelta(days=2))
    statuses = [e.status for e in await carrier.tracking(waybill.tracking_number)]
    assert statuses == ["created", "in_transit", "delivered"]


async def test_a_replacement_ships_at_once() -> None:
    clock = ManualClock()
    carrier = SimulatedCarrier(clock, seed=5)
    waybill = await carrier.create_waybill("w2", "replacement-9")
    assert [e.status for e in await carrier.tracking(waybill.tracking_number)] == [
        "created",
        "in_transit",
    ]
