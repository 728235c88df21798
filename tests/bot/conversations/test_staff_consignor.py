"""Staff run a damaged return through chat; the consignor disputes by button and amount."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.bot.conversations.conftest import World
from tests.bot.conversations.consignor_kit import open_card, proposal
from tests.bot.conversations.consignor_kit import press as consignor_press
from tests.bot.conversations.kit import answered, press, toasts
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.services import filing

STAFF_ID, BUYER_ID, CONSIGNOR_ID, STRANGER_ID = 901, 902, 903, 904


async def _texts(world: World, chat: int) -> list[str]:
    return [
        m.get("text") or m.get("caption") or ""
        for m in (await world.client.messages(chat))["messages"]
    ]


async def test_a_damaged_return_from_review_to_settlement_in_chat(world: World) -> None:
    world.provoke("message is not modified")  # the double press redraws nothing
    world.services.config = replace(world.services.config, admins=frozenset({STAFF_ID}))
    now = world.env.clock.now()
    [p] = await place(
        world.uows, now, order("ST-1", now, lines=(("ST-A", "C1", 1, 10_000, 1_000),))
    )
    await world.user(STAFF_ID, "Zoe")
    await world.user(BUYER_ID, "Ann")
    await world.user(CONSIGNOR_ID, "Lin", "zh-hans")
    await world.user(STRANGER_ID, "Eve")
    [welcome, _menu] = await world.say(STAFF_ID, "/start")
    assert "staff account" in welcome["text"]
    await world.say(BUYER_ID, f"/start {await world.token('buyer', p.buyer_id)}")
    await world.say(CONSIGNOR_ID, f"/start {await world.token('consignor', p.consignor_ids[0])}")
    [refused] = await world.say(BUYER_ID, "/queue")
    assert "not available to you" in refused["text"]

    async with world.uows() as uow:
        claim = await filing.file_claim(
            uow,
            world.env,
            Actor(Role.BUYER, p.buyer_id),
            ClaimDraft(
                ClaimType.RETURN_REFUND,
                Reason.QUALITY_ISSUE,
                (LineRequest(p.line_ids[0], 1),),
                "cracked",
                ("photo-1",),
            ),
        )
        await uow.commit()
    n = claim.id
    await world.back_office()
    [queue] = await world.say(STAFF_ID, "/queue")
    assert f"#{n} · Return and refund · Waiting for review" in queue["text"]
    [case] = await world.say(STAFF_ID, f"/case {n}")
    [bad] = await world.say(STAFF_ID, "/case 9999")
    assert "no claim 9999" in bad["text"]
    data = next(
        b["callback_data"]
        for row in case["reply_markup"]["inline_keyboard"]
        for b in row
        if b["text"] == "Approve"
    )
    first = await world.client.press(STAFF_ID, case["message_id"], callback_data=data)
    second = await world.client.press(
        STAFF_ID, case["message_id"], callback_data=data
    )  # a double press
    await answered(world, STAFF_ID, first["callback_query_id"])
    await answered(world, STAFF_ID, second["callback_query_id"])
    assert any("already been handled" in x for x in await toasts(world, STAFF_ID))
    async with world.uows() as uow:
        assert [e.trigger for e in await uow.claims.timeline(n)].count("approve") == 1
    await world.back_office()
    async with world.uows() as uow:
        [shipment] = await uow.shipments.for_claim(n)
    world.carrier.hand_over(shipment.tracking_number)
    world.env.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await world.back_office()
    [usage] = await world.say(STAFF_ID, f"/inspect {n} damaged lots consignor")
    assert "“lots” is not an amount I can read" in usage["text"]
    [inspected] = await world.say(STAFF_ID, f"/inspect {n} damaged 30 consignor")
    assert "Compensation proposed" in inspected["text"]
    await world.back_office()

    # The consignor opens the claim from the notification and disputes with a counter-offer.
    note = next(
        m
        for m in (await world.client.messages(CONSIGNOR_ID))["messages"]
        if "提议赔偿" in (m.get("text") or "")
    )
    [card] = await press(world, CONSIGNOR_ID, "查看售后单", note)
    await press(world, CONSIGNOR_ID, "有异议", card)
    [not_money] = await world.say(CONSIGNOR_ID, "二十块")
    assert "不是有效金额" in not_money["text"]
    [too_much] = await world.say(CONSIGNOR_ID, "1000")
    assert "超过了损坏商品的价值" in too_much["text"]
    replies = await world.say(CONSIGNOR_ID, "10")
    assert "还价 10.00 CNY" in replies[0]["text"]
    # A stranger cannot act on it.
    [foreign] = await world.say(STRANGER_ID, f"/claim {n}")
    assert "personal link" in foreign["text"]

    [staff_card] = await world.say(STAFF_ID, f"/case {n}")
    await press(world, STAFF_ID, "Resolve compensation", staff_card)
    await world.say(STAFF_ID, "20")
    await world.back_office()
    world.env.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await world.back_office()
    async with world.uows() as uow:
        current = await uow.claims.get(n)
        assert current is not None
        assert current.status == "closed"
    [balance] = await world.say(CONSIGNOR_ID, "/balance")
    assert "赔偿 -20.00 CNY" in balance["text"]
    for party in (BUYER_ID, CONSIGNOR_ID):
        assert not any("Zoe" in text for text in await _texts(world, party))  # staff stay anonymous
    # The double press redraws a card that the first press had already brought up to date:
    # Telegram answers "message is not modified", which the bot expects and ignores.
    rejected = (await world.client.calls(ok=False))["calls"]
    assert all("message is not modified" in c["description"] for c in rejected), rejected


async def test_staff_deciding_a_disputed_compensation_see_the_proposal_and_the_counter_offer(
    world: World,
) -> None:
    """The consignor is told their counter-offer "has been sent" for our team to decide: the
    team deciding it sees it on the case's card, next to what was proposed, and so does the
    consignor on theirs."""
    world.services.config = replace(world.services.config, admins=frozenset({STAFF_ID}))
    await world.user(STAFF_ID, "Zoe")
    await world.say(STAFF_ID, "/start")
    k = await proposal(world, ref="SC-2", consignor_chat=CONSIGNOR_ID)
    card = await open_card(world, CONSIGNOR_ID, k.claim_id, "We propose a compensation")
    await consignor_press(world, CONSIGNOR_ID, card, "Dispute")
    replies = await world.say(CONSIGNOR_ID, "12.50")
    own = replies[-1]["text"]
    assert "Compensation disputed" in own
    assert "Proposed compensation: 30.00 CNY" in own and "Your counter-offer: 12.50 CNY" in own

    [case] = await world.say(STAFF_ID, f"/case {k.claim_id}")
    assert "Compensation disputed" in case["text"]
    assert "Proposed compensation: 30.00 CNY" in case["text"], case["text"]
    assert "Consignor's counter-offer: 12.50 CNY" in case["text"], case["text"]

    # Once decided, the card shows neither: the decision is the record.
    await press(world, STAFF_ID, "Resolve compensation", case)
    await world.say(STAFF_ID, "20")
    [case] = await world.say(STAFF_ID, f"/case {k.claim_id}")
    assert "counter-offer" not in case["text"] and "Proposed compensation" not in case["text"]
