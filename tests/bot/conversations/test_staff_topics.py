"""The staff group: a forum topic per case, renamed on every step, closed at the end,
recreated when deleted; who took a case is shown to staff only; the group's budget holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot import staff_group
from bot.conversations.callbacks import ClaimAction
from storage.repositories import TopicRepo
from tests.bot.conversations.buyer_kit import claim_ids
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import buttons as kit_buttons
from tests.bot.conversations.kit import press
from tests.bot.conversations.staff_kit import (
    ADMIN,
    AGENT,
    BUYER,
    CONSIGNOR,
    direct,
    file_for_review,
    in_topic,
    manual_budget,
    parties,
    photos,
    press_in,
    review_topic,
    say_in,
    staffed,
    status,
    texts,
    toasts_in,
    topic_of,
    topics,
)
from tests.sandbox.sandbox_testkit import png
from workflow.claims import Actor, Role
from workflow.services import review


async def _until_closed(world: World, claim_id: int) -> None:
    for _ in range(30):
        if await status(world, claim_id) == "closed":
            return
        world.env.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        await world.back_office()
    raise AssertionError(f"claim {claim_id} never closed: {await status(world, claim_id)}")


async def test_a_case_lives_in_its_topic_from_review_to_completion(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    p = await parties(world)
    evidence = await photos(world, 2)
    n = await file_for_review(world, p, evidence)
    await world.back_office()

    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for review"
    thread = topic["message_thread_id"]
    shown = await in_topic(world, group, thread)
    [card] = [m for m in shown if m.get("reply_markup")]
    assert f"Claim #{n} needs a review" in card["text"]
    assert "Nobody has taken this case yet" in card["text"]
    album = [m for m in shown if m.get("photo")]
    assert len(album) == 2 and len({m.get("media_group_id") for m in album}) == 1
    assert album[0].get("media_group_id")

    # Max takes the case in the topic: everyone sees his name on the card; Zoe is told.
    press = await press_in(world, AGENT, group, card, "Take")
    [card] = [m for m in await in_topic(world, group, thread) if m.get("reply_markup")]
    assert "Taken by: Max" in card["text"]
    # In the group the press is answered before the card is redrawn (which may wait for the
    # group's budget): the spinner never waits on it.
    calls = (await world.client.calls())["calls"]
    answer = next(
        i
        for i, c in enumerate(calls)
        if c["method"] == "answerCallbackQuery"
        and c["params"].get("callback_query_id") == press["callback_query_id"]
    )
    redraw = max(i for i, c in enumerate(calls) if c["method"] == "editMessageText")
    assert answer < redraw
    await press_in(world, ADMIN, group, card, "Take")
    assert "Max has already taken" in (await toasts_in(world, group))[-1]
    [private] = await world.say(ADMIN, f"/case {n}")
    assert "Taken by: Max" in private["text"]

    # Zoe takes it over (from the offer her refused "Take" left in the topic) and approves:
    # the card changes in place; the topic is renamed by delivery.
    [offer] = [
        m for m in await in_topic(world, group, thread) if "Max has taken" in m.get("text", "")
    ]
    assert "Take over" in str(offer["reply_markup"])
    await press_in(world, ADMIN, group, offer, "Take over")
    [card] = [m for m in await in_topic(world, group, thread) if "Taken by" in m.get("text", "")]
    assert "Taken by: Zoe" in card["text"]
    await press_in(world, ADMIN, group, card, "Approve")
    assert await status(world, n) == "approved"
    await world.back_office()
    assert await status(world, n) == "awaiting_return"
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for the item to be sent back"

    async with world.uows() as uow:
        [shipment] = await uow.shipments.for_claim(n)
    world.carrier.hand_over(shipment.tracking_number)
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    assert await status(world, n) == "return_received"
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Return received"
    assert any(
        "the return arrived" in (m.get("text") or "") for m in await in_topic(world, group, thread)
    )

    # An inspection typed in the topic is answered in the topic; Max's is refused (Zoe holds
    # the case now, and the refusal says so), Zoe's is taken.
    [refused] = await say_in(world, AGENT, group, f"/inspect {n} intact", thread)
    assert "Zoe has taken" in refused["text"] and refused.get("message_thread_id") == thread
    assert await status(world, n) == "return_received"
    [answer] = await say_in(world, ADMIN, group, f"/inspect {n} intact", thread)
    assert answer.get("message_thread_id") == thread
    await world.back_office()
    await _until_closed(world, n)
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Completed" and topic["closed"] is True

    # Staff stay anonymous to buyers and consignors.
    for party in (BUYER, CONSIGNOR):
        seen = " ".join(await texts(world, party))
        assert "Max" not in seen and "Zoe" not in seen
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_deleted_topic_is_opened_again_when_the_case_needs_staff(world: World) -> None:
    # The topic was deleted on purpose, and its card with it.
    world.provoke("message thread not found", "message to edit not found")
    group = await staffed(world)
    assert group is not None
    p = await parties(world)
    n = await file_for_review(world, p)
    await world.back_office()
    old_thread, _ = await topic_of(world, n)
    await world.client.delete_topic(group, old_thread)

    # Asked for information from a private chat: renaming the deleted topic fails.
    [card] = await world.say(ADMIN, f"/case {n}")
    await press_in(world, ADMIN, ADMIN, card, "Ask for information")
    await world.say(ADMIN, "Which part is cracked?")
    await world.back_office()
    assert await status(world, n) == "awaiting_info"
    assert await topics(world, group) == []

    # The buyer answers: the case needs staff again and gets a new topic.
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        await review.provide_info(
            uow, world.env, Actor(Role.BUYER, p.buyer_id), n, claim.version, "the lid"
        )
        await uow.commit()
    await world.back_office()
    [topic] = await topics(world, group)
    assert topic["message_thread_id"] != old_thread
    assert topic["name"] == f"#{n} · Waiting for review"
    assert (await topic_of(world, n))[0] == topic["message_thread_id"]
    rejected = (await world.client.calls(ok=False))["calls"]
    gone = ("thread not found", "message to edit not found")
    assert rejected and all(any(g in c["description"] for g in gone) for c in rejected), rejected


async def test_the_group_budget_defers_messages_instead_of_hitting_the_flood_limit(
    world: World,
) -> None:
    group = await staffed(world)
    assert group is not None
    clock = manual_budget(world, group)
    p = await parties(world, lines=1)
    claims = [await file_for_review(world, p)]
    for _ in range(22):
        claims.append(await file_for_review(world, await parties(world, bind=False)))
    await world.back_office()
    # A topic and its card are two of the group's twenty a minute: ten cases, then it waits.
    assert len(await topics(world, group)) == 10
    async with world.uows() as uow:
        waiting = await uow.delivery.pending(100)
    assert len(waiting) == 13 and {d.chat_id for d in waiting} == {group}

    clock[0] += 60.0  # a minute later the budget has refilled
    await world.back_office()
    assert len(await topics(world, group)) == 20
    clock[0] += 60.0
    await world.back_office()
    assert len(await topics(world, group)) == 23
    assert (await world.client.calls(ok=False))["calls"] == []


def _card(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest claim card (a queue has buttons too)."""
    cards = [m for m in messages if m.get("reply_markup") and "Claim #" in (m.get("text") or "")]
    return cards[-1]


async def _in_review(world: World, bind: bool = True) -> tuple[int, int]:
    """A case in review with its topic open: (claim, thread)."""
    n = await file_for_review(world, await parties(world, bind=bind))
    await world.back_office()
    thread, _ = await topic_of(world, n)
    return n, thread


async def _reject(world: World, group: int, n: int, thread: int) -> None:
    await press_in(world, ADMIN, group, _card(await in_topic(world, group, thread)), "Reject")
    await say_in(world, ADMIN, group, "not covered", thread)
    assert await status(world, n) == "rejected"


async def test_a_topic_follows_its_case_when_no_message_about_it_goes_out(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    n, thread = await _in_review(world, bind=False)  # no chat for buyer or consignor
    await press_in(world, ADMIN, group, _card(await in_topic(world, group, thread)), "Approve")
    await world.back_office()
    assert await status(world, n) == "awaiting_return"
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for the item to be sent back"
    card = _card(await in_topic(world, group, thread))
    assert "Approve" not in str(card["reply_markup"])  # redrawn for the state it is in


async def test_a_failed_close_is_tried_again_and_holds_up_no_other_case(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    a, thread_a = await _in_review(world)
    b, thread_b = await _in_review(world)
    await _reject(world, group, a, thread_a)
    await _reject(world, group, b, thread_b)
    await world.client.fault(kind="5xx", method="closeForumTopic", count=1)
    await world.back_office()  # a's close fails: b's goes on, and nothing escapes
    closed = {t["message_thread_id"]: t["closed"] for t in await topics(world, group)}
    assert closed == {thread_a: False, thread_b: True}
    async with world.uows() as uow:
        waiting = await TopicRepo(uow.session).get(a)
        assert waiting is not None and waiting.sync_attempts == 1
        assert "Internal Server Error" in (waiting.sync_error or "")

    await world.back_office()  # not before its backoff
    assert {t["message_thread_id"]: t["closed"] for t in await topics(world, group)} == closed
    world.env.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    await world.back_office()
    assert all(t["closed"] for t in await topics(world, group))
    assert [t["name"] for t in await topics(world, group)] == [
        f"#{a} · Rejected",
        f"#{b} · Rejected",
    ]


async def test_a_429_on_a_rename_pauses_the_group_and_the_rename_follows(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    n, thread = await _in_review(world, bind=False)
    await world.client.fault(kind="429", method="editForumTopic", count=1, retry_after=3)
    await press_in(world, ADMIN, group, _card(await in_topic(world, group, thread)), "Approve")
    await world.back_office()
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for review"
    world.env.clock.advance(timedelta(seconds=3))  # type: ignore[attr-defined]
    await world.back_office()
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for the item to be sent back"


async def test_a_failed_card_opens_no_second_topic(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    await world.user(BUYER, "Ann")  # sends the photos; no chat of the case's parties is bound
    evidence = await photos(world, 2)
    n = await file_for_review(world, await parties(world, bind=False), evidence)
    await world.client.fault(kind="5xx", method="sendMessage", count=1)
    await world.back_office()
    world.env.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    await world.back_office()
    card, pictures = await review_topic(world, group, n)
    assert len(pictures) == 2
    # The evidence waited for the card: the topic reads card first, then the photos.
    assert card["message_id"] < min(m["message_id"] for m in pictures)


async def test_images_sent_as_files_are_shown_as_files(world: World) -> None:
    """In the dialog the buyer sends a photo and two images as files: the topic shows the
    photo, then the files as one document album — each as what it was sent as, noted when it
    arrived (the bot never reads a kind back out of a file id)."""
    group = await staffed(world)
    assert group is not None
    await parties(world, "SO-FILES")
    await world.say(BUYER, "/new")
    for label in ("SO-FILES", "Item SO-FILES-0", "Next", "Refund only", "Not as described"):
        await press(world, BUYER, label)
    await press(world, BUYER, "Skip")
    for kind, name in (("photo", "p.png"), ("document", "scan1.png"), ("document", "scan2.png")):
        sent = await world.client.send_file(BUYER, kind, png(5, 5), name, "image/png")
        await world.handled(sent["update_id"])
    await press(world, BUYER, "Done")
    await press(world, BUYER, "Confirm")
    [n] = await claim_ids(world)
    async with world.uows() as uow:
        stored = await TopicRepo(uow.session).evidence_after(n, 0)
    assert [ref.split(":")[0] for _, ref in stored] == ["photo", "document", "document"]
    await world.back_office()
    thread, _ = await topic_of(world, n)
    shown = await in_topic(world, group, thread)
    assert len([m for m in shown if m.get("photo")]) == 1
    album = [m for m in shown if m.get("document")]
    assert [m["document"]["file_name"] for m in album] == ["scan1.png", "scan2.png"]
    assert album[0].get("media_group_id") and len({m["media_group_id"] for m in album}) == 1


async def test_evidence_sent_later_reaches_the_topic(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    p = await parties(world)
    n = await file_for_review(world, p, await photos(world, 1))
    await world.back_office()
    thread, _ = await topic_of(world, n)
    await press_in(
        world, ADMIN, group, _card(await in_topic(world, group, thread)), "Ask for information"
    )
    await say_in(world, ADMIN, group, "Photo of the lid please", thread)
    await world.back_office()
    more = await photos(world, 2)
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        await review.provide_info(
            uow, world.env, Actor(Role.BUYER, p.buyer_id), n, claim.version, "here", more
        )
        await uow.commit()
    await world.back_office()
    shown = [m for m in await in_topic(world, group, thread) if m.get("photo")]
    assert len(shown) == 3
    assert shown[1]["media_group_id"] == shown[2]["media_group_id"]  # the new ones, one album
    await world.back_office()
    assert len([m for m in await in_topic(world, group, thread) if m.get("photo")]) == 3


async def test_replies_and_topic_changes_in_the_group_spend_its_budget(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    manual_budget(world, group)  # its clock stands still: nothing refills
    _, thread = await _in_review(world, bind=False)  # the topic and its card: 2
    bucket = staff_group.budget(world.services, world.bot)._chats[group]
    assert bucket.tokens == 18
    for _ in range(3):
        await say_in(world, AGENT, group, "/queue", thread)  # three replies: 3
    assert bucket.tokens == 15
    await press_in(world, ADMIN, group, _card(await in_topic(world, group, thread)), "Approve")
    spent_by_the_press = 15 - bucket.tokens
    await world.back_office()  # rename and card redraw: 2
    assert 15 - spent_by_the_press - bucket.tokens == 2


async def test_a_reason_is_taken_only_in_the_topic_where_it_was_asked(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    a = await file_for_review(world, await parties(world))
    b = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    topic_a, _ = await topic_of(world, a)
    topic_b, _ = await topic_of(world, b)
    await press_in(world, AGENT, group, _card(await in_topic(world, group, topic_a)), "Reject")

    # Max chats about case B in its topic: that is not the reason for case A, and no reply.
    assert await say_in(world, AGENT, group, "looks fine to me, approve?", topic_b) == []
    assert await say_in(world, AGENT, group, "shall we?") == []  # the General topic
    # In his private chat he is told where the question waits.
    [where] = await world.say(AGENT, "not covered")
    assert "staff group" in where["text"]
    assert await status(world, a) == "needs_review"
    assert await status(world, b) == "needs_review"

    # In case A's topic the reason is taken, and the answer stays in that topic.
    answers = await say_in(world, AGENT, group, "not covered: wear and tear", topic_a)
    assert answers and all(m.get("message_thread_id") == topic_a for m in answers)
    assert await status(world, a) == "rejected"
    async with world.uows() as uow:
        [event] = [e for e in await uow.claims.timeline(a) if e.trigger == "reject"]
    assert event.note == "not covered: wear and tear"
    assert await say_in(world, AGENT, group, "done with A", topic_a) == []
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_second_prompt_does_not_silently_drop_the_first(world: World) -> None:
    """Max is asked for case A's reason in its topic, then presses Ask for information in
    case B's topic: he is told A's question still waits (and B is not taken by the press),
    so the reason he then types in A's topic is taken, not met with silence."""
    group = await staffed(world)
    assert group is not None
    a = await file_for_review(world, await parties(world))
    b = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    topic_a, _ = await topic_of(world, a)
    await press_in(world, AGENT, group, await _topic_card(world, group, a), "Reject")
    await press_in(world, AGENT, group, await _topic_card(world, group, b), "Ask for information")
    [busy] = (await world.client.messages(group))["callback_answers"][-1:]
    assert busy["show_alert"] and f"Claim #{a} still waits" in busy["text"], busy
    assert "/cancel" in busy["text"]
    async with world.uows() as uow:
        assert await TopicRepo(uow.session).holds(b) == []  # the press took nothing
    # /cancel in B's topic: not "nothing to cancel" while A's question waits; where to go
    topic_b, _ = await topic_of(world, b)
    [where] = await say_in(world, AGENT, group, "/cancel", topic_b)
    assert f"your question about claim #{a} waits in that claim's topic" in where["text"]

    answers = await say_in(world, AGENT, group, "not covered", topic_a)
    assert answers and await status(world, a) == "rejected"
    assert await status(world, b) == "needs_review"
    # With A answered, B's question can be asked.
    await press_in(world, AGENT, group, await _topic_card(world, group, b), "Ask for information")
    said = [m.get("text", "") for m in await in_topic(world, group, topic_b) if m["outgoing"]]
    assert any(f"Claim #{b}: send the question for the buyer" in x for x in said)
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_a_command_for_another_bot_in_the_group_is_left_to_it(world: World) -> None:
    """Staff groups have other bots too: "/queue@other_bot" is not answered by ours, and
    "/cancel@other_bot" typed in a case's topic does not drop the reason asked there."""
    group = await staffed(world)
    assert group is not None
    a = await file_for_review(world, await parties(world))
    await world.back_office()
    topic_a, _ = await topic_of(world, a)
    await press_in(world, AGENT, group, await _topic_card(world, group, a), "Reject")
    assert await say_in(world, AGENT, group, "/queue@other_bot") == []
    assert await say_in(world, AGENT, group, "/cancel@other_bot", topic_a) == []
    assert await say_in(world, AGENT, group, "/help@other_bot 2", topic_a) == []
    ours = world.services.config.bot_username
    [queue] = await say_in(world, AGENT, group, f"/queue@{ours.upper()}")
    assert "Queue (1 waiting" in queue["text"]
    answers = await say_in(world, AGENT, group, "not covered", topic_a)
    assert answers and await status(world, a) == "rejected"
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_staff_commands_in_another_group_show_no_case_there(world: World) -> None:
    """Someone added the bot to a group that is not the staff group (a buyers' club): a
    staff member's /case, /find, /queue, /status there — typed, or pressed on the menu /help
    shows — would show cases to everyone in it. They are refused with where to ask; the
    staff group and the private chat answer as ever."""
    group = await staffed(world)
    assert group is not None
    p = await parties(world, ref="CLB-1")
    n = await file_for_review(world, p)
    await world.back_office()
    club = int((await world.client.create_chat(title="Buyers' club", members=[AGENT, BUYER]))["id"])
    typed_there = (f"/case {n}", "/find CLB-1", "/queue", f"/status {n}", f"/refund {n} 5")
    for typed in typed_there:
        [reply] = await say_in(world, AGENT, club, typed)
        assert "only in our private chat" in reply["text"], (typed, reply["text"])
        assert "staff group" in reply["text"] and "@sandbox_bot" in reply["text"]
        assert not reply.get("reply_markup") and not reply.get("photo")
    [menu] = await say_in(world, AGENT, club, "/help")
    await press_in(world, AGENT, club, menu, "Queue")
    assert "only in our private chat" in (await toasts_in(world, club))[-1]
    shown = [m.get("text", "") for m in (await world.client.messages(club))["messages"]]
    assert not any(f"#{n}" in x or "CLB-1" in x for x in shown if x not in typed_there)
    for action in ("view", "approve"):  # a card's button, forged into the club
        data = ClaimAction(n, action, 2).pack()
        forged = await direct(world, AGENT, callback_data=data, chat_type="supergroup")
        assert [type(o).__name__ for o in forged] == ["Toast"], forged
        assert "only in our private chat" in forged[0].text  # type: ignore[union-attr]
    assert await status(world, n) == "needs_review"
    [in_group] = await say_in(world, AGENT, group, f"/case {n}")
    assert f"Claim #{n}" in in_group["text"]
    [private] = await world.say(AGENT, f"/case {n}")
    assert f"Claim #{n}" in private["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def _topic_card(world: World, group: int, claim_id: int) -> dict[str, Any]:
    """The case's card in its topic (the message the bot recorded as the card)."""
    async with world.uows() as uow:
        row = await TopicRepo(uow.session).get(claim_id)
        assert row is not None and row.thread_id is not None
        thread, card_id = row.thread_id, row.card_message_id
    [card] = [m for m in await in_topic(world, group, thread) if m["message_id"] == card_id]
    return card


async def test_the_topic_card_names_whoever_holds_the_case_now(world: World) -> None:
    group = await staffed(world)
    assert group is not None
    n = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    thread, _ = await topic_of(world, n)

    # Max presses Reject in his private chat: he holds the case, and the topic's card says so.
    [maxs] = await world.say(AGENT, f"/case {n}")
    await press_in(world, AGENT, AGENT, maxs, "Reject")
    card = await _topic_card(world, group, n)
    assert "Taken by: Max" in card["text"]

    # Zoe's Approve on that card is refused; she takes the case over from her private chat.
    await press_in(world, ADMIN, group, card, "Approve")
    assert "Max has already taken" in (await toasts_in(world, group))[-1]
    assert await status(world, n) == "needs_review"
    [zoe] = await world.say(ADMIN, f"/case {n}")
    await press_in(world, ADMIN, ADMIN, zoe, "Take")
    offer = [m for m in (await world.client.messages(ADMIN))["messages"] if m["outgoing"]][-1]
    await press_in(world, ADMIN, ADMIN, offer, "Take over")
    assert "Taken by: Zoe" in (await _topic_card(world, group, n))["text"]
    said = [m.get("text", "") for m in await in_topic(world, group, thread)]
    assert any(f"Zoe took over claim #{n} from Max" in x for x in said), said

    # Max's reason, typed later, is refused (Zoe holds the case) and his prompt is over.
    [refused] = await world.say(AGENT, "not covered")
    assert "Zoe has taken" in refused["text"]
    assert await status(world, n) == "needs_review"
    [after] = await world.say(AGENT, "hello?")
    assert "Zoe has taken" not in after["text"]
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_the_topic_card_offers_take_over_once_held_and_its_holder_is_told(
    world: World,
) -> None:
    group = await staffed(world)
    assert group is not None
    n = await file_for_review(world, await parties(world, bind=False))
    await world.back_office()
    card = await _topic_card(world, group, n)
    assert "🙋 Take" in kit_buttons(card) and "🙋 Take over…" not in kit_buttons(card)

    # One card for all staff: once Max holds the case, its button says it takes it over.
    await press_in(world, AGENT, group, card, "Take")
    card = await _topic_card(world, group, n)
    assert "Taken by: Max" in card["text"]
    assert "🙋 Take over…" in kit_buttons(card) and "🙋 Take" not in kit_buttons(card)

    # Max presses it: he is told he holds the case; nothing changes, the card stays.
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        before = (
            claim.version,
            len(await uow.claims.timeline(n)),
            len(await TopicRepo(uow.session).holds(n)),
        )
    await press_in(world, AGENT, group, card, "Take over…")
    assert (await toasts_in(world, group))[
        -1
    ] == f"You already hold claim #{n}: nothing was changed."
    async with world.uows() as uow:
        claim = await uow.claims.get(n)
        assert claim is not None
        after = (
            claim.version,
            len(await uow.claims.timeline(n)),
            len(await TopicRepo(uow.session).holds(n)),
        )
    assert after == before
    assert await _topic_card(world, group, n) == card

    # Zoe presses it: asked first, naming Max; she takes it over from the offer.
    await press_in(world, ADMIN, group, card, "Take over…")
    assert "Max has already taken" in (await toasts_in(world, group))[-1]
    thread, _ = await topic_of(world, n)
    [offer] = [
        m for m in await in_topic(world, group, thread) if "Max has taken" in m.get("text", "")
    ]
    await press_in(world, ADMIN, group, offer, "Take over")
    card = await _topic_card(world, group, n)
    assert "Taken by: Zoe" in card["text"] and "🙋 Take over…" in kit_buttons(card)
    assert (await world.client.calls(ok=False))["calls"] == []


async def test_two_senders_telling_staff_of_one_case_at_once_open_one_topic(world: World) -> None:
    """Two bot processes (here two deliveries side by side) each with a staff message about
    a case that has no topic yet: one opens the topic, the other's message waits and then
    goes into that topic."""
    group = await staffed(world)
    assert group is not None
    n = await file_for_review(world, await parties(world, bind=False))
    sent = await asyncio.gather(
        staff_group.deliver(world.services, world.bot, n, "from one"),
        staff_group.deliver(world.services, world.bot, n, "from the other"),
    )
    assert sorted(sent) == [False, True]  # the second waits for the first's topic
    assert await staff_group.deliver(world.services, world.bot, n, "from the other")
    await world.back_office()
    [topic] = await topics(world, group)
    assert len((await world.client.calls(method="createForumTopic", ok=True))["calls"]) == 1
    cards = [m for m in await in_topic(world, group, topic["message_thread_id"]) if m.get("text")]
    assert any("from one" in m["text"] for m in cards)
    assert any("from the other" in m["text"] for m in cards)


async def test_a_topic_that_failed_to_open_is_opened_at_the_next_try(world: World) -> None:
    """A failed createForumTopic gives its opening lease back: the message's retry (after
    its backoff, well inside the lease) opens the topic, once."""
    group = await staffed(world)
    assert group is not None
    n = await file_for_review(world, await parties(world, bind=False))
    await world.client.fault(kind="5xx", method="createForumTopic", count=1)
    await world.back_office()
    assert await topics(world, group) == []
    world.env.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    await world.back_office()
    [topic] = await topics(world, group)
    assert topic["name"] == f"#{n} · Waiting for review"
