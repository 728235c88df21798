"""Amounts staff type (a goodwill refund, a compensation): read without floats, checked
against what the step allows before anything is done, and every refusal says what to type.

The services check the same bounds, but their refusal can only name the amount in minor
units ("10000000" for 100000.00 typed); here the person is answered in their own terms. A
refusal shows what was typed shortened: a reply must fit Telegram's 4096 characters whatever
was sent, and text longer than :data:`MAX_AMOUNT_CHARS` is no amount anyway.
"""

from __future__ import annotations

import html
import logging

from bot import limits
from bot.conversations.context import Ctx
from bot.conversations.model import Screen
from workflow.errors import InvalidAmount
from workflow.money import MINOR_UNITS, Money

log = logging.getLogger(__name__)

# Longer than any amount a person would type; anything longer is refused without parsing.
MAX_AMOUNT_CHARS = 24


def shown(text: str) -> str:
    """What was typed, as a refusal may quote it: its first :data:`MAX_AMOUNT_CHARS`
    characters (then "…"), escaped."""
    return html.escape(limits.clip(text, MAX_AMOUNT_CHARS + 1))


def example(currency: str, major: int = 30, fraction: str = "") -> str:
    """An amount to show as what to type in ``currency``, with as many decimals as it has:
    ``30.00`` for yuan, ``30`` for yen (whose "30.00" would itself be refused)."""
    digits = MINOR_UNITS.get(currency, 2)
    return f"{major}.{fraction.ljust(digits, '0')[:digits]}" if digits else str(major)


def typed_amount(ctx: Ctx, text: str, currency: str, most: int, least: int = 1) -> Money | Screen:
    """``text`` as an amount from ``least`` to ``most`` minor units, or the refusal to show."""
    text = text.strip()
    try:
        if len(text) > MAX_AMOUNT_CHARS:
            raise InvalidAmount(text)
        amount = Money.parse(text, currency)
    except InvalidAmount:
        log.info("user %s typed no amount: %r", ctx.incoming.user.id, text[:MAX_AMOUNT_CHARS])
        return Screen(
            ctx.t(
                "amount.unreadable",
                value=shown(text),
                currency=currency,
                example=example(currency),
            )
        )
    if not least <= amount.amount <= most:
        log.info("user %s typed %s, outside %s..%s", ctx.incoming.user.id, amount, least, most)
    if amount.amount < least:
        return Screen(ctx.t("amount.not_positive"))
    if amount.amount > most:
        return Screen(
            ctx.t("amount.too_much", amount=amount.format(), most=Money(most, currency).format())
        )
    return amount
