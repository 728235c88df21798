"""Helpers for staff tests: a staff group, staff accounts, claims that need a person."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import replace
from typing import Any

from bot import staff_group
from bot.conversations import engine, evidence
from bot.conversations.model import ChatUser, Incoming, Output
from bot.flood import Bucket
from sandbox.client import ControlError
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import answered
from tests.factories import Placed, order, place
from tests.sandbox.sandbox_testkit import png
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.services import filing

ADMIN, AGENT, BUYER, CONSIGNOR, STRANGER = 801, 802, 803, 804, 805
_refs = itertools.count(1)
_forged = itertools.count(9_000_000)


async def staffed(world: World, group: bool = True, agent: str = "Max") -> int | None:
    """An admin (from configuration) and an agent (granted by the admin, named ``agent``);
    with ``group``, a forum supergroup for staff configured as the staff chat. Returns the
    group's id."""
    await world.user(ADMIN, "Zoe")
    await world.user(AGENT, agent)
    chat_id = None
    if group:
        chat = await world.client.create_chat(
            type="supergroup", is_forum=True, title="After-sales staff", members=[ADMIN, AGENT]
        )
        chat_id = int(chat["id"])
    world.services.config = replace(
        world.services.config,
        admins=frozenset({ADMIN}),
        staff_chat_id=chat_id,
        staff_language="en",
    )
    await world.say(ADMIN, "/start")
    await world.say(AGENT, "/start")  # known to the bot, not yet staff
    [granted] = await world.say(ADMIN, f"/grant {AGENT} agent")
    assert "now agent" in granted["text"]
    return chat_id


async def parties(
    world: World, ref: str | None = None, lines: int = 1, bind: bool = True
) -> Placed:
    """An order placed; with ``bind``, its buyer and consignor bound to their chats (once)."""
    ref = ref or f"SO-{next(_refs)}"
    now = world.env.clock.now()
    rows = tuple((f"{ref}-{i}", "C1", 1, 10_000, 1_000) for i in range(lines))
    [p] = await place(world.uows, now, order(ref, now, lines=rows, buyer=f"B-{ref}"))
    if not bind:
        return p
    for user_id, name in ((BUYER, "Ann"), (CONSIGNOR, "Lin")):
        with contextlib.suppress(ControlError):  # already there from an earlier order
            await world.user(user_id, name)
    await world.say(BUYER, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(CONSIGNOR, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    return p


async def photos(world: World, count: int) -> tuple[str, ...]:
    """Evidence references, as the bot stores them, to pictures the buyer uploaded (real
    ones, so the bot can show them again)."""
    refs = []
    for n in range(count):
        await world.client.send_file(BUYER, "photo", png(4 + n, 3), f"p{n}.png", "image/png")
    for m in (await world.client.messages(BUYER))["messages"]:
        if not m["outgoing"] and m.get("photo"):
            refs.append(evidence.reference(evidence.PHOTO, m["photo"]["file_id"]))
    await world.client.wait_idle(quiet_ms=100)
    return tuple(refs[-count:]) if count else ()


async def file_as_buyer(
    world: World,
    buyer_id: int,
    claim_type: ClaimType,
    reason: Reason,
    lines: tuple[int, ...],
    description: str = "",
    evidence: tuple[str, ...] = (),
) -> int:
    """A claim the buyer filed (one unit of each order line in ``lines``), as the dialog's
    Confirm files it; returns its number."""
    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, buyer_id),
            ClaimDraft(
                claim_type,
                reason,
                tuple(LineRequest(line, 1) for line in lines),
                description,
                evidence,
            ),
        )
        await uow.commit()
    return claim.id


async def file_for_review(
    world: World, p: Placed, evidence: tuple[str, ...] = (), claim_type: ClaimType | None = None
) -> int:
    """A claim the rules send to a person (a quality issue)."""
    return await file_as_buyer(
        world,
        p.buyer_id,
        claim_type or ClaimType.RETURN_REFUND,
        Reason.QUALITY_ISSUE,
        p.line_ids,
        "cracked",
        evidence,
    )


async def status(world: World, claim_id: int) -> str:
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        return claim.status


async def topics(world: World, group: int) -> list[dict[str, Any]]:
    chats = (await world.client.request("GET", "/sandbox/chats"))["chats"]
    return list(next(c for c in chats if c["id"] == group)["topics"])


async def topic_of(world: World, claim_id: int) -> tuple[int, str]:
    """(thread id, name) the bot recorded for a claim's topic."""
    from storage.repositories import TopicRepo

    async with world.uows() as uow:
        row = await TopicRepo(uow.session).get(claim_id)
        assert row is not None and row.thread_id is not None
        return row.thread_id, row.name


async def in_topic(world: World, group: int, thread: int) -> list[dict[str, Any]]:
    return list((await world.client.messages(group, thread_id=thread))["messages"])


async def review_topic(
    world: World, group: int, claim_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The group's one topic, of a case waiting for review: its card and its pictures."""
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{claim_id} · Waiting for review"
    shown = await in_topic(world, group, topic["message_thread_id"])
    [card] = [m for m in shown if m.get("reply_markup")]
    assert f"Claim #{claim_id} needs a review" in card["text"]
    return card, [m for m in shown if m.get("photo")]


def button(message: dict[str, Any], label: str) -> str:
    markup = message.get("reply_markup") or {}
    found = [b for row in markup.get("inline_keyboard", []) for b in row if label in b["text"]]
    assert found, f"no {label!r} in {markup}"
    return str(found[0]["callback_data"])


async def press_in(
    world: World, user_id: int, chat_id: int, message: dict[str, Any], label: str
) -> dict[str, Any]:
    """``user_id`` presses ``label`` on a message in ``chat_id``; returns the press."""
    pressed = await world.client.press(
        user_id, message["message_id"], chat_id=chat_id, callback_data=button(message, label)
    )
    await answered(world, chat_id, pressed["callback_query_id"])
    return pressed


async def say_in(
    world: World, user_id: int, chat_id: int, text: str, thread: int | None = None
) -> list[dict[str, Any]]:
    """``user_id`` writes in a group (topic); returns the bot's new messages there."""
    before = {m["message_id"] for m in (await world.client.messages(chat_id))["messages"]}
    extra: dict[str, Any] = {"chat_id": chat_id}
    if thread is not None:
        extra["message_thread_id"] = thread
    sent = await world.client.send(user_id, text, **extra)
    await world.handled(sent["update_id"])
    after = (await world.client.messages(chat_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


async def toasts_in(world: World, chat_id: int) -> list[str]:
    return [a["text"] or "" for a in (await world.client.messages(chat_id))["callback_answers"]]


async def direct(
    world: World, user_id: int, update_id: int | None = None, **fields: Any
) -> list[Output]:
    """An update the sandbox's users cannot send (forged data, a redelivery), through the
    same engine the dispatcher calls."""
    update_id = next(_forged) if update_id is None else update_id
    if "callback_data" in fields:
        fields.setdefault("callback_id", f"forged-{update_id}")
    return await engine.process(
        world.services,
        Incoming(
            update_id=update_id, user=ChatUser(user_id, "Someone", "en"), chat_id=user_id, **fields
        ),
    )


async def texts(world: World, chat_id: int) -> list[str]:
    return [
        m.get("text") or m.get("caption") or ""
        for m in (await world.client.messages(chat_id))["messages"]
        if m["outgoing"]
    ]


def manual_budget(world: World, group: int) -> list[float]:
    """Put the bot's flood gate on a hand-moved clock, at the real group rate (20 a minute,
    not sped up like the sandbox); returns the clock's cell."""
    now = [0.0]
    gate = staff_group.budget(world.services, world.bot)
    gate.clock = lambda: now[0]
    gate._chats[group] = Bucket(20.0, 20.0 / 60, 20.0, 0.0)  # the group's bucket only
    gate._overall = Bucket(1e9, 1e9, 1e9, 0.0)  # the overall limit is not what is tested
    return now
