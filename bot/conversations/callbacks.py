"""Typed callback data: one class per button family, packed under Telegram's 64-byte limit.

Never parse callback strings by hand: :func:`unpack` turns data back into the class it was
packed from, or raises :class:`BadCallback` for anything forged, truncated or outdated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Self, get_type_hints

from bot import limits

MAX_CALLBACK_BYTES = limits.CALLBACK_DATA_BYTES
SEP = ":"
# Numbers in buttons are ids, versions and pages: far below this. Anything larger was forged,
# and would overflow the database's 64-bit integers (a page's offset, a claim id).
MAX_NUMBER = 2**53


class BadCallback(ValueError):
    pass


_REGISTRY: dict[str, type[Callback]] = {}


class Callback:
    prefix: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.prefix in _REGISTRY:
            raise TypeError(f"callback prefix {cls.prefix!r} used twice")
        _REGISTRY[cls.prefix] = cls

    def pack(self) -> str:
        parts = [self.prefix]
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            text = str(int(value)) if isinstance(value, bool) else str(value)
            if SEP in text or not text:
                raise ValueError(f"{f.name}={text!r} cannot be packed")
            parts.append(text)
        data = SEP.join(parts)
        if len(data.encode()) > MAX_CALLBACK_BYTES:
            raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data}")
        return data

    @classmethod
    def _from(cls, values: list[str]) -> Self:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        if len(values) != len(fields):
            raise BadCallback("wrong number of fields")
        hints = get_type_hints(cls)
        kwargs: dict[str, object] = {}
        for f, raw in zip(fields, values, strict=True):
            kind = hints[f.name]
            try:
                if kind is int:
                    if not (raw.lstrip("-").isascii() and raw.lstrip("-").isdigit()):
                        raise ValueError(raw)
                    if abs(number := int(raw)) > MAX_NUMBER:  # no id, version or page is
                        raise ValueError(raw)
                    kwargs[f.name] = number
                elif kind is bool:
                    kwargs[f.name] = {"1": True, "0": False}[raw]
                else:
                    kwargs[f.name] = raw
            except (KeyError, ValueError) as exc:
                raise BadCallback(f"bad {f.name}") from exc
        return cls(**kwargs)


def unpack(data: str | None) -> Callback:
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
        raise BadCallback("empty or too long")
    prefix, *values = data.split(SEP)
    cls = _REGISTRY.get(prefix)
    if cls is None:
        raise BadCallback("unknown prefix")
    return cls._from(values)


@dataclass(frozen=True)
class ClaimAction(Callback):
    """A step on a claim, drawn for the claim's version at the time (stale → out of date)."""

    prefix: ClassVar[str] = "c"
    claim_id: int
    action: str
    version: int


@dataclass(frozen=True)
class ClaimFlowchart(Callback):
    """Send the lifecycle flowchart lit for a claim (no version: a picture changes nothing)."""

    prefix: ClassVar[str] = "cf"
    claim_id: int


@dataclass(frozen=True)
class DraftChoice(Callback):
    """A choice in the buyer's claim dialog (order, line, type, reason, confirm…)."""

    prefix: ClassVar[str] = "d"
    step: str
    value: str


@dataclass(frozen=True)
class PageOf(Callback):
    """Paging through a list (orders, claims, queue)."""

    prefix: ClassVar[str] = "p"
    listing: str
    page: int


@dataclass(frozen=True)
class MenuChoice(Callback):
    prefix: ClassVar[str] = "m"
    item: str


@dataclass(frozen=True)
class LanguageChoice(Callback):
    prefix: ClassVar[str] = "l"
    language: str
