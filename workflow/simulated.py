"""Simulated providers: real implementations of the ports, deterministic under a seed.

They behave like the real thing in the ways that matter to the after-sales flow: answers come
later than requests (by the clock, not by sleeping), some requests fail, some calls do not get
through at all (:class:`ProviderUnavailable`), and the same idempotency key always gets the
same answer. Tests, the demo and the benchmarks use them; a real gateway or carrier adapter
would implement the same Protocols.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from workflow.claims import ShipmentStatus
from workflow.ports import Clock, ProviderUnavailable, RefundResult, TrackingEvent, Waybill


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told: sweeps and deadlines become testable without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("time only moves forward")
        self._now = moment


@dataclass
class _PendingRefund:
    result: RefundResult
    due: datetime
    delivered: bool = False


@dataclass
class SimulatedPaymentGateway:
    """Refund requests are accepted at once and settle later, succeeding or failing by seed."""

    clock: Clock
    seed: int = 0
    failure_rate: float = 0.0
    unavailable_rate: float = 0.0
    delay: timedelta = timedelta(minutes=5)
    requests: dict[str, _PendingRefund] = field(default_factory=dict)
    calls: int = 0

    def _roll(self, key: str, salt: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{salt}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    async def request_refund(
        self, idempotency_key: str, order_ref: str, amount: int, currency: str
    ) -> str:
        self.calls += 1
        if self._roll(f"{idempotency_key}:{self.calls}", "down") < self.unavailable_rate:
            raise ProviderUnavailable("payment gateway timed out")
        existing = self.requests.get(idempotency_key)
        if existing is not None:
            return existing.result.provider_ref
        ref = "rf_" + hashlib.sha256(f"{self.seed}:{idempotency_key}".encode()).hexdigest()[:16]
        failed = self._roll(idempotency_key, "fail") < self.failure_rate
        result = RefundResult(
            idempotency_key=idempotency_key,
            succeeded=not failed,
            provider_ref=ref,
            failure="card_declined" if failed else None,
        )
        jitter = self._roll(idempotency_key, "delay")
        due = self.clock.now() + self.delay * (0.5 + jitter)
        self.requests[idempotency_key] = _PendingRefund(result, due)
        return ref

    async def status(self, idempotency_key: str) -> RefundResult | None:
        pending = self.requests.get(idempotency_key)
        if pending is None or pending.due > self.clock.now():
            return None
        return pending.result

    async def deliver_callbacks(self, handler: Callable[[RefundResult], Awaitable[object]]) -> int:
        """Call ``handler`` for every result whose time has come, once each (like a webhook)."""
        now = self.clock.now()
        delivered = 0
        for pending in sorted(
            self.requests.values(), key=lambda p: (p.due, p.result.idempotency_key)
        ):
            if not pending.delivered and pending.due <= now:
                await handler(pending.result)
                pending.delivered = True
                delivered += 1
        return delivered


@dataclass
class _Parcel:
    waybill: Waybill
    events: list[TrackingEvent]
    picked_up: datetime | None = None


@dataclass
class SimulatedCarrier:
    """Issues waybills with tracking numbers and QR payloads; parcels move on the clock.

    A return parcel starts moving when it is handed over (:meth:`hand_over`, the buyer
    scanning the QR code at a drop-off point); a replacement starts at once.
    """

    clock: Clock
    seed: int = 0
    name: str = "simulated-express"
    transit: timedelta = timedelta(days=2)
    unavailable_rate: float = 0.0
    parcels: dict[str, _Parcel] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def _roll(self, key: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    async def create_waybill(self, idempotency_key: str, reference: str) -> Waybill:
        self.calls += 1
        if self._roll(f"down:{idempotency_key}:{self.calls}") < self.unavailable_rate:
            raise ProviderUnavailable("carrier API timed out")
        if idempotency_key in self.by_key:
            return self.parcels[self.by_key[idempotency_key]].waybill
        rng = random.Random(f"{self.seed}:{idempotency_key}")
        tracking = f"SX{rng.randrange(10**11, 10**12)}"
        waybill = Waybill(self.name, tracking, f"https://track.example/{tracking}?ref={reference}")
        now = self.clock.now()
        self.parcels[tracking] = _Parcel(
            waybill, [TrackingEvent(tracking, ShipmentStatus.CREATED.value, now, "label created")]
        )
        self.by_key[idempotency_key] = tracking
        if reference.startswith("replacement"):
            self.hand_over(tracking)
        return waybill

    def hand_over(self, tracking_number: str, at: datetime | None = None) -> None:
        parcel = self.parcels[tracking_number]
        if parcel.picked_up is not None:
            return
        start = at or self.clock.now()
        parcel.picked_up = start
        parcel.events.append(
            TrackingEvent(tracking_number, ShipmentStatus.IN_TRANSIT.value, start, "picked up")
        )
        parcel.events.append(
            TrackingEvent(
                tracking_number, ShipmentStatus.DELIVERED.value, start + self.transit, "delivered"
            )
        )

    async def tracking(self, tracking_number: str) -> Sequence[TrackingEvent]:
        parcel = self.parcels.get(tracking_number)
        if parcel is None:
            return []
        now = self.clock.now()
        return [event for event in parcel.events if event.at <= now]
