"""The commands menu follows who a user is and which language they speak."""

from __future__ import annotations

from aiogram.types import BotCommandScopeChat

from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import bind, no_rejected_calls
from tests.factories import order, place


async def _menu(world: World, chat: int) -> dict[str, str]:
    commands = await world.bot.get_my_commands(scope=BotCommandScopeChat(chat_id=chat))
    return {c.command: c.description for c in commands}


async def test_binding_sets_the_chat_menu_of_the_role_in_the_users_language(world: World) -> None:
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("M-1", now))
    consignor, buyer = await world.user(901, "Lin"), await world.user(902, "Ann", "zh-hans")
    await world.say(consignor, "hello")
    assert await _menu(world, consignor) == {}  # unbound: the default menu applies

    await bind(world, consignor, "consignor", p.consignor_ids[0])
    menu = await _menu(world, consignor)
    assert {"balance", "items", "help", "lang", "cancel"} <= set(menu)
    assert "start" not in menu and "new" not in menu and "queue" not in menu
    assert menu["balance"] == "your account: available, pending, latest entries"

    await bind(world, buyer, "buyer", p.buyer_id)
    menu = await _menu(world, buyer)
    assert "balance" not in menu and "items" not in menu and "help" in menu
    assert menu["help"] == "查看可用功能"

    # A new language redraws the menu in it; a repeated /lang changes nothing.
    await world.say(consignor, "/lang zh-CN")
    assert (await _menu(world, consignor))["balance"] == "我的账户：可用、待结算、最近流水"
    before = len((await world.client.calls(method="setMyCommands"))["calls"])
    await world.say(consignor, "/lang zh-CN")
    await world.say(consignor, "/balance")
    assert len((await world.client.calls(method="setMyCommands"))["calls"]) == before

    # A person who is both buyer and consignor gets both roles' commands.
    await bind(world, buyer, "consignor", p.consignor_ids[0])
    assert {"balance", "items"} <= set(await _menu(world, buyer))
    await no_rejected_calls(world)


async def test_a_grant_gives_the_granted_user_the_staff_menu_at_once(world: World) -> None:
    from dataclasses import replace

    admin, agent = await world.user(951, "Ada"), await world.user(952, "Max")
    world.services.config = replace(world.services.config, admins=frozenset({admin}))
    await world.say(admin, "/start")
    await world.say(agent, "/start")
    assert "queue" not in await _menu(world, agent)
    await world.say(admin, f"/grant {agent} agent")
    menu = await _menu(world, agent)
    assert {"queue", "case", "find"} <= set(menu)
    assert "grant" not in menu  # an agent, not an admin
    await world.say(admin, f"/grant {agent} admin")
    assert "grant" in await _menu(world, agent)
    await no_rejected_calls(world)


async def test_the_staff_group_gets_the_staff_menu_in_each_language(world: World) -> None:
    from bot.app import set_default_menus
    from tests.bot.conversations.staff_kit import staffed

    group = await staffed(world)
    assert group is not None
    await set_default_menus(world.bot, world.services)
    menu = await _menu(world, group)
    assert {"queue", "case", "find", "help"} <= set(menu)
    assert "grant" not in menu and "start" not in menu  # admins keep theirs in private
    scope = BotCommandScopeChat(chat_id=group)
    zh = {
        c.command: c.description
        for c in await world.bot.get_my_commands(scope=scope, language_code="zh")
    }
    assert zh.keys() == menu.keys() and zh["queue"] != menu["queue"]
    await no_rejected_calls(world)
