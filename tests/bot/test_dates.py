"""Moments as people read them: the platform's zone, the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import dates

NOON_UTC = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai


@pytest.mark.parametrize(
    ("lang", "short", "shown"),
    [
        ("en", False, "2 Dec 2026, 14:00 (UTC+8)"),
        ("zh-CN", False, "2026年12月2日 14:00（UTC+8）"),
        ("en", True, "2 Dec 14:00"),
        ("zh-CN", True, "12月2日 14:00"),
    ],
)
def test_a_moment_reads_in_the_zone_and_the_language(lang: str, short: bool, shown: str) -> None:
    assert dates.when(NOON_UTC, lang, "Asia/Shanghai", short=short) == shown


def test_naive_times_are_utc_and_other_zones_show_their_offset() -> None:
    naive = NOON_UTC.replace(tzinfo=None)  # SQLite hands these back
    assert dates.when(naive, "en", "UTC") == "2 Dec 2026, 06:00 (UTC)"
    assert dates.when(NOON_UTC, "en", "Asia/Kolkata").endswith("11:30 (UTC+5:30)")
    assert dates.when(NOON_UTC, "en", "America/New_York").endswith("01:00 (UTC-5)")


def test_an_unknown_zone_falls_back_to_utc_instead_of_failing() -> None:
    assert dates.when(NOON_UTC, "en", "Mars/Olympus_Mons") == "2 Dec 2026, 06:00 (UTC)"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2026-12-02T06:00:00+00:00", NOON_UTC),
        ("SO-1001", None),
        ("2026-12-02", None),  # a date alone is not a moment to convert
        ("2026-13-45T99:00", None),
        (42, None),
    ],
)
def test_only_iso_timestamps_in_payloads_are_taken_for_moments(
    value: object, parsed: datetime | None
) -> None:
    assert dates.parse(value) == parsed
