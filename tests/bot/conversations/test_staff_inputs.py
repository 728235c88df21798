"""Whatever staff type — a number too big for any claim, an amount in the wrong shape or
beyond what the step allows, a reason too long — is answered with one clear sentence that
fits a message, and the case is left exactly as it was."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage import tables as t
from storage.repositories import TopicRepo
from tests.bot.conversations.buyer_kit import no_rejected_calls, restarted_bot
from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import conversation
from tests.bot.conversations.kit import press
from tests.bot.conversations.staff_kit import (
    ADMIN,
    AGENT,
    BUYER,
    direct,
    file_for_review,
    in_topic,
    parties,
    press_in,
    staffed,
    status,
    texts,
    topic_of,
)
from workflow.claims import Actor, Role
from workflow.services import review
from workflow.services.accounts import actors_for

HUGE = "9" * 20  # no claim, page or Telegram user has such a number
# An amount as long as a command can carry: a reply quoting it whole would not fit a message.
LONG = "9" * 4080


async def _case(world: World, claim_id: int) -> tuple[Any, ...]:
    """Everything a refused input must leave alone: the claim, its timeline, who holds it,
    its refunds."""
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        events = len(await uow.claims.timeline(claim_id))
        holds = len(await TopicRepo(uow.session).holds(claim_id))
        refunds = await uow.session.scalar(
            select(func.count()).select_from(t.Refund).where(t.Refund.claim_id == claim_id)
        )
        return claim.status, claim.version, events, holds, refunds


async def _roles(world: World, user_id: int) -> list[str]:
    async with world.uows() as uow:
        return [a.role.value for a in await actors_for(uow, "telegram", user_id)]


async def test_bad_command_arguments_get_a_clear_answer_and_change_nothing(world: World) -> None:
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    before = await _case(world, n)
    table = [
        # (who, what they type, what the answer says)
        (AGENT, f"/case {HUGE}", "Usage: /case"),
        (AGENT, f"/inspect {HUGE} intact", "Usage: /inspect"),
        (AGENT, f"/refund {HUGE} 5", "Usage: /refund"),
        (ADMIN, f"/grant {HUGE} agent", "Usage: /grant"),
        (AGENT, f"/refund {n} 0", "The amount must be more than zero"),
        (AGENT, f"/refund {n} 0.001", "“0.001” is not an amount I can read"),
        (AGENT, f"/refund {n} 1e3", "“1e3” is not an amount I can read"),
        (AGENT, f"/refund {n} <b>5</b>", "“<b>5</b>” is not an amount"),  # shown, not obeyed
        (
            AGENT,
            f"/refund {n} 100000",
            "100000.00 CNY is too much: the most allowed here is 100.00",
        ),
        (AGENT, f"/refund {n} {LONG}", "“999999999999999999999999…” is not an amount"),
        (ADMIN, f"/grant {ADMIN} agent", "You cannot change your own role"),
    ]
    for who, typed, expected in table:
        replies = await world.say(who, typed)
        assert [expected in m["text"] for m in replies] == [True], (typed[:40], replies)
        assert await _case(world, n) == before, typed[:40]
    assert await _roles(world, ADMIN) == ["admin"]  # still able to grant
    # the number on the next line (or after a tab) is the command's argument all the same
    for typed in (f"/case\n{n}", f"/case\t {n} "):
        [card] = await world.say(AGENT, typed)
        assert card["text"].startswith(f"Claim #{n} ·"), (typed, card["text"][:60])
    [granted] = await world.say(ADMIN, "/grant 12345 agent")  # never wrote to the bot: fine
    assert "User 12345 is now agent" in granted["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_an_amount_prompt_refuses_bad_amounts_and_keeps_waiting(world: World) -> None:
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    [prompt] = await press(world, AGENT, "Goodwill refund", card)
    before = await _case(world, n)
    for typed, expected in (
        ("0", "The amount must be more than zero"),
        ("100.01", "100.01 CNY is too much: the most allowed here is 100.00 CNY"),
        ("12,5", "“12,5” is not an amount I can read"),
        (LONG, "“999999999999999999999999…” is not an amount"),
    ):
        replies = await world.say(AGENT, typed)
        assert [expected in m["text"] for m in replies] == [True], (typed[:30], replies)
        assert await _case(world, n) == before, typed[:30]
        assert await conversation(world, AGENT) is not None  # still waiting for the amount
    [cancelled] = await world.say(AGENT, "/cancel")
    assert f"Claim #{n} is unchanged: nothing was sent" in cancelled["text"]
    assert await _case(world, n) == before
    assert "send the goodwill refund amount" in prompt["text"] and "/cancel" in prompt["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_card_too_long_for_one_message_is_shortened_not_lost(world: World) -> None:
    """Three rounds of a 1000-character question and answer, then a 1000-character reason:
    every card (staff's, the topic's, the buyer's) still arrives, the newest step first."""
    group = await staffed(world)
    assert group is not None
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    for round_ in range(3):
        async with world.uows() as uow:
            await review.request_info(
                uow, world.env, Actor(Role.SUPERVISOR, None), n, None, f"Q{round_} " + "q" * 990
            )
            await uow.commit()
        async with world.uows() as uow:
            buyer = Actor(Role.BUYER, p.buyer_id)
            await review.provide_info(uow, world.env, buyer, n, None, "<" * 1000)
            await uow.commit()
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    [prompt] = await press(world, AGENT, "Reject", card)
    assert "at most 1000 characters" in prompt["text"]
    reason = "Not covered: " + "r" * 987
    [done, fresh] = await world.say(AGENT, reason)
    assert f"claim #{n} updated" in done["text"]
    assert "Rejected" in fresh["text"] and "Not covered: rrr" in fresh["text"]
    assert len(fresh["text"]) <= 4096
    await world.back_office()
    [buyers_card] = await world.say(BUYER, f"/claim {n}")
    assert "Not covered: rrr" in buyers_card["text"]
    thread, _ = await topic_of(world, n)
    said = [m.get("text", "") for m in await in_topic(world, group, thread) if m["outgoing"]]
    assert any("Not covered: rrr" in x for x in said)
    # The reason reached the buyer whole, in the message that told them.
    assert any(
        reason in m.get("text", "") for m in (await world.client.messages(BUYER))["messages"]
    )
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_answers_typed_while_the_bot_was_down_are_taken_once(world: World) -> None:
    """A reason asked in a case's topic and an amount asked in a private chat: the bot is
    killed with both prompts open, both answers are typed meanwhile, the restarted bot takes
    each (once: the same update delivered again changes nothing)."""
    world.provoke("getUpdates: None")  # the killed bot's poll is cut off
    group = await staffed(world)
    assert group is not None
    a = await file_for_review(world, await parties(world))
    b = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    thread, _ = await topic_of(world, a)
    topic_card = [m for m in await in_topic(world, group, thread) if m["outgoing"]][-1]
    await press_in(world, ADMIN, group, topic_card, "Reject")
    [card] = await world.say(AGENT, f"/case {b}")
    await press(world, AGENT, "Goodwill refund", card)
    async with restarted_bot(world) as up:
        reason = await world.client.send(
            ADMIN, "not covered", chat_id=group, message_thread_id=thread
        )
        amount = await world.client.send(AGENT, "30")
        await up()
        await world.handled(reason["update_id"])
        await world.handled(amount["update_id"])
    assert await status(world, a) == "rejected"
    assert (await _case(world, b))[4] == 1  # one refund
    assert f"claim #{b} updated" in (await texts(world, AGENT))[-2]
    again = await direct(world, AGENT, update_id=amount["update_id"], text="30")
    assert again == []
    assert (await _case(world, b))[4] == 1
    await no_rejected_calls(world, stopped_polls=2)
