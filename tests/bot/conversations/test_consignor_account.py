"""/balance and /items: a consignor's account and stock, only ever their own."""

from __future__ import annotations

from datetime import timedelta

from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import (
    bind,
    buttons,
    forge_press,
    no_rejected_calls,
    open_card,
    outgoing,
    press,
    proposal,
    text_of,
)
from tests.factories import order, place
from workflow.claims import LedgerKind, LedgerPosting, Liability


async def _post(
    world: World, consignor_id: int, key: str, kind: LedgerKind, amount: int, days: int
) -> None:
    async with world.uows() as uow:
        await uow.money.post(
            LedgerPosting(
                consignor_id=consignor_id,
                kind=kind,
                amount=amount,
                currency="CNY",
                idempotency_key=key,
                available_at=world.env.clock.now() + timedelta(days=days),
            )
        )
        await uow.commit()


async def test_balance_shows_available_pending_and_latest_entries(world: World) -> None:
    now = world.env.clock.now()
    mine, _theirs = await place(
        world.uows,
        now,
        order("A-1", now, lines=(("SKU-A", "C-A", 1, 50_000, 5_000),)),
        order("A-2", now, buyer="B2", lines=(("SKU-B", "C-B", 1, 9_900, 990),)),
    )
    chat = await world.user(801, "Lin")
    await bind(world, chat, "consignor", mine.consignor_ids[0])
    # The import credited the sale less commission, on hold until the return window closes.
    [reply] = await world.say(chat, "/balance")
    text = reply["text"]
    assert "Available: 0.00 CNY" in text
    assert "Pending (not yet available): 450.00 CNY" in text
    assert "Sale 500.00 CNY" in text and "Commission -50.00 CNY" in text
    assert "99.00" not in text  # another consignor's money is never shown

    # A later adjustment, already available: newest first.
    await _post(world, mine.consignor_ids[0], "adj:1", LedgerKind.ADJUSTMENT, 1_234, days=0)
    [reply] = await world.say(chat, "/balance")
    text = reply["text"]
    assert "Available: 12.34 CNY" in text
    assert text.index("Adjustment 12.34 CNY") < text.index("Sale 500.00 CNY")

    world.env.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
    [reply] = await world.say(chat, "/balance")
    assert "Available: 462.34 CNY" in reply["text"]
    assert "Pending (not yet available): 0.00 CNY" in reply["text"]

    await world.say(chat, "/lang zh-CN")
    [reply] = await world.say(chat, "/balance")
    assert "可用余额：462.34 CNY" in reply["text"] and "销售入账" in reply["text"]
    await no_rejected_calls(world)


async def test_balance_dates_are_the_platforms_days_not_utc(world: World) -> None:
    """An entry's "available from" is the day in the platform's time zone (Asia/Shanghai,
    UTC+8): at 17:00 UTC it is already the next day there, and a credit released then must
    not be dated a day early, still pending on the day it is said to be available."""
    world.env.clock.advance(timedelta(hours=8))  # type: ignore[attr-defined]
    now = world.env.clock.now()
    assert (now.hour, now.day) == (17, 5)  # 01:00 on 6 Jan in Shanghai
    [placed] = await place(
        world.uows, now, order("D-1", now, lines=(("SKU-D", "C-D", 1, 10_000, 1_000),))
    )
    consignor = placed.consignor_ids[0]
    chat = await world.user(805, "Lin")
    await bind(world, chat, "consignor", consignor)
    await _post(world, consignor, "adj:now", LedgerKind.ADJUSTMENT, 1_000, days=0)
    await _post(world, consignor, "adj:later", LedgerKind.ADJUSTMENT, 2_000, days=1)
    [reply] = await world.say(chat, "/balance")
    assert "Adjustment 10.00 CNY · available from 2026-01-06" in reply["text"], reply["text"]
    assert "Adjustment 20.00 CNY · available from 2026-01-07" in reply["text"], reply["text"]

    # 17:00 on 6 Jan in Shanghai: the 20.00 is still pending, and is not said to be due today.
    world.env.clock.advance(timedelta(hours=16))  # type: ignore[attr-defined]
    [reply] = await world.say(chat, "/balance")
    assert "Available: 10.00 CNY" in reply["text"]
    assert "Adjustment 20.00 CNY · available from 2026-01-07" in reply["text"], reply["text"]
    await no_rejected_calls(world)


async def test_balance_never_adds_up_two_currencies(world: World) -> None:
    """A consignor whose items sold in yuan and in yen has two sums, never one: 450.00 CNY
    and 8100 JPY pending are not "531.00 CNY"."""
    now = world.env.clock.now()
    [yuan, yen] = await place(
        world.uows,
        now,
        order("Y-1", now, lines=(("SKU-Y1", "C-Y", 1, 50_000, 5_000),)),
        order("Y-2", now, buyer="B2", currency="JPY", lines=(("SKU-Y2", "C-Y", 1, 9_000, 900),)),
    )
    assert yuan.consignor_ids == yen.consignor_ids
    chat = await world.user(806, "Lin")
    await bind(world, chat, "consignor", yuan.consignor_ids[0])
    [reply] = await world.say(chat, "/balance")
    text = reply["text"]
    assert "Pending (not yet available): 450.00 CNY · 8100 JPY" in text, text
    assert "Available: 0.00 CNY · 0 JPY" in text, text
    assert "531" not in text and "Sale 9000 JPY" in text and "Sale 500.00 CNY" in text

    await _post(world, yuan.consignor_ids[0], "adj:y", LedgerKind.ADJUSTMENT, 1_234, days=0)
    [reply] = await world.say(chat, "/balance")
    assert "Available: 12.34 CNY · 0 JPY" in reply["text"], reply["text"]
    await no_rejected_calls(world)


async def test_items_are_listed_with_status_and_quantities_in_pages(world: World) -> None:
    now = world.env.clock.now()
    lines = tuple((f"SKU-{n:02d}", "C-I", 1 + n % 2, 1_000, 100) for n in range(10))
    [placed] = await place(world.uows, now, order("I-1", now, lines=lines))
    await place(
        world.uows, now, order("I-2", now, buyer="B9", lines=(("OTHER-1", "C-J", 1, 1_000, 100),))
    )
    chat = await world.user(811, "Zhao")
    await bind(world, chat, "consignor", placed.consignor_ids[0])
    [page1] = await world.say(chat, "/items")
    assert "Your items (10) · page 1 of 2" in text_of(page1)
    assert "SKU-00" in text_of(page1) and "SKU-07" in text_of(page1)
    assert "SKU-08" not in text_of(page1) and "OTHER-1" not in text_of(page1)
    assert "sold 2" in text_of(page1) and "sold 1" in text_of(page1)
    assert list(buttons(page1)) == ["Next ▶"]

    await press(world, chat, page1, "Next ▶")
    [page2] = [m for m in await outgoing(world, chat) if m["message_id"] == page1["message_id"]]
    assert "page 2 of 2" in text_of(page2) and "SKU-09" in text_of(page2)
    assert list(buttons(page2)) == ["◀ Previous"]

    answer = await forge_press(world, chat, page2, "ki:99")
    [gone] = [m for m in await outgoing(world, chat) if m["message_id"] == page1["message_id"]]
    assert "That page does not exist (there are 2)" in text_of(gone)
    answer = await forge_press(world, chat, gone, "ki:-3")
    assert answer["text"] == "This button is not recognised. Please use the latest message."
    # a number no database holds (the page's offset would overflow a 64-bit integer)
    answer = await forge_press(world, chat, gone, "ki:99999999999999999999")
    assert answer["text"] == "This button is not recognised. Please use the latest message."
    await no_rejected_calls(world)


async def test_items_speak_the_consignors_language(world: World) -> None:
    now = world.env.clock.now()
    [placed] = await place(world.uows, now, order("E-1", now))
    chat = await world.user(821, "Park", "zh-hans")
    await bind(world, chat, "consignor", placed.consignor_ids[0])
    [reply] = await world.say(chat, "/items")
    assert "我的商品（1 件）· 第 1/1 页" in reply["text"] and "SKU-1" in reply["text"]
    assert "已售 1" in reply["text"]
    await no_rejected_calls(world)


async def test_a_sale_reversed_while_its_credit_is_pending_comes_out_of_pending(
    world: World,
) -> None:
    # 100.00 sold (90.00 after commission, pending for a week after delivery), sent back
    # damaged with the buyer liable: the consignor is credited 30.00 compensation.
    k = await proposal(world, ref="P-1", consignor_chat=831, liability=Liability.BUYER)
    chat = k.consignor_chat
    card = await open_card(world, chat, k.claim_id, "compensation")
    await press(world, chat, card, "Accept")
    await world.back_office()
    world.env.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await world.back_office()  # refunded, settled
    [reply] = await world.say(chat, "/balance")
    text = reply["text"]
    assert "Sale reversed (return) -100.00 CNY" in text, text
    assert "Available: 30.00 CNY" in text, text
    assert "Pending (not yet available): 0.00 CNY" in text, text

    world.env.clock.advance(timedelta(days=30))  # type: ignore[attr-defined]
    [reply] = await world.say(chat, "/balance")
    assert "Available: 30.00 CNY" in reply["text"]
    assert "Pending (not yet available): 0.00 CNY" in reply["text"]
    await no_rejected_calls(world)
