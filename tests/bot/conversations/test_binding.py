"""Binding a Telegram user to a platform account, through the sandbox."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from tests.bot.conversations.buyer_kit import direct, toast_texts
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import buttons, press
from tests.factories import order, place


async def test_an_unbound_user_is_told_how_to_bind(world: World) -> None:
    ann = await world.user(501)
    [reply] = await world.say(ann, "hello")
    assert "personal link" in reply["text"]
    [reply] = await world.say(ann, "/claims")
    assert "personal link" in reply["text"]


async def test_a_binding_link_binds_once_and_only_for_its_user(world: World) -> None:
    [p] = await place(world.uows, world.env.clock.now(), order("T-1", world.env.clock.now()))
    token = await world.token("buyer", p.buyer_id)
    ann, bob = await world.user(502), await world.user(503, "Bob", "zh-hans")
    replies = await world.say(ann, f"/start {token}")
    assert "connected to your buyer account" in replies[0]["text"]
    assert "/help" in replies[1]["text"]
    [again] = await world.say(ann, f"/start {token}")
    assert "already used to connect this chat" in again["text"]
    [foreign] = await world.say(bob, f"/start {token}")
    assert "已被他人使用" in foreign["text"]
    [unknown] = await world.say(bob, "/start not-a-real-token")
    assert "链接无效" in unknown["text"]


async def test_an_expired_link_is_refused(world: World) -> None:
    [p] = await place(world.uows, world.env.clock.now(), order("T-2", world.env.clock.now()))
    token = await world.token("buyer", p.buyer_id)
    world.env.clock.advance(timedelta(days=4))  # type: ignore[attr-defined]
    ann = await world.user(504)
    [reply] = await world.say(ann, f"/start {token}")
    assert "expired" in reply["text"]


async def test_language_can_be_switched(world: World) -> None:
    [p] = await place(world.uows, world.env.clock.now(), order("T-3", world.env.clock.now()))
    ann = await world.user(505)
    await world.say(ann, f"/start {await world.token('buyer', p.buyer_id)}")
    [reply] = await world.say(ann, "/lang zh-CN")
    assert reply["text"] == "语言已设置为简体中文。"
    [reply] = await world.say(ann, "/nonsense")
    assert "没有 /nonsense" in reply["text"]


async def test_a_name_with_markup_is_shown_as_typed(world: World) -> None:
    """The menu greets the user by first name inside HTML: ``<`` and ``&`` are escaped, so
    Telegram takes the message (unescaped, it refuses it and the user gets nothing)."""
    [p] = await place(world.uows, world.env.clock.now(), order("T-4", world.env.clock.now()))
    tom = await world.user(506, "Tom & <Jerry>")
    welcome, menu = await world.say(tom, f"/start {await world.token('buyer', p.buyer_id)}")
    assert "connected to your buyer account" in welcome["text"]
    assert "Tom & <Jerry>" in menu["text"]
    [again] = await world.say(tom, "/help")
    assert again["text"] == menu["text"]


async def test_the_menu_has_buttons_for_what_the_role_does_most(world: World) -> None:
    """/start's menu: a buyer presses "New claim" or "My claims" instead of typing; the
    buttons are the role's own, and a forged one for another role or no command is refused."""
    [p] = await place(world.uows, world.env.clock.now(), order("T-5", world.env.clock.now()))
    ann = await world.user(507)
    _, menu = await world.say(ann, f"/start {await world.token('buyer', p.buyer_id)}")
    assert buttons(menu) == ["📝 New claim", "📋 My claims"]
    [orders] = await press(world, ann, "New claim", menu)
    assert "which order is it about?" in orders["text"]
    assert any("T-5" in b for b in buttons(orders))
    await world.say(ann, "/cancel")
    [claims] = await press(world, ann, "My claims", menu)
    assert "You have no claims" in claims["text"]
    for forged, refusal in (("m:queue", "not for you"), ("m:grant", "not recognised")):
        [toast] = toast_texts(await direct(world, ann, callback_data=forged))
        assert refusal in toast

    wang = await world.user(508, "Wang", "zh-hans")
    _, menu = await world.say(wang, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    assert buttons(menu) == ["💰 余额", "📦 我的商品"]
    [balance] = await press(world, wang, "余额", menu)
    assert "CNY" in balance["text"]


async def test_a_configured_admin_binding_a_buyer_account_on_first_contact_gets_both(
    world: World,
) -> None:
    from dataclasses import replace

    [p] = await place(world.uows, world.env.clock.now(), order("T-6", world.env.clock.now()))
    world.services.config = replace(world.services.config, admins=frozenset({509}))
    admin = await world.user(509, "Ada")
    staff, buyer, menu = await world.say(admin, f"/start {await world.token('buyer', p.buyer_id)}")
    assert "staff" in staff["text"].lower()
    assert "connected to your buyer account" in buyer["text"]
    assert "/queue" in menu["text"] and "/claims" in menu["text"]


async def test_refused_presses_and_commands_leave_a_log_line(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    [p] = await place(world.uows, world.env.clock.now(), order("T-7", world.env.clock.now()))
    ann = await world.user(510)
    await world.say(ann, f"/start {await world.token('buyer', p.buyer_id)}")
    caplog.set_level(logging.INFO, logger="bot.conversations")
    [toast] = toast_texts(await direct(world, ann, callback_data="zz:forged"))
    [unknown] = await world.say(ann, "/nonsense")
    [staff_only] = await world.say(ann, "/queue")
    [usage] = await world.say(ann, "/claim twelve")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("bot.conversations")]
    assert any("usage shown to user 510 for '/claim twelve'" in line for line in lines), lines
    assert "/claim" in usage["text"]
    assert any("'zz:forged' refused: " + toast in line for line in lines), lines
    assert any("unknown command /nonsense" in line for line in lines), lines
    assert any("/queue refused to user 510" in line for line in lines), lines
    assert "I don't know /nonsense" in unknown["text"] and "/queue" in staff_only["text"]


async def test_a_link_to_another_account_drops_the_dialog_begun_for_the_first(
    world: World,
) -> None:
    """A chat bound to one buyer account opens the link of another: the claim the chat had
    begun filing was on the first account's order, which the chat can no longer see. The
    dialog is dropped, and said so, rather than answering every message "not found"."""
    now = world.env.clock.now()
    first, second = await place(
        world.uows, now, order("T-8", now, buyer="B-8"), order("T-9", now, buyer="B-9")
    )
    ann = await world.user(511)
    await world.say(ann, f"/start {await world.token('buyer', first.buyer_id)}")
    await world.say(ann, "/new")
    await press(world, ann, "T-8")
    welcome, dropped, _menu = await world.say(
        ann, f"/start {await world.token('buyer', second.buyer_id)}"
    )
    assert "connected to your buyer account" in welcome["text"]
    assert "connected to another buyer account before" in welcome["text"]
    assert dropped["text"] == "Cancelled. Nothing was filed."
    # the same account's link again (a new one) says nothing of another account
    [again, _menu] = await world.say(ann, f"/start {await world.token('buyer', second.buyer_id)}")
    assert "connected to your buyer account" in again["text"]
    assert "another" not in again["text"]
    [orders] = await world.say(ann, "/new")
    assert "which order" in orders["text"], orders["text"]
    assert any("T-9" in b for b in buttons(orders)) and not any("T-8" in b for b in buttons(orders))
