"""Configuration from the environment (prefix ``AFTERSALES_``) or a ``.env`` file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workflow.claims import ClaimType, Reason
from workflow.rules import ReviewPolicy

TELEGRAM_API_URL = "https://api.telegram.org"


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path(user_data_dir('aftersales')) / 'aftersales.db'}"


ENV_PREFIX = "AFTERSALES_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    lang: str = "en"

    # Telegram
    bot_token: str | None = None
    # For binding links (t.me/<username>); asked of the Bot API with the token when unset.
    bot_username: str | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    admins: Annotated[list[int], NoDecode] = Field(default_factory=list)
    staff_chat_id: int | None = None
    staff_language: str = "zh-CN"
    # Sends are paced under Telegram's flood limits; >1 only against a sped-up sandbox.
    send_rate_scale: float = Field(default=1.0, gt=0)
    # A sender that died holding messages: they go out again after this many seconds.
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    # The zone times are shown in (an IANA name); stored times are UTC.
    timezone: str = "Asia/Shanghai"

    # Review policy (amounts in minor units)
    no_reason_window_days: int = 7
    claim_window_days: int = 30
    manual_review_above: int = 100_000
    # The currency manual_review_above is in, and limits for other currencies, e.g.
    # AFTERSALES_MANUAL_REVIEW_ABOVE_IN=JPY=2000000,USD=15000 (minor units). A claim in a
    # currency with no limit set always goes to a person.
    manual_review_currency: Annotated[str, AfterValidator(str.upper)] = "CNY"
    manual_review_above_in: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    max_claims_per_30_days: int = 3
    review_sla_hours: int = 24
    info_deadline_days: int = 3
    return_deadline_days: int = 7
    return_scan_grace_hours: int = 24
    return_reminder_before_hours: int = 48
    compensation_deadline_days: int = 2
    settlement_hold_hours: int = 0
    shipping_sla_hours: int = 48
    parcel_overdue_days: int = 7
    # "reason:type" pairs that always go to a person, e.g.
    # AFTERSALES_ALWAYS_MANUAL=other:refund_only,quality_issue:refund_only (default: the
    # domain's list; an empty value means none).
    always_manual: Annotated[frozenset[tuple[Reason, ClaimType]] | None, NoDecode] = None
    damage_needs_evidence: bool = True
    overdue_opens_claim: bool = True

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        """``AFTERSALES_ADMINS=123,456`` (or a JSON list) → [123, 456]."""
        if isinstance(value, str):
            text = value.strip().strip("[]")
            return [int(part) for part in text.replace(" ", "").split(",") if part]
        return value

    @field_validator("manual_review_above_in", mode="before")
    @classmethod
    def _split_limits(cls, value: object) -> object:
        """``JPY=2000000,USD=15000`` → {"JPY": 2000000, "USD": 15000}."""
        if not isinstance(value, str):
            return value
        limits: dict[str, int] = {}
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            currency, _, amount = part.partition("=")
            if not currency.isalpha() or not amount.isdigit():
                raise ValueError(f"{part!r} is not CURRENCY=minor units, like JPY=2000000")
            limits[currency.upper()] = int(amount)
        return limits

    @field_validator("always_manual", mode="before")
    @classmethod
    def _split_pairs(cls, value: object) -> object:
        """``other:refund_only,quality_issue:refund_only`` → {(OTHER, REFUND_ONLY), ...}."""
        if not isinstance(value, str):
            return value
        pairs = set()
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            reason, _, claim_type = part.partition(":")
            try:
                pairs.add((Reason(reason), ClaimType(claim_type)))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not a reason:claim_type pair") from exc
        return frozenset(pairs)

    def policy(self) -> ReviewPolicy:
        default = ReviewPolicy()
        return ReviewPolicy(
            no_reason_window=timedelta(days=self.no_reason_window_days),
            claim_window=timedelta(days=self.claim_window_days),
            manual_review_above=self.manual_review_above,
            manual_review_currency=self.manual_review_currency,
            manual_review_above_in=tuple(sorted(self.manual_review_above_in.items())),
            max_claims_per_30_days=self.max_claims_per_30_days,
            review_sla=timedelta(hours=self.review_sla_hours),
            info_deadline=timedelta(days=self.info_deadline_days),
            return_deadline=timedelta(days=self.return_deadline_days),
            return_scan_grace=timedelta(hours=self.return_scan_grace_hours),
            return_reminder_before=timedelta(hours=self.return_reminder_before_hours),
            compensation_deadline=timedelta(days=self.compensation_deadline_days),
            settlement_hold=timedelta(hours=self.settlement_hold_hours),
            shipping_sla=timedelta(hours=self.shipping_sla_hours),
            parcel_overdue=timedelta(days=self.parcel_overdue_days),
            always_manual=default.always_manual
            if self.always_manual is None
            else self.always_manual,
            damage_needs_evidence=self.damage_needs_evidence,
            overdue_opens_claim=self.overdue_opens_claim,
        )


def settings_problem(exc: ValueError) -> str:
    """What is wrong with the settings, in one line: the variable and why (pydantic's report
    runs to several lines and a link)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = errors()
    if not found:
        return type(exc).__name__
    first = found[0]
    where = "_".join(str(part) for part in first.get("loc", ())) or "?"
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{ENV_PREFIX}{where.upper()}: {message}{more}"
