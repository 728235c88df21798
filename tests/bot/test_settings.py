"""Settings come from AFTERSALES_ variables or a .env file; the policy is built from them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from platformdirs import user_data_dir

from bot.settings import Settings
from workflow.claims import ClaimType, Reason
from workflow.rules import ReviewPolicy

POLICY_FIELDS = (
    "no_reason_window_days",
    "manual_review_above",
    "max_claims_per_30_days",
    "review_sla_hours",
    "info_deadline_days",
    "return_deadline_days",
    "compensation_deadline_days",
    "settlement_hold_hours",
    "shipping_sla_hours",
    "return_reminder_before_hours",
    "claim_window_days",
    "parcel_overdue_days",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AFTERSALES_ variable and no .env of the developer's leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("AFTERSALES_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_the_default_database_is_a_sqlite_file_in_the_user_data_directory() -> None:
    url = Settings().database_url
    assert url == f"sqlite+aiosqlite:///{Path(user_data_dir('aftersales')) / 'aftersales.db'}"


def test_the_default_policy_is_the_domains_default() -> None:
    assert Settings().policy() == ReviewPolicy()


def test_policy_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for number, name in enumerate(POLICY_FIELDS, start=2):
        monkeypatch.setenv(f"AFTERSALES_{name.upper()}", str(number * 10))
    policy = Settings().policy()
    assert policy.no_reason_window == timedelta(days=20)
    assert policy.manual_review_above == 30
    assert policy.max_claims_per_30_days == 40
    assert policy.review_sla == timedelta(hours=50)
    assert policy.info_deadline == timedelta(days=60)
    assert policy.return_deadline == timedelta(days=70)
    assert policy.compensation_deadline == timedelta(days=80)
    assert policy.settlement_hold == timedelta(hours=90)
    assert policy.shipping_sla == timedelta(hours=100)
    assert policy.return_reminder_before == timedelta(hours=110)
    assert policy.claim_window == timedelta(days=120)
    assert policy.parcel_overdue == timedelta(days=130)


def test_every_policy_setting_reaches_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing any one setting changes the policy (none is silently ignored)."""
    default = Settings().policy()
    for name in POLICY_FIELDS:
        monkeypatch.setenv(f"AFTERSALES_{name.upper()}", "12345")
        assert Settings().policy() != default, name
        monkeypatch.delenv(f"AFTERSALES_{name.upper()}")
    for name, value in [
        ("DAMAGE_NEEDS_EVIDENCE", "false"),
        ("OVERDUE_OPENS_CLAIM", "false"),
        ("ALWAYS_MANUAL", ""),
    ]:
        monkeypatch.setenv(f"AFTERSALES_{name}", value)
        assert Settings().policy() != default, name
        monkeypatch.delenv(f"AFTERSALES_{name}")


def test_every_field_of_the_policy_has_a_setting() -> None:
    """A new field in workflow.rules.ReviewPolicy needs a setting (with its unit) here."""
    settings = set(Settings.model_fields)
    for field in dataclasses.fields(ReviewPolicy):
        assert settings & {field.name, f"{field.name}_days", f"{field.name}_hours"}, field.name


def test_always_manual_pairs_are_read_from_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERSALES_ALWAYS_MANUAL", "other:refund_only, wrong_item:exchange")
    assert Settings().policy().always_manual == {
        (Reason.OTHER, ClaimType.REFUND_ONLY),
        (Reason.WRONG_ITEM, ClaimType.EXCHANGE),
    }
    monkeypatch.setenv("AFTERSALES_ALWAYS_MANUAL", "other:teleport")
    with pytest.raises(ValueError, match="'other:teleport' is not a reason:claim_type pair"):
        Settings()


def test_a_dotenv_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "AFTERSALES_DATABASE_URL=sqlite+aiosqlite:///from-dotenv.db\n"
        "AFTERSALES_MANUAL_REVIEW_ABOVE=5000\n"
        "AFTERSALES_LANG=zh-CN\n",
        encoding="utf-8",
    )
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///from-dotenv.db"
    assert settings.lang == "zh-CN"
    assert settings.policy().manual_review_above == 5000
    monkeypatch.setenv("AFTERSALES_MANUAL_REVIEW_ABOVE", "7000")
    assert Settings().policy().manual_review_above == 7000


def test_limits_for_other_currencies_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFTERSALES_MANUAL_REVIEW_ABOVE_IN", "jpy=2000000, USD=15000")
    monkeypatch.setenv("AFTERSALES_MANUAL_REVIEW_CURRENCY", "cny")  # codes in any case
    policy = Settings().policy()
    assert policy.review_limit("CNY") == 100_000
    assert policy.review_limit("JPY") == 2_000_000 and policy.review_limit("USD") == 15_000
    assert policy.review_limit("EUR") is None
    monkeypatch.setenv("AFTERSALES_MANUAL_REVIEW_ABOVE_IN", "JPY=lots")
    with pytest.raises(ValueError, match="JPY=lots"):
        Settings()


def test_a_bad_value_is_refused() -> None:
    with pytest.raises(ValueError, match="manual_review_above"):
        Settings(manual_review_above="a lot")  # type: ignore[arg-type]
