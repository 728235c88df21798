"""How an outbox message reads: amounts in the claim's currency, and how much is refunded."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.outbox_screens import render
from storage import tables as t
from tests.bot.conversations.conftest import World


def _row(template: str, **payload: object) -> t.Outbox:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    return t.Outbox(
        id=1,
        channel="message",
        dedupe_key="k",
        recipient_kind="buyer",
        recipient_id=1,
        template=template,
        payload={"claim_id": 7, **payload},
        claim_id=7,
        created_at=now,
        available_at=now,
    )


async def test_a_refund_message_says_how_much_in_the_claims_currency(world: World) -> None:
    row = _row("claim.refunding", refund=1_250, currency="CNY")
    assert render(world.services, "en", row).text == (
        "💸 Claim #7: a refund of 12.50 CNY is being processed."
    )
    assert render(world.services, "zh-CN", row).text == "💸 售后单 #7：12.50 CNY 的退款处理中。"
    yen = _row("consignor.refunded", refund=1_250, currency="JPY")
    assert render(world.services, "en", yen).text == (
        "💰 Claim #7: the buyer has been refunded 1250 JPY."
    )


async def test_a_refund_message_written_without_its_amount_reads_as_before(world: World) -> None:
    """Written by a version that did not record the amount (and still undelivered, or held
    for a chat): the text without an amount, never a placeholder shown raw."""
    row = _row("claim.refunded")
    assert render(world.services, "en", row).text == "💰 Claim #7: the refund has been paid."
    assert "{" not in render(world.services, "zh-CN", row).text
