"""A buyer files a claim in chat, follows it, and acts on it — and bad input changes nothing."""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, select

from bot.telegram_aiogram.dispatcher import ALLOWED_UPDATES, build_dispatcher
from storage import tables as t
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import answered, buttons, last, press, toasts
from tests.factories import order, place
from tests.sandbox.sandbox_testkit import png


async def _bound_buyer(world: World, user_id: int, ref: str = "BY-1", buyer: str = "BB1"):  # type: ignore[no-untyped-def]
    now = world.env.clock.now()
    [p] = await place(
        world.uows,
        now,
        order(
            ref,
            now,
            buyer=buyer,
            lines=((f"{ref}-A", "C1", 2, 10_000, 1_000), (f"{ref}-B", "C1", 1, 5_000, 500)),
        ),
    )
    await world.user(user_id)
    await world.say(user_id, f"/start {await world.token('buyer', p.buyer_id)}")
    return p


async def _claims(world: World) -> int:
    async with world.uows() as uow:
        return int(
            (await uow.session.execute(select(func.count()).select_from(t.Claim))).scalar_one()
        )


async def test_a_buyer_files_a_return_with_a_photo_and_sees_it_approved(world: World) -> None:
    ann = 701
    await _bound_buyer(world, ann)
    [menu] = await world.say(ann, "/new")
    assert "which order" in menu["text"]
    await press(world, ann, "BY-1")
    await press(world, ann, "Item BY-1-A")
    [lines] = await press(world, ann, "Item BY-1-A")
    assert "✓ ×2 Item BY-1-A" in buttons(lines)
    await press(world, ann, "Next")
    await press(world, ann, "Return and refund")
    await press(world, ann, "Damaged in transit")
    # bad input: a photo where text is expected, then text over the limit
    await world.client.send_file(ann, "photo", png(), "a.png", "image/png")
    await world.client.wait_idle(quiet_ms=200)
    assert "as text" in (await last(world, ann))["text"]
    [too_long] = await world.say(ann, "x" * 1001)
    assert "1001 characters; the limit is 1000" in too_long["text"]
    await world.say(ann, "The <b>handle</b> came off")
    await world.client.send_file(ann, "photo", png(), "handle.png", "image/png")
    await world.client.wait_idle(quiet_ms=200)
    photos_screen = await last(world, ann)
    assert "1 so far" in photos_screen["text"]
    [listing] = await world.say(ann, "/claims")  # a command mid-dialog works and keeps the draft
    assert "You have no claims" in listing["text"]
    [summary] = await press(world, ann, "Done", photos_screen)
    assert (
        "The &lt;b&gt;handle&lt;/b&gt; came off" not in summary["text"]
    )  # escaped, shown as typed
    assert "The <b>handle</b> came off" in summary["text"]
    assert "Photos: 1" in summary["text"]
    replies = await press(world, ann, "Confirm", summary)
    assert any("Claim <b>" not in r["text"] and "filed" in r["text"] for r in replies)
    assert await _claims(world) == 1
    await world.back_office()
    texts = [
        m.get("text") or m.get("caption") or ""
        for m in (await world.client.messages(ann))["messages"]
    ]
    assert any("approved — please send the item back" in x for x in texts)
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_stale_double_pressed_forged_and_foreign_inputs_change_nothing(world: World) -> None:
    ann, bob = 711, 712
    await _bound_buyer(world, ann, "BY-2", "BB2")
    await _bound_buyer(world, bob, "BY-3", "BB3")
    await world.say(ann, "/new")
    await press(world, ann, "BY-2")
    await press(world, ann, "Item BY-2-B")
    await press(world, ann, "Next")
    await press(world, ann, "Refund only")
    await press(world, ann, "Not as described")
    await press(world, ann, "Skip")
    summary = await last(world, ann)
    await press(world, ann, "Done", summary)
    confirm_screen = await last(world, ann)
    # a double press: both presses reach the bot before it redraws the message
    data = next(
        b["callback_data"]
        for row in confirm_screen["reply_markup"]["inline_keyboard"]
        for b in row
        if "Confirm" in b["text"]
    )
    first = await world.client.press(ann, confirm_screen["message_id"], callback_data=data)
    second = await world.client.press(ann, confirm_screen["message_id"], callback_data=data)
    await answered(world, ann, first["callback_query_id"])
    await answered(world, ann, second["callback_query_id"])
    assert await _claims(world) == 1
    assert any("dialog has ended" in x for x in await toasts(world, ann))
    # forged callback data (a modified client): refused, nothing changes
    from bot.conversations import engine
    from bot.conversations.model import ChatUser, Incoming

    for n, forged in enumerate(
        ("c:999:approve:1", "zz:bad", "c:1:approve:notanumber", "d:confirm:yes")
    ):
        outputs = await engine.process(
            world.services,
            Incoming(
                update_id=10_000 + n,
                user=ChatUser(ann, "Ann", "en"),
                chat_id=ann,
                message_id=confirm_screen["message_id"],
                callback_data=forged,
                callback_id=f"f{n}",
            ),
        )
        assert outputs and all(type(o).__name__ == "Toast" for o in outputs), outputs
    assert await _claims(world) == 1
    # another buyer's claim, and staff commands typed by a buyer
    async with world.uows() as uow:
        [claim_id] = (await uow.session.scalars(select(t.Claim.id))).all()
    [foreign] = await world.say(bob, f"/claim {claim_id}")
    assert f"no claim {claim_id}" in foreign["text"]
    [staff_only] = await world.say(bob, "/queue")
    assert "not available to you" in staff_only["text"] or "don't know /queue" in staff_only["text"]
    # a stale card button: withdraw drawn for an older version
    [card] = await world.say(ann, f"/claim {claim_id}")
    await world.back_office()  # auto review moves the claim on
    await press(world, ann, "Withdraw", card)
    assert any("already been handled" in x for x in await toasts(world, ann))
    async with world.uows() as uow:
        trail = [e.trigger for e in await uow.claims.timeline(claim_id)]
    assert "withdraw" not in trail
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_duplicate_update_is_handled_once(world: World) -> None:
    ann = 721
    await _bound_buyer(world, ann, "BY-4", "BB4")
    sent = await world.client.send(ann, "/claims")
    await world.client.wait_idle(quiet_ms=200)
    from bot.conversations import engine
    from bot.conversations.model import ChatUser, Incoming

    again = Incoming(
        update_id=sent["update_id"], user=ChatUser(ann, "Ann", "en"), chat_id=ann, text="/claims"
    )
    assert await engine.process(world.services, again) == []


async def test_the_dialog_survives_a_restart_of_the_bot(world: World) -> None:
    world.provoke("getUpdates: None")  # the killed bot's poll is cut off
    ann = 731
    await _bound_buyer(world, ann, "BY-5", "BB5")
    await world.say(ann, "/new")
    await press(world, ann, "BY-5")
    await press(world, ann, "Item BY-5-B")
    await press(world, ann, "Next")
    await world.stop_bot()
    # the bot is down: the buyer keeps going; the update waits at "Telegram"
    await world.client.press(ann, (await last(world, ann))["message_id"], text="Exchange")
    # a new process: new dispatcher, new bot session, same database
    bot = Bot(
        world.sandbox.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(world.sandbox.url)),
    )
    dispatcher = build_dispatcher(world.services)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, allowed_updates=ALLOWED_UPDATES, polling_timeout=1
        )
    )
    try:
        await world.client.wait_idle(quiet_ms=200)
        assert "What went wrong?" in (await last(world, ann))["text"]
        await press(world, ann, "Wrong item")
        assert "Describe the problem" in (await last(world, ann))["text"]
    finally:
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        await polling
        await bot.session.close()
