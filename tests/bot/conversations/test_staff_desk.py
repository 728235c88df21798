"""Staff in their private chat: the queue, a case, decisions, inspection, refunds, search and
roles — and every bad input answered clearly with nothing changed."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.conversations.model import Toast
from storage.repositories import TopicRepo
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import buttons, press
from tests.bot.conversations.staff_kit import (
    ADMIN,
    AGENT,
    BUYER,
    CONSIGNOR,
    direct,
    file_as_buyer,
    file_for_review,
    parties,
    press_in,
    staffed,
    status,
    texts,
    toasts_in,
)
from tests.factories import order, place
from tests.sandbox.sandbox_testkit import png
from workflow.claims import Actor, ClaimType, Reason, Role
from workflow.services import review
from workflow.sweeps import run_overdue_orders


async def _approvals(world: World, claim_id: int) -> int:
    async with world.uows() as uow:
        return [e.trigger for e in await uow.claims.timeline(claim_id)].count("approve")


async def test_find_shows_that_the_system_flagged_an_order_overdue_and_what_it_did(
    world: World,
) -> None:
    """An order not shipped in time, flagged by the sweep: with a claim opened, or with the
    buyer only offered one (then no claim exists to find), /find on the order says so."""
    await staffed(world, group=False)
    now = world.env.clock.now()
    await place(world.uows, now, order("OVF-1", now, buyer="B-OVF-1", delivered=False))
    world.env.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    offering = replace(world.env, policy=replace(world.env.policy, overdue_opens_claim=False))
    assert await run_overdue_orders(world.uows, offering) == 1
    flagged = world.env.clock.now().astimezone(ZoneInfo("Asia/Shanghai"))
    await place(world.uows, flagged, order("OVF-2", flagged, buyer="B-OVF-2", delivered=False))
    world.env.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    await world.back_office()  # the default policy: a claim is opened for the buyer

    [offered] = await world.say(AGENT, "/find OVF-1")
    at = f"{flagged.day} {flagged:%b} {flagged.year}, {flagged:%H:%M} (UTC+8)"
    assert offered["text"].splitlines() == [
        "No claim matches “OVF-1”.",
        f"⏰ Order OVF-1: flagged by the system on {at} as not shipped in time; "
        "the buyer was offered to open a claim.",
    ]
    [opened] = await world.say(AGENT, "/find OVF-2")
    found, event = opened["text"].splitlines()
    assert found.startswith("Claims matching “OVF-2”: #")
    assert event.startswith("⏰ Order OVF-2: flagged by the system on ")
    assert event.endswith("; a refund claim was opened for the buyer.")


async def test_find_with_many_claims_shows_the_newest_and_says_how_many_more(
    world: World,
) -> None:
    """A buyer with more claims than one answer lists: the newest are shown (the one they
    are calling about is among them), and the answer says how many older ones there are."""
    await staffed(world, group=False)
    p = await parties(world, ref="MNY-1", lines=23)
    numbers = []
    for line in p.line_ids:
        number = await file_as_buyer(
            world, p.buyer_id, ClaimType.REFUND_ONLY, Reason.QUALITY_ISSUE, (line,), "torn"
        )
        numbers.append(number)
    for term in ("MNY-1", "B-MNY-1"):
        [found] = await world.say(AGENT, f"/find {term}")
        listed = [int(x) for x in re.findall(r"#(\d+)", found["text"])]
        assert listed == sorted(numbers, reverse=True)[:20], found["text"]
        assert "and 3 older" in found["text"], found["text"]
    [few] = await world.say(AGENT, "/find MNY-1-0")
    assert few["text"] == "No claim matches “MNY-1-0”."


async def test_the_queue_is_paged_oldest_first_with_time_waiting(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    first = await file_for_review(world, p)
    await world.back_office()
    for _ in range(10):
        world.env.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
        await file_for_review(world, await parties(world, bind=False))
        await world.back_office()
    [page1] = await world.say(AGENT, "/queue")
    lines = page1["text"].splitlines()
    assert "11 waiting, oldest first) — page 1/2" in lines[0]
    assert lines[1].startswith(f"#{first} ·") and "waiting 10 h" in lines[1]
    assert len(lines) == 11
    [page2] = await press(world, AGENT, "Older", page1)
    assert "page 2/2" in page2["text"] and "waiting 0 min" in page2["text"]
    [back] = await press(world, AGENT, "Newer", page2)
    assert f"#{first} ·" in back["text"]
    # Each case on the page has a button that opens its card.
    [opened] = await press(world, AGENT, f"Open #{first}", back)
    assert opened["text"].startswith(f"Claim #{first} ·")
    assert any("Approve" in b for b in buttons(opened))
    [usage] = await world.say(AGENT, "/queue two")
    assert "Usage: /queue" in usage["text"]
    [refused] = await world.say(BUYER, "/queue")
    assert "/queue is not available to you" in refused["text"]
    [forged] = toasts(await direct(world, AGENT, callback_data="sq:two"))
    assert "not recognised" in forged
    [not_for_buyer] = toasts(await direct(world, BUYER, callback_data="sq:1"))
    assert "not for you" in not_for_buyer
    assert (await world.client.calls(ok=False))["calls"] == []


def toasts(outputs: list[object]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Toast)]


async def test_two_staff_press_approve_one_wins_and_replays_change_nothing(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    [mine] = await world.say(ADMIN, f"/case {n}")
    [theirs] = await world.say(AGENT, f"/case {n}")
    assert "Nobody has taken this case yet" in mine["text"]
    pressed = await press_in(world, ADMIN, ADMIN, mine, "Approve")
    await press_in(world, AGENT, AGENT, theirs, "Approve")
    assert "already been handled" in (await toasts_in(world, AGENT))[-1]
    assert await _approvals(world, n) == 1
    # The same update delivered again is ignored; a forged or stale button changes nothing.
    assert await direct(world, ADMIN, update_id=pressed["update_id"], callback_data="x") == []
    [forged] = toasts(await direct(world, ADMIN, callback_data=f"c:{n}:approve:abc"))
    assert "not recognised" in forged
    [stale] = toasts(await direct(world, ADMIN, callback_data=f"c:{n}:approve:1"))
    assert "already been handled" in stale
    async with world.uows() as uow:
        version = (await uow.claims.get(n)).version  # type: ignore[union-attr]
    [buyer_try] = toasts(await direct(world, BUYER, callback_data=f"c:{n}:approve:{version}"))
    assert "not for you" in buyer_try
    assert await _approvals(world, n) == 1
    [usage] = await world.say(ADMIN, "/case twelve")
    assert "Usage: /case 12" in usage["text"]
    [missing] = await world.say(ADMIN, "/case 9999")
    assert "no claim 9999" in missing["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_reject_asks_for_a_reason_and_refuses_what_is_not_one(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    [prompt] = await press(world, AGENT, "Reject", card)
    assert "send the reason" in prompt["text"]
    await world.client.send_file(AGENT, "photo", png(), "x.png", "image/png")
    await world.client.wait_idle(quiet_ms=200)
    again = (await texts(world, AGENT))[-1]
    assert "send the reason" in again
    sent = await world.client.send(AGENT, "", contact={"phone_number": "+1", "first_name": "X"})
    await world.handled(sent["update_id"])
    assert "send the reason" in (await texts(world, AGENT))[-1]  # a contact is no reason
    [too_long] = await world.say(AGENT, "x" * 1001)
    assert "too long: 1001 characters, and at most 1000 fit" in too_long["text"]
    assert await status(world, n) == "needs_review"
    [cancelled] = await world.say(AGENT, "/cancel")
    assert await status(world, n) == "needs_review"
    [card] = await world.say(AGENT, f"/case {n}")
    await press(world, AGENT, "Reject", card)
    [done, _card] = await world.say(AGENT, "<b>not</b> covered: wear and tear")
    assert f"claim #{n} updated" in done["text"]
    assert await status(world, n) == "rejected"
    async with world.uows() as uow:
        [event] = [e for e in await uow.claims.timeline(n) if e.trigger == "reject"]
    assert event.note == "<b>not</b> covered: wear and tear"
    assert "<b>not</b> covered" in _card["text"]  # what staff typed is shown, not obeyed
    assert f"Claim #{n} is unchanged" in cancelled["text"]  # staff file nothing
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_ask_for_info_goodwill_refund_find_and_grant(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world, ref="FND-1")
    n = await file_for_review(world, p)
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    await press(world, AGENT, "Ask for information", card)
    await world.say(AGENT, "Which part is cracked?")
    assert await status(world, n) == "awaiting_info"
    await world.back_office()
    assert any("Which part is cracked?" in x for x in await texts(world, BUYER))

    for bad in (f"/refund {n} lots", f"/refund {n} -5", f"/refund {n} 100000"):
        [refused] = await world.say(AGENT, bad)
        assert "not an amount I can read" in refused["text"] or "too much" in refused["text"], bad
        assert await status(world, n) == "awaiting_info"
    [usage] = await world.say(AGENT, "/refund")
    assert "Usage: /refund" in usage["text"]
    [refunded] = await world.say(AGENT, f"/refund {n} 30")
    assert "Refund in progress" in refunded["text"]
    [retried] = await world.say(AGENT, f"/refund {n} retry")
    assert retried["text"] == f"Claim #{n} has no failed refund: nothing was sent again."

    [by_order] = await world.say(AGENT, "/find FND-1")
    assert f"#{n}" in by_order["text"]
    [by_buyer] = await world.say(AGENT, "/find B-FND-1")
    assert f"#{n}" in by_buyer["text"]
    [typed_small] = await world.say(AGENT, "/find fnd-1")  # printed in capitals, typed not
    assert f"#{n}" in typed_small["text"]
    [nothing] = await world.say(AGENT, "/find <nope>")
    assert "No claim matches “<nope>”" in nothing["text"]
    [find_usage] = await world.say(AGENT, "/find")
    assert "Usage: /find" in find_usage["text"]

    [not_admin] = await world.say(AGENT, f"/grant {BUYER} agent")
    assert "/grant is not available to you" in not_admin["text"]
    [grant_usage] = await world.say(ADMIN, f"/grant {BUYER} boss")
    assert "Usage: /grant" in grant_usage["text"]
    [promoted] = await world.say(ADMIN, f"/grant {AGENT} supervisor")
    assert "now supervisor" in promoted["text"]
    for party in (BUYER,):
        seen = " ".join(await texts(world, party))
        assert "Max" not in seen and "Zoe" not in seen
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_an_admin_takes_a_staff_role_away_and_can_give_it_again(world: World) -> None:
    """Someone who left: /grant USER none. They no longer use staff's commands or hear staff
    messages; their name stays on what they did; an admin cannot take their own role."""
    await staffed(world, group=False)
    asked = await file_for_review(world, await parties(world))
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {asked}")
    await press(world, AGENT, "Reject", card)  # a reason is asked of him: left unanswered
    [own] = await world.say(ADMIN, f"/grant {ADMIN} none")
    assert "cannot change your own role" in own["text"]
    [nobody] = await world.say(ADMIN, "/grant 424242 none")
    assert nobody["text"] == "User 424242 is not staff: nothing was changed."
    [revoked] = await world.say(ADMIN, f"/grant {AGENT} none")
    assert f"User {AGENT} is no longer staff" in revoked["text"]
    async with world.uows() as uow:  # the question asked of him as staff waits for nobody
        assert await uow.chat.conversation("telegram", AGENT) is None
    [queue] = await world.say(AGENT, "/queue")  # no role left: a stranger to the bot
    assert "I don't know who you are yet" in queue["text"], queue["text"]
    before = len(await texts(world, AGENT))
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    assert any(f"#{n}" in x for x in await texts(world, ADMIN))  # staff are told …
    assert not any(f"#{n}" in x for x in (await texts(world, AGENT))[before:])  # … not them
    [again] = await world.say(ADMIN, f"/grant {AGENT} agent")
    assert "now agent" in again["text"]
    [queue] = await world.say(AGENT, "/queue")
    assert f"#{n}" in queue["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_nobody_on_staff_handles_a_claim_of_their_own(world: World) -> None:
    """Max on staff also buys on the platform: his own claim is a colleague's to decide. He
    can read its card; Take, Approve, /refund and /inspect are refused and change nothing."""
    await staffed(world, group=False)
    p = await parties(world, bind=False)
    await world.say(AGENT, f"/start {await world.token('buyer', p.buyer_id)}")
    n = await file_for_review(world, p)
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")  # read as its buyer: no staff buttons
    assert f"Claim #{n}" in card["text"] and "Approve" not in buttons(card)
    assert "Take" not in " ".join(buttons(card))
    for typed in (f"/refund {n} 5", f"/inspect {n} intact"):
        [refused] = await world.say(AGENT, typed)
        assert refused["text"].startswith(f"Claim #{n} is your own"), (typed, refused["text"])
    assert await status(world, n) == "needs_review"
    [colleague] = await world.say(ADMIN, f"/case {n}")
    await press(world, ADMIN, "Approve", colleague)
    assert await status(world, n) != "needs_review"


async def test_a_claim_in_a_currency_with_no_value_limit_goes_to_a_person_who_is_told_why(
    world: World,
) -> None:
    """A dollar return the rules would approve in yuan: with no limit set for USD it waits
    for staff, and the card says why in words (not "over 1,000.00 USD")."""
    await staffed(world, group=False)
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("USD-1", now, buyer="B-USD", currency="USD"))
    n = await file_as_buyer(
        world, p.buyer_id, ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS, p.line_ids
    )
    await world.back_office()
    assert await status(world, n) == "needs_review"
    [card] = await world.say(AGENT, f"/case {n}")
    assert "no limit for automatic approval is set for USD" in card["text"], card["text"]


async def test_a_partial_refund_shows_its_amount_on_the_card(world: World) -> None:
    """/refund N 12.50 on a 100.00 claim: the answer, staff's card later and the buyer's card
    say 12.50 is refunded — not only the 100.00 claimed next to "Refund in progress"."""
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    assert "Refund:" not in card["text"]  # nothing refunded yet
    [answer] = await world.say(AGENT, f"/refund {n} 12.5")
    assert "Refund in progress" in answer["text"]
    assert "Refund: 12.50 CNY" in answer["text"], answer["text"]
    await world.back_office()
    [again] = await world.say(ADMIN, f"/case {n}")
    assert "Refund: 12.50 CNY" in again["text"]
    [buyers] = await world.say(BUYER, f"/claim {n}")
    assert "Refund: 12.50 CNY" in buyers["text"], buyers["text"]
    # … and so do the buyer's messages, not a bare "the refund is being processed"
    told = [m.get("text") or "" for m in (await world.client.messages(BUYER))["messages"]]
    assert any(f"Claim #{n}: a refund of 12.50 CNY is being processed" in t for t in told), told
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_inspection_per_line_proposes_compensation(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world, lines=2)
    n = await file_for_review(world, p)
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    await press(world, AGENT, "Approve", card)
    await world.back_office()
    async with world.uows() as uow:
        [shipment] = await uow.shipments.for_claim(n)
    world.carrier.hand_over(shipment.tracking_number)
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    assert await status(world, n) == "return_received"

    for bad in (
        f"/inspect {n}",
        f"/inspect {n} broken",
        f"/inspect {n} damaged",
        f"/inspect {n} damaged 30 nobody",
        f"/inspect {n} intact 30",
    ):
        [usage] = await world.say(AGENT, bad)
        assert "Usage: /inspect" in usage["text"], bad
    [lines] = await world.say(AGENT, f"/inspect {n} intact damaged intact")
    assert "2 line(s)" in lines["text"]
    [amount] = await world.say(AGENT, f"/inspect {n} intact damaged lots consignor")
    assert "“lots” is not an amount I can read" in amount["text"]
    [over] = await world.say(AGENT, f"/inspect {n} intact damaged 100.01 consignor")
    assert "100.01 CNY is too much: the most allowed here is 100.00 CNY" in over["text"]
    [missing] = await world.say(AGENT, "/inspect 9999 intact")
    assert "no claim 9999" in missing["text"]
    assert await status(world, n) == "return_received"
    [done] = await world.say(AGENT, f"/inspect {n} intact damaged 30 consignor")
    assert "Compensation proposed" in done["text"]
    async with world.uows() as uow:
        results = sorted(str(line.inspection) for line in await uow.claims.lines(n))
    assert results == ["damaged", "intact"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_reason_for_a_case_that_moved_on_is_refused_once_and_the_prompt_ends(
    world: World,
) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    await press(world, AGENT, "Ask for information", card)
    await world.say(AGENT, "Which part is cracked?")
    [card] = await world.say(AGENT, f"/case {n}")
    [prompt] = await press(world, AGENT, "Reject", card)
    assert "send the reason" in prompt["text"]
    # Meanwhile the buyer answers: the case is back in review, at a newer version.
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        await review.provide_info(
            uow, world.env, Actor(Role.BUYER, p.buyer_id), n, claim.version, "the lid"
        )
        await uow.commit()
    [stale] = await world.say(AGENT, "not covered")
    assert "changed meanwhile" in stale["text"] and "no longer waiting" in stale["text"]
    assert await status(world, n) == "needs_review"
    # The prompt is over: the next message is ordinary chat, not another refusal.
    [after] = await world.say(AGENT, "hello?")
    assert "out of date" not in after["text"] and "changed meanwhile" not in after["text"]
    [nothing] = await world.say(AGENT, "/cancel")
    assert "nothing to cancel" in nothing["text"]
    assert await status(world, n) == "needs_review"
    assert (await world.client.calls(ok=False))["calls"] == []


async def _holds(world: World, claim_id: int) -> list[tuple[str, str | None, str]]:
    """(holder, previous holder, how) of each change of holder, oldest first."""
    async with world.uows() as uow:
        topics = TopicRepo(uow.session)
        return [
            (
                await topics.staff_name(h.staff_id) or "?",
                await topics.staff_name(h.previous_id) if h.previous_id else None,
                h.how,
            )
            for h in await topics.holds(claim_id)
        ]


async def _last(world: World, chat_id: int) -> dict[str, Any]:
    return [m for m in (await world.client.messages(chat_id))["messages"] if m["outgoing"]][-1]


async def test_a_case_a_colleague_took_is_not_acted_on_unknowingly(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    [zoe] = await world.say(ADMIN, f"/case {n}")  # drawn before Max took the case
    [maxs] = await world.say(AGENT, f"/case {n}")
    await press_in(world, AGENT, AGENT, maxs, "Take")

    # Zoe's decisions, commands and prompts are refused, naming Max, with "Take over".
    await press_in(world, ADMIN, ADMIN, zoe, "Approve")
    assert "Max has already taken" in (await toasts_in(world, ADMIN))[-1]
    offer = await _last(world, ADMIN)
    assert "Max has taken" in offer["text"] and "Take over" in str(offer["reply_markup"])
    await press_in(world, ADMIN, ADMIN, zoe, "Reject")
    assert "nothing was changed" in (await toasts_in(world, ADMIN))[-1]
    [talk] = await world.say(ADMIN, "not covered")  # no prompt was opened
    assert "send the reason" not in talk["text"]
    [refused] = await world.say(ADMIN, f"/refund {n} 30")
    assert "Max has taken" in refused["text"]
    [nothing] = await world.say(ADMIN, f"/refund {n} retry")  # nothing to do: nothing taken
    assert "has no failed refund" in nothing["text"]
    assert await status(world, n) == "needs_review"
    assert await _holds(world, n) == [("Max", None, "take")]

    # Zoe takes it over: recorded, her offer says so, her fresh card names her.
    await press_in(world, ADMIN, ADMIN, offer, "Take over")
    [said] = [
        m
        for m in (await world.client.messages(ADMIN))["messages"]
        if m["message_id"] == offer["message_id"]
    ]
    assert f"Zoe took over claim #{n} from Max" in said["text"]
    fresh = await _last(world, ADMIN)
    assert "Taken by: Zoe" in fresh["text"]
    assert await _holds(world, n) == [("Max", None, "take"), ("Zoe", "Max", "take_over")]

    # Now Max is the one refused; Zoe decides.
    await press_in(world, AGENT, AGENT, maxs, "Approve")
    assert "Zoe has already taken" in (await toasts_in(world, AGENT))[-1]
    assert await status(world, n) == "needs_review"
    await press_in(world, ADMIN, ADMIN, fresh, "Approve")
    assert await status(world, n) == "approved"

    # A case nobody holds: whoever acts first holds it.
    m = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {m}")
    await press_in(world, AGENT, AGENT, card, "Approve")
    assert await status(world, m) == "approved"
    assert await _holds(world, m) == [("Max", None, "acted")]

    for party in (BUYER, CONSIGNOR):  # staff stay anonymous to buyers and consignors
        seen = " ".join(await texts(world, party))
        assert "Max" not in seen and "Zoe" not in seen
    assert (await world.client.calls(ok=False))["calls"] == []


async def _version_and_timeline(world: World, claim_id: int) -> tuple[int, int]:
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        return claim.version, len(await uow.claims.timeline(claim_id))


async def _message(world: World, chat_id: int, message_id: int) -> dict[str, Any]:
    messages = (await world.client.messages(chat_id))["messages"]
    return next(m for m in messages if m["message_id"] == message_id)


async def test_the_holder_is_not_offered_take_and_a_stale_take_changes_nothing(
    world: World,
) -> None:
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    [first] = await world.say(AGENT, f"/case {n}")  # both drawn before Max took the case
    [stale] = await world.say(AGENT, f"/case {n}")
    assert "🙋 Take" in buttons(first)

    # Max takes the case: the card he pressed on is redrawn without "Take", and so is any
    # card of it he opens later; Zoe is offered to take it over.
    await press_in(world, AGENT, AGENT, first, "Take")
    first = await _message(world, AGENT, first["message_id"])
    assert "Taken by: Max" in first["text"]
    assert not any("Take" in b for b in buttons(first)), buttons(first)
    [again] = await world.say(AGENT, f"/case {n}")
    assert not any("Take" in b for b in buttons(again)), buttons(again)
    [zoe] = await world.say(ADMIN, f"/case {n}")
    assert "🙋 Take over…" in buttons(zoe)

    # Max presses the "Take" of the card drawn before: told he holds the case, nothing changes.
    before = await _version_and_timeline(world, n)
    await press_in(world, AGENT, AGENT, stale, "Take")
    assert (await toasts_in(world, AGENT))[
        -1
    ] == f"You already hold claim #{n}: nothing was changed."
    assert await _version_and_timeline(world, n) == before
    assert await _holds(world, n) == [("Max", None, "take")]
    stale = await _message(world, AGENT, stale["message_id"])
    assert not any("Take" in b for b in buttons(stale)), buttons(stale)

    # Zoe's "Take over…" asks first, naming Max; taking over works as before.
    await press_in(world, ADMIN, ADMIN, zoe, "Take over…")
    offer = await _last(world, ADMIN)
    assert "Max has taken" in offer["text"]
    await press_in(world, ADMIN, ADMIN, offer, "Take over")
    assert await _holds(world, n) == [("Max", None, "take"), ("Zoe", "Max", "take_over")]
    fresh = await _last(world, ADMIN)
    assert "Taken by: Zoe" in fresh["text"] and not any("Take" in b for b in buttons(fresh))
    [maxs] = await world.say(AGENT, f"/case {n}")
    assert "🙋 Take over…" in buttons(maxs)

    # In Chinese: the holder's card has no "接手"; her older card's button is answered.
    [choose] = await world.say(ADMIN, "/lang")
    await press(world, ADMIN, "简体中文", choose)
    [zh] = await world.say(ADMIN, f"/case {n}")
    assert not any("接手" in b for b in buttons(zh)), buttons(zh)
    [choose] = await world.say(AGENT, "/lang")
    await press(world, AGENT, "简体中文", choose)
    [zh_max] = await world.say(AGENT, f"/case {n}")
    assert "🙋 改由我接手…" in buttons(zh_max)
    before = await _version_and_timeline(world, n)
    await press_in(world, ADMIN, ADMIN, zoe, "Take over…")
    assert (await toasts_in(world, ADMIN))[-1] == f"售后单 #{n} 已由你处理，未做任何更改。"
    assert await _version_and_timeline(world, n) == before
    assert await _holds(world, n) == [("Max", None, "take"), ("Zoe", "Max", "take_over")]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_the_timeline_explains_the_systems_steps_in_the_staff_members_language(
    world: World,
) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    n = await file_for_review(world, p)  # a quality issue without photos: sent to a person
    await world.back_office()
    [card] = await world.say(AGENT, f"/case {n}")
    assert "Filed → Submitted — by the buyer" in card["text"]
    assert "Waiting for review — damage reported without photos" in card["text"]
    [choose] = await world.say(AGENT, "/lang")
    await press(world, AGENT, "简体中文", choose)
    [card] = await world.say(AGENT, f"/case {n}")
    timeline = card["text"].split("进度", 1)[1]
    assert "买家提交" in timeline and "报告损坏但未附照片" in timeline
    assert not re.search("[A-Za-z]", timeline), timeline  # no English note in a Chinese card


async def test_a_take_over_pressed_after_a_colleague_took_over_first_displaces_nobody(
    world: World,
) -> None:
    lee = 806
    await staffed(world, group=False)
    await world.user(lee, "Lee")
    await world.say(lee, "/start")
    await world.say(ADMIN, f"/grant {lee} agent")
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    [maxs] = await world.say(AGENT, f"/case {n}")
    await press_in(world, AGENT, AGENT, maxs, "Take")
    # Zoe and Lee are both refused, naming Max, and both offered "Take over".
    [zoe] = await world.say(ADMIN, f"/case {n}")
    await press_in(world, ADMIN, ADMIN, zoe, "Take over…")
    zoe_offer = await _last(world, ADMIN)
    [lees] = await world.say(lee, f"/case {n}")
    await press_in(world, lee, lee, lees, "Take over…")
    lee_offer = await _last(world, lee)
    assert "Max has taken" in zoe_offer["text"] and "Max has taken" in lee_offer["text"]

    await press_in(world, ADMIN, ADMIN, zoe_offer, "Take over")
    assert await _holds(world, n) == [("Max", None, "take"), ("Zoe", "Max", "take_over")]
    # Lee's offer named Max, who no longer holds the case: Lee is told Zoe has it now and
    # asked again; Zoe is not displaced by a button drawn before she took over.
    await press_in(world, lee, lee, lee_offer, "Take over")
    assert "Zoe has already taken" in (await toasts_in(world, lee))[-1]
    assert "Zoe has taken" in (await _last(world, lee))["text"]
    assert await _holds(world, n) == [("Max", None, "take"), ("Zoe", "Max", "take_over")]
    # Asked again, naming Zoe, Lee may take it over from her.
    await press_in(world, lee, lee, await _last(world, lee), "Take over")
    assert (await _holds(world, n))[-1] == ("Lee", "Zoe", "take_over")
    # A buyer forging the button takes nothing.
    async with world.uows() as uow:
        version = (await uow.claims.get(n)).version  # type: ignore[union-attr]
    [forged] = toasts(await direct(world, BUYER, callback_data=f"ho:{n}:{version}:0"))
    assert "not for you" in forged
    assert (await _holds(world, n))[-1] == ("Lee", "Zoe", "take_over")
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_case_that_has_ended_is_nobodys_to_take(world: World) -> None:
    """No card offers Take on a case that has ended; a Take or Take over forged with its
    current version is answered so, and no holder is recorded."""
    await staffed(world, group=False)
    n = await file_for_review(world, await parties(world))
    await world.back_office()
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        rejected = await review.reject(
            uow, world.env, Actor(Role.ADMIN, None), n, claim.version, "not ours"
        )
        await uow.commit()
    [card] = await world.say(AGENT, f"/case {n}")
    assert "Take" not in str(card.get("reply_markup"))
    for action in ("x_take", "x_take_over"):
        forged = await direct(world, AGENT, callback_data=f"c:{n}:{action}:{rejected.version}")
        assert [f"Claim #{n} has ended: there is nothing to take"] == [
            t.split(",")[0] for t in toasts(forged)
        ]
    [offer] = toasts(await direct(world, AGENT, callback_data=f"ho:{n}:{rejected.version}:0"))
    assert "has ended" in offer
    assert await _holds(world, n) == []
    async with world.uows() as uow:
        assert (await uow.claims.get(n)).version == rejected.version  # type: ignore[union-attr]
