"""Injected failures, so a bot's retry and idempotency paths can be tested on purpose.

A fault matches calls to one Bot API method (or ``*``) and either answers with a 5xx, adds
latency, drops the connection (before or after the call took effect), answers a forced
429, or refuses the call with a 400 and the ``description`` given (what Telegram says of a
message it will not take, e.g. a file identifier it no longer knows). ``count`` bounds how many calls it hits; ``probability`` with ``seed`` makes random
faults reproducible.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("5xx", "latency", "drop", "429", "400")


@dataclass
class Fault:
    id: int
    kind: str
    method: str = "*"
    status: int = 500
    delay_ms: int = 0
    retry_after: int = 1
    count: int | None = None  # calls still to hit; None = until removed
    probability: float = 1.0
    when: str = "before"  # drop: before the call takes effect, or after
    description: str = "message can't be sent"  # 400: after "Bad Request: "
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults:
    rules: list[Fault] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        when = str(spec.get("when", "before"))
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if "seed" in spec:
            self.rng = random.Random(spec["seed"])
        count = spec.get("count")
        fault = Fault(
            id=next(self._ids),
            kind=kind,
            method=str(spec.get("method", "*")),
            status=int(spec.get("status", 500)),
            delay_ms=int(spec.get("delay_ms", 0)),
            retry_after=int(spec.get("retry_after", 1)),
            count=None if count is None else int(count),
            probability=float(spec.get("probability", 1.0)),
            when=when,
            description=str(spec.get("description", "message can't be sent")),
        )
        if not 500 <= fault.status <= 599:
            raise ValueError("status must be a 5xx code")
        self.rules.append(fault)
        return fault

    def draw(self, method: str) -> list[Fault]:
        """The faults that hit this call (consuming their counts)."""
        hit = []
        for fault in self.rules:
            if fault.method not in ("*", method) or fault.count == 0:
                continue
            if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                continue
            fault.hits += 1
            if fault.count is not None:
                fault.count -= 1
            hit.append(fault)
        self.rules = [f for f in self.rules if f.count != 0]
        return hit

    def clear(self) -> None:
        self.rules.clear()
