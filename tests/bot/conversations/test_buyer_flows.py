"""The buyer's flows end to end through the sandbox with the real dispatcher: filing with bad
input at every step, /cancel at every step, albums, paging, answering a question, sending the
return back (with the waybill's QR code), withdrawing, rating a closed case, and a restart of
the bot in the middle of the claim dialog."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.conversations.buyer import waybill_qr
from bot.conversations.model import Screen
from storage import tables as t
from tests.bot.conversations.buyer_kit import (
    album_photo,
    bound_buyer,
    claim_ids,
    count,
    direct,
    draft,
    fresh,
    no_rejected_calls,
    press,
    restarted_bot,
    status,
    toast_texts,
)
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import buttons, last, toasts
from tests.factories import no_reason_return, order, place
from tests.sandbox.sandbox_testkit import png
from workflow import lifecycle
from workflow.claims import (
    MAX_DESCRIPTION_CHARS,
    MAX_EVIDENCE_ITEMS,
    Actor,
    ClaimDraft,
    ClaimType,
    LineRequest,
    Reason,
    Role,
)
from workflow.services import filing, review
from workflow.services.queries import buyer_order

AGENT = Actor(Role.AGENT, 1)


async def _send_photo(world: World, user_id: int, name: str = "p.png") -> list[dict]:  # type: ignore[type-arg]
    before = {m["message_id"] for m in (await world.client.messages(user_id))["messages"]}
    sent = await world.client.send_file(user_id, "photo", png(), name, "image/png")
    await world.handled(sent["update_id"])
    after = (await world.client.messages(user_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


async def _send_document(
    world: World, user_id: int, data: bytes, name: str, mime: str
) -> list[dict]:  # type: ignore[type-arg]
    before = {m["message_id"] for m in (await world.client.messages(user_id))["messages"]}
    sent = await world.client.send_file(user_id, "document", data, name, mime)
    await world.handled(sent["update_id"])
    after = (await world.client.messages(user_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


async def _send_contact(world: World, user_id: int) -> list[dict]:  # type: ignore[type-arg]
    before = {m["message_id"] for m in (await world.client.messages(user_id))["messages"]}
    sent = await world.client.send(user_id, "", contact={"phone_number": "+8613800000000"})
    await world.handled(sent["update_id"])
    after = (await world.client.messages(user_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


async def _to_description(world: World, ann: int, ref: str, kind: str, reason: str) -> None:
    await world.say(ann, "/new")
    await press(world, ann, ref)
    await press(world, ann, f"Item {ref}-A")
    await press(world, ann, "Next")
    await press(world, ann, kind)
    await press(world, ann, reason)


async def _filed(world: World, ann: int, ref: str, kind: str, reason: str) -> int:
    """A claim filed through the dialog (no description, no photos) and reviewed by the back
    office; its number (the buyer's only one)."""
    await _to_description(world, ann, ref, kind, reason)
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    [claim_id] = await claim_ids(world)
    await world.back_office()
    return claim_id


async def _filed_for_a_person(
    world: World, ann: int, ref: str, reason: str = "Not as described"
) -> int:
    """A refund-only claim, filed through the dialog, that review gives to a person."""
    return await _filed(world, ann, ref, "Refund only", reason)


async def _asked(world: World, claim_id: int, question: str) -> None:
    """Staff ask the buyer of ``claim_id`` a question."""
    async with world.uows() as uow:
        version = (await status(world, claim_id))[1]
        await review.request_info(uow, world.env, AGENT, claim_id, version, question)
        await uow.commit()


async def test_bad_input_at_every_step_of_the_claim_dialog_changes_nothing(world: World) -> None:
    ann = 801
    me = await bound_buyer(world, ann, "BF1", ("F-1",))
    [older_orders] = await world.say(ann, "/new")
    # order step: typing instead of pressing → the buttons again, the draft as it was
    replies = await world.say(ann, "the blue one")
    assert "use the buttons" in replies[0]["text"] and "which order" in replies[1]["text"]
    assert await draft(world, ann) == ("file_claim", "order", {"page": 0})
    await press(world, ann, "F-1")
    # lines step: Next with nothing picked; a photo instead of a tap
    await press(world, ann, "Next")
    assert "Pick at least one item" in (await toasts(world, ann))[-1]
    replies = await _send_photo(world, ann)
    assert "use the buttons" in replies[0]["text"]
    assert (await draft(world, ann))[1:] == ("lines", {"order": me.order_ids[0], "lines": {}})  # type: ignore[index]
    await press(world, ann, "Item F-1-B")
    [lines] = await press(world, ann, "Item F-1-B")  # one past the most claimable: unpicked
    assert "Item F-1-B" in buttons(lines) and not any("✓" in b for b in buttons(lines))
    await press(world, ann, "Item F-1-A")
    await press(world, ann, "Next")
    # an old button of an earlier step does nothing
    await press(world, ann, "F-1", older_orders)
    assert "earlier step" in (await toasts(world, ann))[-1]
    assert (await draft(world, ann))[1] == "type"  # type: ignore[index]
    await press(world, ann, "Return and refund")
    await press(world, ann, "Other")  # "other" needs a description: no Skip
    assert "Skip" not in buttons(await last(world, ann))
    # description step: a contact, a photo, an empty line, over-long text
    assert "as text" in (await _send_contact(world, ann))[0]["text"]
    assert "as text" in (await _send_photo(world, ann))[0]["text"]
    [too_long] = await world.say(ann, "y" * (MAX_DESCRIPTION_CHARS + 1))
    assert (
        f"{MAX_DESCRIPTION_CHARS + 1} characters; the limit is {MAX_DESCRIPTION_CHARS}"
        in (too_long["text"])
    )
    assert "description" not in (await draft(world, ann))[2]  # type: ignore[index]
    [photos] = await world.say(ann, "Zip & <seam> torn")
    assert "0 so far" in photos["text"]
    # photos step: text, a PDF, an image file over the photo limit, then good ones
    [want] = await world.say(ann, "here it is")
    assert "send a photo" in want["text"]
    [pdf] = await _send_document(world, ann, b"%PDF-1.4 x", "receipt.pdf", "application/pdf")
    assert "Only pictures" in pdf["text"]
    [svg] = await _send_document(world, ann, b"<svg/>", "a.svg", "image/svg+xml")
    assert "JPEG, PNG or WebP" in svg["text"]
    huge = b"\x89PNG" + b"\0" * (11 * 1024 * 1024)
    [big] = await _send_document(world, ann, huge, "huge.png", "image/png")
    assert "too big (the limit is 10 MB)" in big["text"]
    assert (await draft(world, ann))[2].get("photos", []) == []  # type: ignore[index]
    [one] = await _send_document(world, ann, png(), "scan.png", "image/png")  # image file: fine
    assert "1 so far" in one["text"]
    # an album of five: one answer for the album, the fifth picture over the limit refused once
    outputs = [
        await direct(world, ann, photo=album_photo(n), media_group_id="A1") for n in range(5)
    ]
    assert [len(o) for o in outputs] == [1, 0, 0, 0, 1]
    assert "Album received" in outputs[0][0].text  # type: ignore[union-attr]
    assert f"maximum of {MAX_EVIDENCE_ITEMS} photos" in outputs[4][0].text  # type: ignore[union-attr]
    assert len((await draft(world, ann))[2]["photos"]) == MAX_EVIDENCE_ITEMS  # type: ignore[index]
    await world.say(ann, "/help")  # a command mid-dialog works and keeps the draft
    [photos_prompt, *_] = [
        m
        for m in reversed((await world.client.messages(ann))["messages"])
        if "Done ▶" in buttons(m)
    ]
    [summary] = await press(world, ann, "Done", photos_prompt)
    assert "Zip &amp; &lt;seam&gt; torn" in summary["html"]
    assert f"Photos: {MAX_EVIDENCE_ITEMS}" in summary["text"]
    # Edit goes back to the items with the choice kept; the photos stay
    [edit] = await press(world, ann, "Edit", summary)
    assert "✓ ×1 Item F-1-A" in buttons(edit)
    for label in ("Next", "Refund only", "Quality issue", "Skip", "Done"):
        await press(world, ann, label, await fresh(world, ann, edit["message_id"]))
    assert await count(world, t.Claim) == 0
    [filed, card] = await press(world, ann, "Confirm", await fresh(world, ann, edit["message_id"]))
    assert "filed" in filed["text"] and "Refund only" in card["text"]
    [claim_id] = await claim_ids(world)
    async with world.uows() as uow:
        assert await uow.claims.evidence_count(claim_id) == MAX_EVIDENCE_ITEMS
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4, 5, 6])
async def test_cancel_leaves_the_dialog_at_any_step(world: World, steps: int) -> None:
    ann = 811
    await bound_buyer(world, ann, "BF2", ("F-2",))
    await world.say(ann, "/new")
    presses = ["F-2", "Item F-2-A", "Next", "Refund only", "Quality issue", "Skip", "Done"]
    for label in presses[:steps]:
        await press(world, ann, label)
    shown = await last(world, ann)
    assert (await draft(world, ann)) is not None
    [bye] = await world.say(ann, "/cancel")
    assert "Cancelled" in bye["text"]
    assert await draft(world, ann) is None
    if buttons(shown):  # a button of the cancelled dialog is answered, and does nothing
        await press(world, ann, buttons(shown)[0], shown)
        assert "dialog has ended" in (await toasts(world, ann))[-1]
    [again] = await world.say(ann, "/cancel")
    assert "nothing to cancel" in again["text"]
    assert await count(world, t.Claim) == 0
    await no_rejected_calls(world)


async def test_orders_are_paged_and_an_ineligible_one_says_why(world: World) -> None:
    ann, bob = 821, 822
    refs = tuple(f"P-{n}" for n in range(1, 8))
    me = await bound_buyer(world, ann, "BF3", refs)
    other = await bound_buyer(world, bob, "BF4", ("Q-1",))
    # P-1 fully claimed: listed with the reason, no button
    await world.say(ann, "/new")
    await press(world, ann, "▶")
    await press(world, ann, "P-1")
    await press(world, ann, "Item P-1-A")
    await press(world, ann, "Item P-1-A")
    await press(world, ann, "Item P-1-B")
    for label in ("Next", "Refund only", "Quality issue", "Skip", "Done", "Confirm"):
        await press(world, ann, label)
    [first] = await world.say(ann, "/new")  # newest first, five on a page
    assert [b.split(" ")[0] for b in buttons(first)] == ["P-7", "P-6", "P-5", "P-4", "P-3", "▶"]
    [second] = await press(world, ann, "▶", first)
    assert [b.split(" ")[0] for b in buttons(second)] == ["P-2", "◀"]
    assert "P-1: every item is already under a claim" in second["text"]
    [back] = await press(world, ann, "◀", second)
    assert buttons(back) == buttons(first)
    # a forged button for another buyer's order, or for the ineligible one: refused
    out = await direct(world, ann, callback_data=f"d:order:{other.order_ids[0]}")
    assert "no order" in toast_texts(out)[0]
    out = await direct(world, ann, callback_data=f"d:order:{me.order_ids[0]}")
    assert "already under a claim" in toast_texts(out)[0]
    out = await direct(world, ann, callback_data="d:order:99999999999999")
    assert "not recognised" in toast_texts(out)[0]
    assert (await draft(world, ann))[1] == "order"  # type: ignore[index]
    # Bob sees only his own order
    [bobs] = await world.say(bob, "/new")
    assert [b.split(" ")[0] for b in buttons(bobs)] == ["Q-1"]
    await no_rejected_calls(world)


async def test_the_items_of_a_large_order_are_paged_and_choices_kept_across_pages(
    world: World,
) -> None:
    ann = 823
    now = world.env.clock.now()
    skus = [f"BIG-{i:02}" for i in range(30)]
    [big] = await place(
        world.uows,
        now,
        order("BIG", now, buyer="BF30", lines=tuple((s, "C1", 2, 1_000, 100) for s in skus)),
    )
    await world.user(ann)
    await world.say(ann, f"/start {await world.token('buyer', big.buyer_id)}")
    await world.say(ann, "/new")

    def items(message: dict) -> list[str]:  # type: ignore[type-arg]
        return [
            b.removeprefix("✓ ×1 ").removeprefix("✓ ×2 ") for b in buttons(message) if "Item" in b
        ]

    # Eight items a page, ◀ ▶ and Next: 30 items make four pages.
    [page1] = await press(world, ann, "BIG")
    assert items(page1) == [f"Item {s}" for s in skus[:8]]
    assert buttons(page1)[8:] == ["▶", "Next ▶"]
    assert "Page 1 of 4 · items chosen: 0" in page1["text"]
    await press(world, ann, "Item BIG-01", page1)
    [page2] = await press(world, ann, "▶")
    assert items(page2) == [f"Item {s}" for s in skus[8:16]]
    assert buttons(page2)[8:] == ["◀", "▶", "Next ▶"]
    assert "Page 2 of 4 · items chosen: 1" in page2["text"]
    # Chosen on page 2 (twice: two units), the message stays on page 2.
    await press(world, ann, "Item BIG-10", page2)
    [page2] = await press(world, ann, "Item BIG-10")
    assert "✓ ×2 Item BIG-10" in buttons(page2) and "Page 2 of 4 · items chosen: 2" in page2["text"]
    await press(world, ann, "▶")
    [page4] = await press(world, ann, "▶")
    assert items(page4) == [f"Item {s}" for s in skus[24:]]
    assert buttons(page4)[6:] == ["◀", "Next ▶"]
    for _ in range(3):
        [back] = await press(world, ann, "◀")
    assert "✓ ×1 Item BIG-01" in buttons(back) and "Page 1 of 4" in back["text"]
    assert (await draft(world, ann))[2]["lines_page"] == 0  # type: ignore[index]

    # A forged page (past the last, before the first, not a number) is refused; nothing moves.
    kept = await draft(world, ann)
    for forged in ("bp:l:4", "bp:l:-1", "bp:l:99999999"):
        out = await direct(world, ann, callback_data=forged)
        assert toast_texts(out) == [
            "There is no such page: this order's items fill 4 page(s). Please use the latest message."
        ], forged
    out = await direct(world, ann, callback_data="bp:l:x")
    assert "not recognised" in toast_texts(out)[0]
    assert await draft(world, ann) == kept

    # The summary shows both choices; Confirm files a claim on them.
    for label in ("Next", "Refund only", "Quality issue", "Skip"):
        await press(world, ann, label)
    [summary] = await press(world, ann, "Done")
    assert "Item BIG-01 ×1" in summary["text"] and "Item BIG-10 ×2" in summary["text"]
    assert "BIG-00" not in summary["text"]
    await press(world, ann, "Confirm", summary)
    [claim_id] = await claim_ids(world)
    async with world.uows() as uow:
        filed = [(x.order_line_id, x.quantity) for x in await uow.claims.lines(claim_id)]
    assert sorted(filed) == [(big.line_ids[1], 1), (big.line_ids[10], 2)]

    # In Chinese: the page and a forged one say so. BIG-10 is claimed whole: 29 items left.
    [choose] = await world.say(ann, "/lang")
    await press(world, ann, "简体中文", choose)
    await world.say(ann, "/new")
    [page1] = await press(world, ann, "BIG")
    assert "第 1/4 页 · 已选商品：0" in page1["text"]
    assert "Item BIG-10" not in items(page1) + items((await press(world, ann, "▶"))[0])
    out = await direct(world, ann, callback_data="bp:l:7")
    assert toast_texts(out) == ["没有这一页：此订单的商品共 4 页。请使用最新的消息。"]
    await no_rejected_calls(world)


async def test_duplicate_updates_and_forged_buyer_buttons_change_nothing(world: World) -> None:
    ann = 825
    await bound_buyer(world, ann, "BF15", ("U-1",))
    await _to_description(world, ann, "U-1", "Refund only", "Quality issue")
    await press(world, ann, "Skip")
    sent = await world.client.send_file(ann, "photo", png(), "one.png", "image/png")
    await world.handled(sent["update_id"])
    kept = await draft(world, ann)
    assert kept is not None and len(kept[2]["photos"]) == 1
    # Telegram delivers the same update again: ignored, the photo is not counted twice
    again = await direct(world, ann, sent["update_id"], photo=album_photo(9))
    assert again == []
    assert await draft(world, ann) == kept
    # a photo over the Bot API's 10 MB (the sandbox refuses such uploads, Telegram's clients
    # compress them; a modified client might not)
    [big] = await direct(world, ann, photo=album_photo(8, size=11 * 2**20))
    assert "too big" in big.text  # type: ignore[union-attr]
    # forged data on the buyer's own button families: answered, nothing moves
    for forged in ("bp:x:1", "bp:o:-1", "bh:abc:1", "bh:1:1", "bk:1", "br:1:0", "d:photos:nope"):
        out = await direct(world, ann, callback_data=forged)
        assert len(toast_texts(out)) == 1, (forged, out)
    assert await draft(world, ann) == kept
    assert await count(world, t.Claim) == 0
    await no_rejected_calls(world)


async def test_the_buyers_claims_are_paged_and_only_theirs(world: World) -> None:
    ann, bob = 831, 832
    await bound_buyer(world, ann, "BF5", tuple(f"C-{n}" for n in range(1, 4)))
    await bound_buyer(world, bob, "BF6", ("D-1",))
    for n in range(1, 4):
        for item in ("A", "B"):
            await world.say(ann, "/new")
            await press(world, ann, f"C-{n}")
            await press(world, ann, f"Item C-{n}-{item}")
            for label in ("Next", "Refund only", "Quality issue", "Skip", "Done", "Confirm"):
                await press(world, ann, label)
    [listing] = await world.say(ann, "/claims")
    assert "Your claims (6)" in listing["text"]
    assert len([b for b in buttons(listing) if b.startswith("#")]) == 5
    [page2] = await press(world, ann, "▶", listing)  # newest first: the oldest is alone here
    [oldest] = [b for b in buttons(page2) if b.startswith("#")]
    assert oldest.startswith("#1 ")
    [opened] = await press(world, ann, "#1 ", page2)
    assert "Claim" in opened["text"] and "Withdraw" in buttons(opened)
    [none] = await world.say(bob, "/claims")
    assert "no claims" in none["text"]
    [foreign] = await world.say(bob, "/claim 1")
    assert "no claim 1" in foreign["text"]
    [usage] = await world.say(bob, "/claim first")
    assert "like /claim 12" in usage["text"]
    [huge] = await world.say(bob, "/claim 99999999999999999999")
    assert "like /claim 12" in huge["text"]
    [queue] = await world.say(ann, "/queue")
    assert "not available to you" in queue["text"] or "don't know /queue" in queue["text"]
    await no_rejected_calls(world)


async def test_a_buyer_answers_a_question_with_text_after_bad_tries(world: World) -> None:
    ann = 841
    await bound_buyer(world, ann, "BF7", ("I-1",))
    claim_id = await _filed_for_a_person(world, ann, "I-1")  # "not as described": a person
    assert (await status(world, claim_id))[0] in lifecycle.WAITING_FOR_STAFF
    await _asked(world, claim_id, "Which colour?")
    await world.back_office()
    [card] = await world.say(ann, f"/claim {claim_id}")
    assert "Answer" in buttons(card)
    [prompt] = await press(world, ann, "Answer", card)
    assert "send your answer" in prompt["text"]
    before = await status(world, claim_id)
    assert "text or a photo" in (await _send_contact(world, ann))[0]["text"]
    [pdf] = await _send_document(world, ann, b"%PDF-1.4", "a.pdf", "application/pdf")
    assert "Only pictures" in pdf["text"]
    [long] = await world.say(ann, "z" * (MAX_DESCRIPTION_CHARS + 5))
    assert "the limit is" in long["text"]
    assert await status(world, claim_id) == before
    sent, redrawn = await world.say(ann, "It is <red>, not blue")
    assert "is with our team" in sent["text"]
    assert "Answer" not in buttons(redrawn)
    after = await status(world, claim_id)
    assert after[1] == before[1] + 1 and after[0] in lifecycle.WAITING_FOR_STAFF
    async with world.uows() as uow:
        [*_, event] = await uow.claims.timeline(claim_id)
    assert event.trigger == "provide_info"
    # the old Answer button is out of date now
    await press(world, ann, "Answer", card)
    assert "already been handled" in (await toasts(world, ann))[-1]
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


async def test_an_answer_to_a_claim_that_moved_on_is_not_sent(world: World) -> None:
    ann = 845
    await bound_buyer(world, ann, "BF8", ("J-1",))
    claim_id = await _filed_for_a_person(world, ann, "J-1")
    await _asked(world, claim_id, "Colour?")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "Answer", card)
    world.env.clock.advance(timedelta(days=4))  # type: ignore[attr-defined]
    await world.back_office()  # meanwhile the time to answer runs out
    moved = await status(world, claim_id)
    [note, redrawn] = await world.say(ann, "Red")
    assert "has moved on" in note["text"] and f"#{claim_id}" in redrawn["text"]
    assert await status(world, claim_id) == moved
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


async def test_a_return_gets_a_qr_waybill_and_the_buyer_sends_it_back(world: World) -> None:
    ann = 851
    await bound_buyer(world, ann, "BF9", ("R-1",))
    # reviewed: auto approval, the carrier's waybill, the message with its QR
    claim_id = await _filed(world, ann, "R-1", "Return and refund", "7-day")
    state, version = await status(world, claim_id)
    assert "ship_return" in lifecycle.allowed_triggers(state, "return_refund", Role.BUYER)
    async with world.uows() as uow:
        [shipment] = (await uow.session.scalars(select(t.Shipment))).all()
    waybill = [m for m in (await world.client.messages(ann))["messages"] if m.get("photo")]
    assert len(waybill) == 1 and shipment.tracking_number in waybill[0]["caption"]
    async with aiohttp.ClientSession() as http:
        url = f"{world.sandbox.url}/sandbox/files/{waybill[0]['photo']['file_id']}"
        async with http.get(url) as response:
            picture = await response.read()
    assert picture.startswith(b"\x89PNG") and picture == waybill_qr(
        {"qr_payload": shipment.qr_payload}
    )
    # the buyer enters the waybill number: wrong shapes and another parcel's number first
    [card] = await world.say(ann, f"/claim {claim_id}")
    [prompt] = await press(world, ann, "I have sent it back", card)
    assert "waybill number" in prompt["text"] and "📦 I handed it over" in buttons(prompt)
    [bad] = await world.say(ann, "12")
    assert "does not look like a waybill number" in bad["text"]
    assert "as text" in (await _send_photo(world, ann))[0]["text"]  # the label's picture
    [other] = await world.say(ann, "ZZ999999999")
    assert "does not belong to this claim" in other["text"]
    assert await status(world, claim_id) == (state, version)
    noted, redrawn = await world.say(ann, f"  {shipment.tracking_number.lower()} ")
    assert "on its way" in noted["text"]
    moved = await status(world, claim_id)
    assert moved[1] == version + 1 and "I have sent it back" not in buttons(redrawn)
    # the prompt's button, pressed after it was done: the dialog is over, nothing fires
    await press(world, ann, "I handed it over", prompt)
    assert (await toasts(world, ann))[-1] == "That button belongs to an earlier step."
    assert await status(world, claim_id) == moved
    await no_rejected_calls(world)


async def test_the_return_reminder_shows_the_waybills_qr_code_it_tells_the_buyer_to_show(
    world: World,
) -> None:
    ann = 856
    await bound_buyer(world, ann, "BF14", ("RM-1",))
    await _to_description(world, ann, "RM-1", "Return and refund", "7-day")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    await world.back_office()  # approved: the waybill with its QR code
    [waybill] = [m for m in (await world.client.messages(ann))["messages"] if m.get("photo")]
    policy = world.env.policy
    reminded = policy.return_deadline - policy.return_reminder_before
    world.env.clock.advance(reminded)  # type: ignore[attr-defined]
    await world.back_office()
    reminder = await last(world, ann)
    assert "a reminder to send the item back" in (reminder.get("caption") or reminder["text"])
    assert reminder.get("photo"), "the reminder came without the waybill's QR code"
    async with aiohttp.ClientSession() as http:
        pictures = []
        for message in (waybill, reminder):
            url = f"{world.sandbox.url}/sandbox/files/{message['photo']['file_id']}"
            async with http.get(url) as response:
                pictures.append(await response.read())
    assert pictures[0].startswith(b"\x89PNG") and pictures[1] == pictures[0]
    await no_rejected_calls(world)


async def test_a_waybill_number_typed_full_width_or_in_groups_is_read_as_on_the_label(
    world: World,
) -> None:
    """A Chinese input method types full-width letters and digits, and a label may print the
    number in groups: both are the number on the label, not "not a waybill number"."""
    ann = 857
    await bound_buyer(world, ann, "BF15", ("FW-1",))
    claim_id = await _filed(world, ann, "FW-1", "Return and refund", "7-day")
    async with world.uows() as uow:
        [shipment] = (await uow.session.scalars(select(t.Shipment))).all()
    number = shipment.tracking_number
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "I have sent it back", card)
    version = (await status(world, claim_id))[1]
    [refused] = await world.say(ann, f"{number[:4]} 🙂 {number[4:]}")  # still not a number
    assert "does not look like a waybill number" in refused["text"]
    [mismatch] = await world.say(ann, "ＳＸ０００　０００　０００　０００")
    assert "does not belong to this claim" in mismatch["text"]
    assert (await status(world, claim_id))[1] == version
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in number.lower())
    grouped = "\u3000".join(full_width[i : i + 4] for i in range(0, len(full_width), 4))
    noted, _ = await world.say(ann, grouped)
    assert "on its way" in noted["text"], noted["text"]
    assert (await status(world, claim_id))[1] == version + 1
    await no_rejected_calls(world)


async def test_handing_the_return_over_without_typing_the_number(world: World) -> None:
    ann = 855
    await bound_buyer(world, ann, "BF10", ("H-1",))
    claim_id = await _filed(world, ann, "H-1", "Return and refund", "7-day")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "I have sent it back", card)
    version = (await status(world, claim_id))[1]
    noted, redrawn = await press(world, ann, "I handed it over")
    assert "on its way" in noted["text"] and f"#{claim_id}" in redrawn["text"]
    assert (await status(world, claim_id))[1] == version + 1
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


async def test_a_buyer_withdraws_then_rates_the_closed_case_once(world: World) -> None:
    ann, bob = 861, 862
    await bound_buyer(world, ann, "BF11", ("W-1",))
    await bound_buyer(world, bob, "BF12", ("W-2",))
    await _to_description(world, ann, "W-1", "Refund only", "Quality issue")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    [claim_id] = await claim_ids(world)
    [card] = await world.say(ann, f"/claim {claim_id}")
    assert "⭐ Rate" not in buttons(card)  # not closed yet
    out = await direct(world, ann, callback_data=f"br:{claim_id}:5")
    assert "cannot be rated" in toast_texts(out)[0]
    [withdrawn] = await press(world, ann, "Withdraw", card)
    assert (await status(world, claim_id))[0] in lifecycle.TERMINAL_STATES
    assert "⭐ Rate" in buttons(withdrawn)
    # someone else's claim cannot be rated, a forged score is refused
    out = await direct(world, bob, callback_data=f"br:{claim_id}:5")
    assert f"no claim {claim_id}" in toast_texts(out)[0]
    out = await direct(world, ann, callback_data=f"br:{claim_id}:9")
    assert "not recognised" in toast_texts(out)[0]
    [stars] = await press(world, ann, "⭐ Rate", withdrawn)
    assert "How did we do" in stars["text"] and len(buttons(stars)) == 5
    [comment] = await press(world, ann, "⭐⭐⭐⭐", stars)
    assert "⭐⭐⭐⭐" in comment["text"] and "Finish without a comment" in buttons(comment)
    assert "as text" in (await _send_contact(world, ann))[0]["text"]
    [long] = await world.say(ann, "c" * (MAX_DESCRIPTION_CHARS + 1))
    assert "the limit is" in long["text"]
    assert await count(world, t.ClaimRating) == 0
    [thanks] = await world.say(ann, "Quick & <kind>")
    assert "Thank you" in thanks["text"]
    async with world.uows() as uow:
        assert await uow.claims.rating(claim_id) == (4, "Quick & <kind>")
    # rated once: the old buttons are answered and change nothing; the card has no Rate
    await press(world, ann, "Finish without a comment", comment)
    assert (await toasts(world, ann))[-1] == "That button belongs to an earlier step."
    out = await direct(world, ann, callback_data=f"br:{claim_id}:2")  # a double press
    assert "cannot be rated" in toast_texts(out)[0]
    await press(world, ann, "⭐ Rate", withdrawn)
    assert "cannot be rated" in (await toasts(world, ann))[-1]
    [reopened] = await world.say(ann, f"/claim {claim_id}")
    assert "⭐ Rate" not in buttons(reopened)
    async with world.uows() as uow:
        assert await uow.claims.rating(claim_id) == (4, "Quick & <kind>")
    await no_rejected_calls(world)


async def test_rating_without_a_comment_in_chinese(world: World) -> None:
    ann = 865
    await bound_buyer(world, ann, "BF13", ("Z-1",), lang="zh-hans")
    await world.say(ann, "/new")
    await press(world, ann, "Z-1")
    await press(world, ann, "Item Z-1-B")
    for label in ("下一步", "仅退款", "质量问题", "跳过", "完成", "确认"):
        await press(world, ann, label)
    [claim_id] = await claim_ids(world)
    [card] = await world.say(ann, f"/claim {claim_id}")
    [withdrawn] = await press(world, ann, "撤回申请", card)
    [stars] = await press(world, ann, "评价", withdrawn)
    await press(world, ann, "⭐⭐⭐⭐⭐", stars)
    [thanks] = await press(world, ann, "直接完成")
    assert "谢谢" in thanks["text"]
    async with world.uows() as uow:
        assert await uow.claims.rating(claim_id) == (5, "")
    await no_rejected_calls(world)


async def test_a_rating_given_from_the_buyers_other_chat_ends_the_one_waiting_here(
    world: World,
) -> None:
    """Two Telegram accounts bound to one buyer both start rating a closed claim; the second
    finishes first. The first one's comment is then told the claim is rated already, once:
    the bot does not go on waiting for a comment it can never take."""
    ann, ann_phone = 866, 867
    me = await bound_buyer(world, ann, "BF16", ("Y-1", "Y-2"))
    await world.user(ann_phone)
    await world.say(ann_phone, f"/start {await world.token('buyer', me.buyer_id)}")
    await _to_description(world, ann, "Y-1", "Refund only", "Quality issue")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    [claim_id] = await claim_ids(world)
    [card] = await world.say(ann, f"/claim {claim_id}")
    [withdrawn] = await press(world, ann, "Withdraw", card)
    [stars] = await press(world, ann, "⭐ Rate", withdrawn)
    await press(world, ann, "⭐⭐⭐⭐", stars)
    [card] = await world.say(ann_phone, f"/claim {claim_id}")
    [stars] = await press(world, ann_phone, "⭐ Rate", card)
    await press(world, ann_phone, "⭐⭐", stars)
    [thanks] = await press(world, ann_phone, "Finish without a comment")
    assert "Thank you" in thanks["text"]
    [late] = await world.say(ann, "Great service")
    assert f"You have already rated claim #{claim_id}" in late["text"]
    assert await draft(world, ann) is None
    [orders] = await world.say(ann, "/new")
    assert "which order" in orders["text"], orders["text"]
    async with world.uows() as uow:
        assert await uow.claims.rating(claim_id) == (2, "")
    # again on another claim, and /new comes before any comment: it is not held up either
    await world.say(ann, "/cancel")
    await _to_description(world, ann, "Y-2", "Refund only", "Quality issue")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    [_, second] = await claim_ids(world)
    [card] = await world.say(ann, f"/claim {second}")
    [withdrawn] = await press(world, ann, "Withdraw", card)
    [stars] = await press(world, ann, "⭐ Rate", withdrawn)
    await press(world, ann, "⭐⭐⭐⭐", stars)
    [card] = await world.say(ann_phone, f"/claim {second}")
    [stars] = await press(world, ann_phone, "⭐ Rate", card)
    await press(world, ann_phone, "⭐⭐⭐", stars)
    await press(world, ann_phone, "Finish without a comment")
    replies = await world.say(ann, "/new")
    assert not any("waiting for your comment" in m["text"] for m in replies), replies
    assert await draft(world, ann) is not None  # a new claim's dialog has begun
    await no_rejected_calls(world)


async def test_the_claim_dialog_continues_after_the_bot_is_killed_and_restarted(
    world: World,
) -> None:
    world.provoke("getUpdates: None")  # the killed bot's poll is cut off
    ann = 871
    await bound_buyer(world, ann, "BF14", ("K-1",))
    await _to_description(world, ann, "K-1", "Exchange", "Wrong item")
    await world.say(ann, "Wrong size")
    await _send_photo(world, ann)
    kept = await draft(world, ann)
    assert kept is not None and kept[1] == "photos" and len(kept[2]["photos"]) == 1
    async with restarted_bot(world) as up:
        # while the bot is down, the buyer sends another photo; it waits at "Telegram"
        sent = await world.client.send_file(ann, "photo", png(5, 4), "second.png", "image/png")
        assert await draft(world, ann) == kept
        await up()
        await world.handled(sent["update_id"])
        assert "2 so far" in (await last(world, ann))["text"]
        [summary] = await press(world, ann, "Done")
        assert "Photos: 2" in summary["text"] and "Wrong size" in summary["text"]
        [filed, _] = await press(world, ann, "Confirm")
        assert "filed" in filed["text"]
    [claim_id] = await claim_ids(world)
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None and claim.claim_type == "exchange"
        assert await uow.claims.evidence_count(claim_id) == 2
    await no_rejected_calls(world, stopped_polls=2)  # the killed bot's and the restarted one's


async def test_the_buyer_reads_why_a_claim_was_rejected_and_what_was_asked(world: World) -> None:
    """Staff's question and reason are written for the buyer: the notification and the card
    show them (escaped); an approval's remark stays the team's own."""
    ann = 871
    await bound_buyer(world, ann, "BF20", ("RJ-1",))
    claim_id = await _filed_for_a_person(world, ann, "RJ-1", "Quality issue")
    await _asked(world, claim_id, "Which <seam>?")
    await world.back_office()
    [card] = await world.say(ann, f"/claim {claim_id}")
    assert "Ask for information → Waiting for more information — Which <seam>?" in card["text"]
    await press(world, ann, "Answer", card)
    await world.say(ann, "The left one")
    async with world.uows() as uow:
        version = (await status(world, claim_id))[1]
        await review.reject(uow, world.env, AGENT, claim_id, version, "Normal wear & tear")
        await uow.commit()
    await world.back_office()
    told = (await last(world, ann))["text"]
    assert told == f"❌ Claim #{claim_id} has been rejected.\nReason: Normal wear & tear"
    [card] = await world.say(ann, f"/claim {claim_id}")
    assert "→ Rejected — Normal wear & tear" in card["text"]
    assert "— The left one" in card["text"]
    assert "— Which <seam>?" in card["text"]
    await no_rejected_calls(world)


async def test_a_no_reason_return_is_offered_only_while_its_window_is_open(world: World) -> None:
    """Delivered 20 days ago: the 7-day reason is not offered (nor taken from a forged
    button); filed anyway by another way, the rule rejects it and the buyer is told why in
    their words, on the notification and on the card."""
    now = world.env.clock.now()
    [p] = await place(
        world.uows, now, order("OLD-1", now, buyer="BF21", delivered_ago=timedelta(days=20))
    )
    ann = await world.user(872)
    await world.say(ann, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(ann, "/new")
    await press(world, ann, "OLD-1")
    await press(world, ann, "Item SKU-1")
    await press(world, ann, "Next")
    [reasons] = await press(world, ann, "Return and refund")
    assert "Quality issue" in buttons(reasons)
    assert not any("7-day" in b for b in buttons(reasons))
    before = await draft(world, ann)
    forged = await direct(world, ann, callback_data="d:reason:no_reason_7_days")
    assert "not recognised" in toast_texts(forged)[0]
    assert await draft(world, ann) == before
    await world.say(ann, "/cancel")

    claim = await no_reason_return(world.uows, world.env, p)
    await world.back_office()
    assert (await status(world, claim.id))[0] == "rejected"
    why = "The no-reason return is open for 7 days after delivery, and that time has passed."
    assert (await last(world, ann))["text"].endswith(f"Reason: {why}")
    [card] = await world.say(ann, f"/claim {claim.id}")
    assert f"→ Rejected — {why}" in card["text"]
    await no_rejected_calls(world)


async def test_an_album_sent_as_the_answer_is_taken_whole(world: World) -> None:
    ann = 873
    await bound_buyer(world, ann, "BF22", ("AL-1",))
    claim_id = await _filed_for_a_person(world, ann, "AL-1")
    await _asked(world, claim_id, "Photos please")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "Answer", card)
    album = [
        await direct(world, ann, photo=album_photo(n), media_group_id="ANS-1")
        for n in range(MAX_EVIDENCE_ITEMS + 2)
    ]
    sent = [o.text for o in album[0] if isinstance(o, Screen)]
    assert "is with our team" in sent[0]
    assert all(out == [] for out in album[1:MAX_EVIDENCE_ITEMS])  # one reply per album
    [limit] = album[MAX_EVIDENCE_ITEMS]
    assert isinstance(limit, Screen) and "Only the first 5 pictures" in limit.text
    assert album[MAX_EVIDENCE_ITEMS + 1] == []
    async with world.uows() as uow:
        assert await uow.claims.evidence_count(claim_id) == MAX_EVIDENCE_ITEMS
        [*_, event] = await uow.claims.timeline(claim_id)
    assert event.trigger == "provide_info"
    # The next message is no longer part of the answer: the buyer gets the menu.
    [menu] = await world.say(ann, "thanks")
    assert "/claims" in menu["text"]
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


async def test_after_an_album_answer_nothing_is_said_to_wait_and_cancel_has_nothing_to_cancel(
    world: World,
) -> None:
    """An answer sent as an album has been sent: the bot only gathers the album's other
    pictures. /cancel then does not say the answer was not sent, and a new claim or another
    claim's button is not refused as if the bot still waited for the answer."""
    ann = 878
    await bound_buyer(world, ann, "BF27", ("AT-1", "AT-2"))
    claim_id = await _filed_for_a_person(world, ann, "AT-1")
    await _asked(world, claim_id, "Photos please")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "Answer", card)
    [sent, _] = await direct(world, ann, photo=album_photo(0), media_group_id="ANS-3")
    assert isinstance(sent, Screen) and "is with our team" in sent.text
    [cancelled] = await world.say(ann, "/cancel")
    assert cancelled["text"] == "There is nothing to cancel."
    async with world.uows() as uow:
        [*_, event] = await uow.claims.timeline(claim_id)
    assert event.trigger == "provide_info"
    # Asked again, answered again with an album: a new claim can be started at once.
    await _asked(world, claim_id, "One more, please")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "Answer", card)
    await direct(world, ann, photo=album_photo(1), media_group_id="ANS-4")
    [orders] = await world.say(ann, "/new")
    assert "which order" in orders["text"], orders["text"]
    assert (await draft(world, ann) or ("",))[0] == "file_claim"
    async with world.uows() as uow:
        assert await uow.claims.evidence_count(claim_id) == 2
    await no_rejected_calls(world)


async def test_a_photo_at_the_description_step_is_refused_and_a_caption_later_kept(
    world: World,
) -> None:
    """A picture where the description is asked for is refused whole (not its caption taken
    and the picture dropped); at the photos step a caption adds to the description."""
    ann = 874
    await bound_buyer(world, ann, "BF23", ("CP-1",))
    await _to_description(world, ann, "CP-1", "Return and refund", "Damaged in transit")
    before = await draft(world, ann)
    [refused] = await direct(world, ann, photo=album_photo(1), text="Box <crushed>")
    assert isinstance(refused, Screen)
    assert refused.text.startswith("Please type the description as text (or press Skip).")
    assert await draft(world, ann) == before
    await world.say(ann, "Box <crushed>")
    await direct(world, ann, photo=album_photo(2), text="and the corner")
    kept = await draft(world, ann)
    assert kept is not None
    assert kept[2]["description"] == "Box <crushed>\nand the corner"
    assert kept[2]["photos"] == ["photo:album-photo-2"]
    # a caption that looks like a command is a caption: the picture is not dropped for it
    await direct(world, ann, photo=album_photo(4), text="/claims 3")
    kept = await draft(world, ann)
    assert kept is not None and kept[2]["photos"] == ["photo:album-photo-2", "photo:album-photo-4"]
    assert kept[2]["description"].endswith("/claims 3")
    # where a description is required, the refusal says so
    await world.say(ann, "/cancel")
    await _to_description(world, ann, "CP-1", "Return and refund", "Other")
    before = await draft(world, ann)
    [refused] = await direct(world, ann, photo=album_photo(3))
    assert isinstance(refused, Screen) and "for “Other” it is needed" in refused.text
    assert await draft(world, ann) == before
    await no_rejected_calls(world)


async def test_an_album_where_a_button_is_wanted_is_answered_once(world: World) -> None:
    ann = 875
    await bound_buyer(world, ann, "BF24", ("AB-1",))
    await world.say(ann, "/new")
    before = await draft(world, ann)
    replies = [
        await direct(world, ann, photo=album_photo(n), media_group_id="STRAY-1") for n in range(4)
    ]
    first = [o.text for o in replies[0] if isinstance(o, Screen)]
    assert "buttons" in first[0] and "which order" in first[1]
    assert replies[1:] == [[], [], []]
    after = await draft(world, ann)
    assert before is not None and after is not None
    assert after[:2] == before[:2]  # still at the same step, nothing chosen
    assert {k: v for k, v in after[2].items() if k != "stray_album"} == before[2]
    # another album later is answered again
    again = await direct(world, ann, photo=album_photo(9), media_group_id="STRAY-2")
    assert isinstance(again[0], Screen) and "buttons" in again[0].text
    await no_rejected_calls(world)


async def test_an_album_where_a_waybill_number_or_a_comment_is_wanted_is_answered_once(
    world: World,
) -> None:
    """Photos of the parcel's label sent as an album where the waybill number is to be typed,
    or pictures where a rating's comment is: one reply per album, not one per picture."""
    ann = 879
    await bound_buyer(world, ann, "BF28", ("AW-1", "AW-2"))
    await _to_description(world, ann, "AW-1", "Return and refund", "7-day")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    await _to_description(world, ann, "AW-2", "Refund only", "Quality issue")
    for label in ("Skip", "Done", "Confirm"):
        await press(world, ann, label)
    returned, withdrawn = await claim_ids(world)
    [card] = await world.say(ann, f"/claim {withdrawn}")
    await press(world, ann, "Withdraw", card)
    await world.back_office()  # the return is approved, its waybill issued
    [card] = await world.say(ann, f"/claim {returned}")
    await press(world, ann, "I have sent it back", card)
    before = await status(world, returned)
    replies = [
        await direct(world, ann, photo=album_photo(n), media_group_id="LABEL-1") for n in range(4)
    ]
    [refused] = replies[0]
    assert isinstance(refused, Screen) and "waybill number from the label as text" in refused.text
    assert replies[1:] == [[], [], []]
    assert await status(world, returned) == before
    assert (await draft(world, ann) or ("",))[0] == "return_tracking"
    [handed, _] = await press(world, ann, "I handed it over")
    assert "on its way" in handed["text"]
    # the rating's comment
    [card] = await world.say(ann, f"/claim {withdrawn}")
    [stars] = await press(world, ann, "⭐ Rate", card)
    await press(world, ann, "⭐⭐⭐", stars)
    replies = [
        await direct(world, ann, photo=album_photo(n), media_group_id="SMILE-1") for n in range(3)
    ]
    [refused] = replies[0]
    assert isinstance(refused, Screen) and "comment as text" in refused.text
    assert replies[1:] == [[], []]
    assert await count(world, t.ClaimRating) == 0
    [thanks] = await world.say(ann, "Fine")
    assert "Thank you" in thanks["text"]
    await no_rejected_calls(world)


async def test_an_order_past_the_after_sales_period_says_so(world: World) -> None:
    now = world.env.clock.now()
    old, _recent = await place(
        world.uows,
        now,
        order("WIN-OLD", now, buyer="BF25", delivered_ago=timedelta(days=31)),
        order("WIN-NEW", now, buyer="BF25", delivered_ago=timedelta(days=29)),
    )
    ann = await world.user(876)
    await world.say(ann, f"/start {await world.token('buyer', old.buyer_id)}")
    [orders] = await world.say(ann, "/new")
    assert [b.split(" ")[0] for b in buttons(orders)] == ["WIN-NEW"]
    assert "WIN-OLD: the after-sales period (30 days after delivery) is over" in orders["text"]
    before = await draft(world, ann)
    forged = await direct(world, ann, callback_data=f"d:order:{old.order_id}")
    assert toast_texts(forged) == ["the after-sales period (30 days after delivery) is over"]
    assert await draft(world, ann) == before


async def test_items_of_two_consignors_are_filed_as_a_claim_each_and_the_buyer_gets_both(
    world: World,
) -> None:
    ann = 881
    now = world.env.clock.now()
    lines = (("M-1-A", "C-MA", 1, 10_000, 0), ("M-1-B", "C-MB", 2, 5_000, 0))
    [p] = await place(world.uows, now, order("M-1", now, buyer="BM", lines=lines))
    await world.user(ann)
    await world.say(ann, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(ann, "/new")
    await press(world, ann, "M-1")
    await press(world, ann, "Item M-1-A")
    await press(world, ann, "Item M-1-B")
    await press(world, ann, "Item M-1-B")  # ×2
    await press(world, ann, "Next")
    await press(world, ann, "Refund only")
    await press(world, ann, "Not as described")
    await press(world, ann, "Skip")
    await press(world, ann, "Done")
    filed, *cards = await press(world, ann, "Confirm")
    first, second = await claim_ids(world)
    assert "2 claims were filed" in filed["text"], filed["text"]
    assert f"Claim #{first}: Item M-1-A ×1" in filed["text"]
    assert f"Claim #{second}: Item M-1-B ×2" in filed["text"]
    assert [f"#{first}" in c["text"] for c in cards] == [True, False]
    assert [f"#{second}" in c["text"] for c in cards] == [False, True]
    async with world.uows() as uow:
        assert await uow.claims.consignor_ids(first) == [p.consignor_ids[0]]
        assert await uow.claims.consignor_ids(second) == [p.consignor_ids[1]]
    assert await draft(world, ann) is None
    await no_rejected_calls(world)


async def test_an_album_answer_whose_claim_moves_on_midway_says_so_once(world: World) -> None:
    ann = 877
    await bound_buyer(world, ann, "BF26", ("AM-1",))
    claim_id = await _filed_for_a_person(world, ann, "AM-1")
    await _asked(world, claim_id, "Photos please")
    [card] = await world.say(ann, f"/claim {claim_id}")
    await press(world, ann, "Answer", card)
    await direct(world, ann, photo=album_photo(0), media_group_id="ANS-2")
    async with world.uows() as uow:  # staff decide between two pictures of the album
        version = (await status(world, claim_id))[1]
        await review.reject(uow, world.env, AGENT, claim_id, version, "Enough seen")
        await uow.commit()
    rest = [
        await direct(world, ann, photo=album_photo(n), media_group_id="ANS-2") for n in (1, 2, 3)
    ]
    [note] = rest[0]
    assert isinstance(note, Screen) and "moved on while your pictures arrived" in note.text
    assert rest[1:] == [[], []]
    async with world.uows() as uow:
        assert await uow.claims.evidence_count(claim_id) == 1
    assert (await status(world, claim_id))[0] == "rejected"
    await no_rejected_calls(world)


async def test_items_claimed_meanwhile_are_dropped_from_the_draft_not_refused_at_confirm(
    world: World,
) -> None:
    """A claim filed on the order while the buyer's draft is open (the overdue sweep's, or
    one from the buyer's other chat) takes items the draft chose: the buyer is taken back to
    what is left, or told the order has nothing left, never refused at Confirm again and
    again."""
    ann = 831
    me = await bound_buyer(world, ann, "BF31", ("W-1",), delivered=False)
    await world.say(ann, "/new")
    await press(world, ann, "W-1")
    await press(world, ann, "Item W-1-A")
    [lines] = await press(world, ann, "Item W-1-B")
    assert "✓ ×1 Item W-1-B" in buttons(lines)
    # Item B is claimed from elsewhere: Next says so, and shows the items without it.
    async with world.uows() as uow:
        order_line_b = (await buyer_order(uow, me.buyer_id, me.order_ids[0])).lines[1].line_id
        await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, me.buyer_id),
            ClaimDraft(ClaimType.REFUND_ONLY, Reason.NOT_RECEIVED, (LineRequest(order_line_b, 1),)),
        )
        await uow.commit()
    [again] = await press(world, ann, "Next", lines)
    assert "claimed meanwhile" in (await toasts(world, ann))[-1]
    assert buttons(again) == ["✓ ×1 Item W-1-A", "Next ▶"]
    assert (await draft(world, ann))[2]["lines"] == {"1": 1}  # type: ignore[index]
    for label in ("Next", "Refund only", "Not received", "Skip", "Done"):
        [shown] = await press(world, ann, label)
    assert "Item W-1-B" not in shown["text"]

    # The overdue sweep claims the rest: Confirm ends the dialog and says why.
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    [ended] = await press(world, ann, "Confirm", shown)
    assert ended["text"].startswith("Order W-1: every item is already under a claim")
    assert await draft(world, ann) is None
    assert len(await claim_ids(world)) == 2  # the other chat's and the sweep's
    await no_rejected_calls(world)


async def test_an_older_orders_page_button_pressed_while_items_are_chosen_says_so(
    world: World,
) -> None:
    ann = 832
    await bound_buyer(world, ann, "BF32", tuple(f"R-{n}" for n in range(1, 8)))
    [older] = await world.say(ann, "/new")
    await world.say(ann, "/new")  # still filing: the orders shown again
    await press(world, ann, "R-7")
    kept = await draft(world, ann)
    await press(world, ann, "▶", older)
    assert (await toasts(world, ann))[-1] == "That button belongs to an earlier step."
    assert await draft(world, ann) == kept
    await no_rejected_calls(world)
