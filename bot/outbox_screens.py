"""How an outbox message reads in its reader's language: the text with its dates, amounts and
rule reasons filled in, an Open claim button, a picture for some (the return waybill's QR
code) — and when two messages to one chat are told as one.

Kept apart from :mod:`bot.delivery` (which decides when and where a message goes) so the
conversations can register pictures and the demo can word amounts without the delivery
machinery; nothing here talks to Telegram.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from bot import dates, i18n, limits
from bot.conversations.callbacks import ClaimAction
from bot.conversations.cards import rule_reason
from bot.conversations.context import Services
from bot.conversations.model import Button, Screen
from storage import tables as t
from workflow.money import Money
from workflow.notifications import TOLD_WITH

# Optional pictures for some messages (e.g. the return waybill's QR code): template → PNG.
PICTURES: dict[str, Callable[[dict[str, Any]], bytes | None]] = {}


def money_texts(payload: Mapping[str, Any]) -> dict[str, str]:
    """A message's amounts as text (``amount_text`` and the like, in minor units no more). A
    consignor's settlement total is a change to their account, not a balance: it is signed."""
    currency = str(payload.get("currency") or "CNY")
    texts = {}
    for key in ("amount", "refund", "counter_offer", "consignor_total"):
        value = payload.get(key)
        if isinstance(value, int):
            texts[f"{key}_text"] = Money(value, currency).format()
    total = payload.get("consignor_total")
    if isinstance(total, int) and total > 0:
        texts["consignor_total_text"] = "+" + texts["consignor_total_text"]
    return texts


def render(services: Services, lang: str, row: t.Outbox) -> Screen:
    params: dict[str, Any] = {}
    for key, value in row.payload.items():
        moment = dates.parse(value)
        shown = dates.when(moment, lang, services.config.timezone) if moment else str(value)
        params[key] = html.escape(shown)
    params.update(money_texts(row.payload))
    rule = row.payload.get("rule")
    if rule and "reason" not in params:  # a rule decided: why, in the reader's words
        params["reason"] = rule_reason(partial(services.translate, lang), services.env.policy, rule)
    key = f"notify.{row.template}"
    if "refund_text" in params and i18n.exists(lang, f"{key}.amount"):
        key = f"{key}.amount"  # says how much; a message written without it, the plain text
    text = services.translate(lang, key, **params)
    keyboard: tuple[tuple[Button, ...], ...] = ()
    if row.claim_id is not None:
        label = services.translate(lang, "notify.open_claim")
        keyboard = ((Button(label, ClaimAction(row.claim_id, "view", 0).pack()),),)
    picture = PICTURES.get(row.template)
    return Screen(text, keyboard, photo=picture(dict(row.payload)) if picture else None)


def told_with(row: t.Outbox) -> str:
    """The key of the first of the messages ``row`` is told with (its own, if it is first)."""
    return str(row.payload.get(TOLD_WITH) or row.dedupe_key)


def joined(first: t.Outbox, shown: Screen, row: t.Outbox, screen: Screen) -> Screen | None:
    """``shown`` (the screen of ``first``, maybe already joined) and ``row``'s screen as one
    message, when they were written together (one party, one claim, one transaction) and
    still fit in one: their texts in order, a line each, with one Open claim button; a
    picture keeps them all as its caption (two pictures, or a caption over Telegram's limit:
    they stay two messages)."""
    if told_with(row) != told_with(first):
        return None
    if shown.photo is not None and screen.photo is not None:
        return None
    photo = shown.photo if shown.photo is not None else screen.photo
    text = f"{shown.text}\n{screen.text}"
    if limits.visible_length(text) > (limits.CAPTION if photo is not None else limits.MESSAGE_TEXT):
        return None
    return replace(shown, text=text, photo=photo)
