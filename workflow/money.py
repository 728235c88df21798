"""Money as integer minor units plus an ISO 4217 currency code.

Floats never touch an amount: rounding errors in refunds and settlements are exactly the kind
of dispute after-sales exists to end. Arithmetic across currencies is refused outright.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.errors import CurrencyMismatch, InvalidAmount

# Minor units per major unit, for parsing and display only; amounts are stored in minor units.
MINOR_UNITS: dict[str, int] = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0}


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount of one currency, in minor units (fen, cents)."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise InvalidAmount(str(self.amount))
        if len(self.currency) != 3 or not self.currency.isupper():
            raise InvalidAmount(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def share(self, numerator: int, denominator: int) -> Money:
        """The part numerator/denominator of this amount, rounded half away from zero."""
        if denominator <= 0:
            raise InvalidAmount(f"{numerator}/{denominator}")
        q, r = divmod(abs(self.amount) * numerator, denominator)
        if 2 * r >= denominator:
            q += 1
        return Money(q if self.amount >= 0 else -q, self.currency)

    def format(self) -> str:
        """'12.34 CNY' — for people, never for storage."""
        digits = MINOR_UNITS.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), 10**digits)
        return (
            f"{sign}{major}.{minor:0{digits}d} {self.currency}"
            if digits
            else f"{sign}{major} {self.currency}"
        )

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse '12', '12.3', '12.34' or '1,234.5' typed by a person into minor units, without
        floats. A comma is taken only as a thousands separator in its place ('1,234'), never
        as a decimal mark: '0,50' is refused rather than read as 50."""
        digits = MINOR_UNITS.get(currency, 2)
        cleaned = _ungrouped(text.strip())
        if not cleaned.isascii():
            raise InvalidAmount(text)
        if cleaned.startswith("-") or not cleaned:
            raise InvalidAmount(text)
        major, _, minor = cleaned.partition(".")
        if not major.isdigit() and major != "":
            raise InvalidAmount(text)
        if minor and (not minor.isdigit() or len(minor) > digits):
            raise InvalidAmount(text)
        if major == "" and minor == "":
            raise InvalidAmount(text)
        return cls(
            int(major or "0") * 10**digits + int((minor or "0").ljust(digits, "0") or "0"), currency
        )


def _ungrouped(text: str) -> str:
    """'1,234,567.8' → '1234567.8'; text whose commas are not thousands groups unchanged but
    for a marker that cannot parse."""
    if "," not in text:
        return text
    whole, dot, fraction = text.partition(".")
    head, *groups = whole.split(",")
    if not (1 <= len(head) <= 3 and all(len(g) == 3 for g in groups)):
        return "?"
    return "".join((head, *groups)) + dot + fraction
