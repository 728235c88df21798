"""Moments as people read them: in the platform's time zone, in the reader's language.

Stored times are UTC; notifications carry them as ISO strings in their payloads. Texts show
``2 Dec 2026, 14:00`` / ``2026年12月2日 14:00`` in the configured zone (``AFTERSALES_TIMEZONE``,
default Asia/Shanghai), with the zone's offset so nobody has to guess.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Shanghai"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@cache
def zone(name: str) -> tzinfo:
    """The named zone; UTC (and one log line) when this machine has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r is unknown here; showing UTC", name)
        return UTC


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset()
    if not delta:
        return "UTC"
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def when(moment: datetime, lang: str, zone_name: str = DEFAULT_ZONE, *, short: bool = False) -> str:
    """A date and time to read; ``short`` leaves out the year and the zone (timelines)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone(zone_name))
    if lang == "zh-CN":
        day = f"{local.month}月{local.day}日"
        text = day if short else f"{local.year}年{day}"
    else:
        day = f"{local.day} {_MONTHS[local.month - 1]}"
        text = day if short else f"{day} {local.year},"
    text = f"{text} {local:%H:%M}"
    if short:
        return text
    return f"{text}（{_offset(local)}）" if lang == "zh-CN" else f"{text} ({_offset(local)})"


def day(moment: datetime, zone_name: str = DEFAULT_ZONE) -> str:
    """The date, as ``2026-12-02``, in the configured zone: the day a person there lives it
    (a moment after 16:00 UTC is already the next day in Shanghai)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(zone(zone_name)):%Y-%m-%d}"


def parse(value: object) -> datetime | None:
    """A payload's ISO timestamp, or None for anything else."""
    if not isinstance(value, str) or len(value) < 16 or value[4] != "-" or "T" not in value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
