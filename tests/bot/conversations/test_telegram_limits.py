"""What the bot sends stays inside Telegram's limits and shows user text as typed, however
long a case grows: the sandbox refuses what Telegram would (a message over 4096 characters,
a callback answer over 200), and the world fails a test on any refusal it did not provoke."""

from __future__ import annotations

from dataclasses import replace

from bot.conversations.claim_dialog import LINES_PAGE
from tests.bot.conversations.buyer_kit import press as buyer_press
from tests.bot.conversations.conftest import World
from tests.bot.conversations.staff_kit import (
    ADMIN,
    AGENT,
    BUYER,
    file_for_review,
    in_topic,
    parties,
    press_in,
    staffed,
    toasts_in,
    topic_of,
)
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.services import filing, review

MARKUP = "<b>x</b> & <3"  # user text that is not HTML: shown as typed, never parsed


def _long(label: str, size: int = 1000) -> str:
    return (f"{label} {MARKUP} " * size)[:size]


async def _asked_and_answered(world: World, claim_id: int, buyer_id: int, rounds: int) -> None:
    """Staff ask and the buyer answers, ``rounds`` times, each text as long as allowed."""
    for n in range(rounds):
        async with world.uows() as uow:
            question = _long(f"Q{n}")
            await review.request_info(
                uow, world.env, Actor(Role.ADMIN, 1), claim_id, None, question
            )
            await uow.commit()
        async with world.uows() as uow:
            answer = _long(f"A{n}")
            await review.provide_info(
                uow, world.env, Actor(Role.BUYER, buyer_id), claim_id, None, answer
            )
            await uow.commit()


async def test_a_case_with_a_long_history_drops_its_oldest_steps_to_fit(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    p = await parties(world)
    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND,
                Reason.QUALITY_ISSUE,
                tuple(LineRequest(line, 1) for line in p.line_ids),
                _long("Description"),
            ),
        )
        await uow.commit()
    await world.back_office()
    await _asked_and_answered(world, claim.id, p.buyer_id, rounds=3)
    await world.back_office()  # the buyer's questions, the topic's card with the staff note

    latest = _long("A2")
    for user_id, command in ((BUYER, f"/claim {claim.id}"), (ADMIN, f"/case {claim.id}")):
        [card] = await world.say(user_id, command)
        assert latest in card["text"]  # the newest answer whole, as typed
        assert "earlier steps not shown" in card["text"]
        assert _long("Q0") not in card["text"]
        assert len(card["text"]) <= 4096

    thread, _ = await topic_of(world, claim.id)
    cards = [m for m in await in_topic(world, group, thread) if "Timeline" in (m.get("text") or "")]
    assert cards and all(latest in m["text"] for m in cards[-1:])


async def test_a_claim_on_many_long_titled_items_shows_what_fits(world: World) -> None:
    await staffed(world, group=False)
    now = world.env.clock.now()
    lines = tuple((f"LONG-{i}", "C1", 1, 1_000, 100) for i in range(20))
    made = order("LONG", now, lines=lines)
    titled = replace(
        made,
        lines=tuple(replace(x, title=(f"{x.sku} {MARKUP} " + "t" * 300)[:300]) for x in made.lines),
    )
    [big] = await place(world.uows, now, titled)
    await world.user(BUYER)
    await world.say(BUYER, f"/start {await world.token('buyer', big.buyer_id)}")
    claim_id = await file_for_review(world, big)
    await world.back_office()

    [card] = await world.say(BUYER, f"/claim {claim_id}")
    assert f"LONG-0 {MARKUP}" in card["text"]
    assert "more not shown here" in card["text"]
    [staff_card] = await world.say(ADMIN, f"/case {claim_id}")
    assert "more not shown here" in staff_card["text"]


async def test_a_staff_name_in_a_refusal_toast_is_shown_as_typed(world: World) -> None:
    name = "&<>" * 21  # 63 characters; a toast holds 200, but escaped this is 390
    await staffed(world, group=False, agent=name)
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    [zoe] = await world.say(ADMIN, f"/case {n}")
    [maxs] = await world.say(AGENT, f"/case {n}")
    await press_in(world, AGENT, AGENT, maxs, "Take")

    await press_in(world, ADMIN, ADMIN, zoe, "Approve")
    assert (await toasts_in(world, ADMIN))[-1].startswith(f"{name} has already taken claim #{n}")


async def test_a_long_text_sent_for_an_amount_is_refused_in_a_short_answer(world: World) -> None:
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    [card] = await world.say(ADMIN, f"/case {n}")
    await press_in(world, ADMIN, ADMIN, card, "Goodwill")

    [refused] = await world.say(ADMIN, _long("Not an amount", 4096))
    assert "is not an amount I can read" in refused["text"]
    # quoted as typed (markup shown, not applied), cut short
    assert refused["text"].startswith("“Not an amount <b>x</b>") and "…”" in refused["text"]
    assert len(refused["text"]) < 200


async def test_a_claim_dialog_on_many_long_titled_items_can_be_checked_and_filed(
    world: World,
) -> None:
    now = world.env.clock.now()
    lines = tuple((f"L{i:02} ", f"C{i % 2}", 1, 1_000, 100) for i in range(16))
    made = order("MANY", now, lines=lines)
    titled = replace(
        made,
        lines=tuple(replace(x, title=(f"{x.sku}{MARKUP} " + "t" * 300)[:300]) for x in made.lines),
    )
    [big] = await place(world.uows, now, titled)
    await world.user(BUYER)
    await world.say(BUYER, f"/start {await world.token('buyer', big.buyer_id)}")

    await world.say(BUYER, "/new")
    await buyer_press(world, BUYER, "MANY")
    for n, (sku, *_) in enumerate(lines):
        if n and n % LINES_PAGE == 0:  # the items are paged
            await buyer_press(world, BUYER, "▶")
        await buyer_press(world, BUYER, sku)
    await buyer_press(world, BUYER, "Next")
    await buyer_press(world, BUYER, "Return and refund")
    await buyer_press(world, BUYER, "Damaged in transit")
    await world.say(BUYER, _long("Described"))
    [summary] = await buyer_press(world, BUYER, "Done")
    assert "Please check your claim" in summary["text"]
    assert f"L15 {MARKUP}" in summary["text"] and _long("Described") in summary["text"]

    replies = await buyer_press(world, BUYER, "Confirm", summary)
    [filed] = [r for r in replies if "filed" in r["text"]]
    assert f"L00 {MARKUP}" in filed["text"] and f"L15 {MARKUP}" in filed["text"]


async def test_a_long_text_after_a_slash_is_answered_as_an_unknown_command(world: World) -> None:
    await staffed(world, group=False)
    [answer] = await world.say(ADMIN, "/" + "x&<" * 1365)  # 4096 characters, no space
    assert answer["text"].startswith("I don't know /x&<x&<")
    assert "Send /help" in answer["text"]
