"""Whatever staff type — a number too big for any claim, an amount in the wrong shape or
beyond what the step allows, a reason too long — is answered with one clear sentence that
fits a message, and the case is left exactly as it was."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage import tables as t
from storage.repositories import TopicRepo
from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import conversation
from tests.bot.conversations.kit import press
from tests.bot.conversations.staff_kit import (
    ADMIN,
    AGENT,
    file_for_review,
    parties,
    staffed,
)
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
