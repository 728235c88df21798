"""The running bot: wiring, start-up checks, the default menu, a clean stop, the demo script."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommandScopeDefault

from bot.app import (
    BotTokenMissing,
    BotTokenRejected,
    back_office_round,
    build_services,
    make_bot,
    run_bot,
)
from bot.demo_script import STAFF_ID, DemoWorld, demo_world, persona, play_script
from bot.settings import Settings
from sandbox.app import running_sandbox
from storage.uow import UnitOfWorkFactory
from tests.sandbox.sandbox_testkit import png
from workflow.services.common import Env
from workflow.simulated import SimulatedCarrier, SimulatedPaymentGateway


def _bot(url: str, token: str) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))


async def test_run_bot_sets_default_menus_answers_and_stops_cleanly(
    uows: UnitOfWorkFactory, env: Env
) -> None:
    settings = Settings(database_url=str(uows.engine.url), bot_token=None)
    services = build_services(settings, clock=env.clock, engine=uows.engine)
    async with running_sandbox(scale=1000.0) as sandbox:
        bot = _bot(sandbox.url, sandbox.token)
        stop, ready = asyncio.Event(), asyncio.Event()
        running = asyncio.create_task(
            run_bot(
                services,
                bot,
                SimulatedPaymentGateway(env.clock),
                SimulatedCarrier(env.clock),
                stop=stop,
                polling_timeout=1,
                handle_signals=False,
                on_ready=lambda me: ready.set(),
            )
        )
        await asyncio.wait_for(ready.wait(), 10)
        en = await bot.get_my_commands(scope=BotCommandScopeDefault())
        zh = await bot.get_my_commands(scope=BotCommandScopeDefault(), language_code="zh")
        assert [c.command for c in en] == ["start", "help", "lang"]
        assert [c.command for c in zh] == ["start", "help", "lang"]
        assert en[1].description != zh[1].description

        user = (await sandbox.client.create_user(id=42, first_name="Ann"))["id"]
        sent = await sandbox.client.send(user, "hello")
        for _ in range(200):
            await sandbox.client.wait_idle(quiet_ms=30)
            messages = (await sandbox.client.messages(user))["messages"]
            if any(m["outgoing"] for m in messages):
                break
        assert any("personal link" in (m.get("text") or "") for m in messages), sent

        assert (
            await back_office_round(
                services, bot, SimulatedPaymentGateway(env.clock), SimulatedCarrier(env.clock)
            )
            == 0
        )
        stop.set()
        await asyncio.wait_for(running, 10)  # returns: polling and the scheduler stopped
        # Stopping abandons the long poll in flight: the sandbox logs it as not completed.
        refused = [
            c
            for c in (await sandbox.client.calls(ok=False))["calls"]
            if not (c["method"] == "getUpdates" and c["error_code"] is None)
        ]
        assert refused == []
        await bot.session.close()


async def test_a_missing_or_rejected_token_is_refused_before_anything_starts(
    uows: UnitOfWorkFactory, env: Env
) -> None:
    with pytest.raises(BotTokenMissing):
        make_bot(Settings(bot_token=None))
    services = build_services(Settings(), clock=env.clock, engine=uows.engine)
    async with running_sandbox() as sandbox:
        bot = make_bot(
            Settings(bot_token="123456789:not-the-sandbox-token", telegram_api_url=sandbox.url)
        )
        with pytest.raises(BotTokenRejected):
            await run_bot(services, bot, stop=asyncio.Event(), handle_signals=False)
        await bot.session.close()


async def test_the_demo_script_shows_every_stage_to_every_party() -> None:
    lines = await play_script("en")
    transcript = "\n".join(lines)
    story1, story2 = transcript.split("Story 2")
    [first] = re.findall(r"/inspect (\d+) intact", story1)
    [second] = re.findall(r"/inspect (\d+) damaged 50 consignor", story2)

    def seen_by(name: str, text: str, story: str) -> bool:
        """Whether one message (a line and its indented continuation) of ``name`` has it."""
        entries: list[str] = []
        for line in story.splitlines():
            if line.startswith(" ") and entries:
                entries[-1] += "\n" + line
            else:
                entries.append(line)
        return any(
            entry.split("  ")[0].strip().endswith(name) and text in entry for entry in entries
        )

    # Story 1, the source article's script, as the buyer saw it.
    for stage in (
        "▸ /new",
        "▸ [✅ Confirm]",
        f"Claim #{first} filed. Status: Submitted",  # the answer to Confirm is the record
        f"Claim #{first} approved — please send the item back",
        "Waybill:",
        f"Claim #{first}: the return parcel is on its way",
        f"Claim #{first}: the return has arrived at the warehouse",
        f"Claim #{first} has been inspected",
        f"Claim #{first}: a refund of 680.00 CNY is being processed",
        f"Claim #{first}: the refund of 680.00 CNY has been paid",
        f"Claim #{first} is complete",
    ):
        assert seen_by("Wang Mei", stage, story1), stage
    assert seen_by("Wang Mei", f"🖼 📦 Claim #{first} approved", story1)  # with the QR code
    # … each once: not told again of the filing she confirmed herself, and the steps of one
    # moment (inspected, refund started; return in transit, received) as one message each.
    assert not seen_by("Wang Mei", f"Claim #{first} has been filed", story1)
    assert seen_by(
        "Wang Mei",
        f"🔍 Claim #{first} has been inspected.\n"
        + " " * 16
        + f"💸 Claim #{first}: a refund of 680.00 CNY is being processed.",
        story1,
    )
    assert seen_by(
        "Wang Mei",
        f"🚚 Claim #{first}: the return parcel is on its way.\n"
        + " " * 16
        + f"📥 Claim #{first}: the return has arrived at the warehouse",
        story1,
    )
    assert seen_by("Zoe", f"▸ /inspect {first} intact", story1)
    # … and the consignor was told at every stage too.
    for stage in (
        "A buyer filed claim",
        "has been inspected",
        "the buyer has been refunded 680.00 CNY",
        "has been settled",
    ):
        assert seen_by("Ms Lin", stage, story1), stage

    # Story 2: damaged, proposed, disputed with a counter-offer, resolved, refunded, settled.
    for name, stage in (
        ("Park Studio", "found damaged. We propose a compensation of 50.00 CNY"),
        ("Park Studio", "▸ [Dispute]"),
        ("Park Studio", "▸ 20"),
        ("Park Studio", f"counter-offer of 20.00 CNY on claim #{second}"),
        ("Park Studio", "Status: Compensation disputed"),
        ("Zoe", f"Claim #{second}: the compensation needs a decision"),
        ("Zoe", "▸ [Resolve compensation]"),
        ("Tom", f"Claim #{second}: the refund of 188.00 CNY has been paid"),
        ("Park Studio", f"Claim #{second} has been settled"),
        ("Tom", f"Claim #{second} is complete"),
    ):
        assert seen_by(name, stage, story2), (name, stage)
    assert f"Damage compensation -30.00 CNY · claim #{second}" in story2
    # Park Studio's counter-offer is answered in the chat; the stage message is not repeated.
    assert not seen_by("Park Studio", "the compensation is disputed", story2)
    assert seen_by(
        "Park Studio",
        f"📒 Claim #{second} has been settled: your account changes by -199.20 CNY.\n"
        + " " * 16
        + f"🏁 Claim #{second} about your item is closed.",
        story2,
    )


async def test_every_bot_setting_reaches_the_bots_configuration(
    uows: UnitOfWorkFactory, env: Env
) -> None:
    settings = Settings(
        admins=[11, 12],
        staff_chat_id=-1001,
        staff_language="en",
        timezone="Europe/Berlin",
        send_rate_scale=5.0,
        delivery_lease_seconds=7.0,
    )
    config = build_services(settings, clock=env.clock, engine=uows.engine).config
    assert config.admins == frozenset({11, 12})
    assert (config.staff_chat_id, config.staff_language) == (-1001, "en")
    assert config.timezone == "Europe/Berlin"
    assert config.send_limits.scale == 5.0
    assert config.delivery_lease_seconds == 7.0
    with pytest.raises(ValueError):
        Settings(send_rate_scale=0)  # a gate that never refills is refused up front


async def test_the_chat_demo_gives_staff_a_group_where_each_case_has_its_topic_and_photos() -> None:
    async with demo_world("en", staff_group=True) as w:
        chats = (await w.client.request("GET", "/sandbox/chats"))["chats"]
        [group] = [c for c in chats if c.get("is_forum")]
        assert group["title"] == "After-sales staff"
        assert STAFF_ID in group["members"]
        assert w.services.config.staff_chat_id == group["id"]

        # Wang Mei files a quality issue with a photo; the rules send it to a person.
        mei = persona("buyer")
        await w.say(mei, "/new")
        await w.press(mei, "SO-1002")
        await w.press(mei, "Limited sneakers")
        await w.press(mei, "Next")
        await w.press(mei, "Return and refund")
        await w.press(mei, "Quality issue")
        await w.say(mei, "The sole came off")
        await w.send_photo(mei, png(64, 48))
        await w.press(mei, "Done")
        await w.press(mei, "Confirm")
        claim = await w.latest_claim()
        await w.back_office()

        [topic] = [t for t in await _topics(w, group["id"]) if f"#{claim}" in t["name"]]
        shown = (await w.client.messages(group["id"], thread_id=topic["message_thread_id"]))[
            "messages"
        ]
        assert any(f"Claim #{claim} ·" in (m.get("text") or "") for m in shown)  # the card
        assert any(m.get("photo") for m in shown)  # and the buyer's photo, for staff to see


async def _topics(w: DemoWorld, group: int) -> list[dict[str, Any]]:
    chats = (await w.client.request("GET", "/sandbox/chats"))["chats"]
    return list(next(c for c in chats if c["id"] == group)["topics"])
