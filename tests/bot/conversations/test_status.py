"""``/status N`` and the card's Flowchart button, end to end through the sandbox with the real
dispatcher: every party of a claim gets the lit flowchart as a PNG photo in their language;
anyone else gets the same "not found" as for any claim not theirs, with nothing changed."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiogram.types import BotCommandScopeChat

from bot import i18n
from bot.conversations import status
from bot.conversations.callbacks import ClaimFlowchart
from bot.conversations.model import Screen, Toast
from tests.bot.conversations.buyer_kit import bound_buyer, no_rejected_calls, press
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import buttons, probing
from tests.bot.conversations.staff_kit import (
    AGENT,
    BUYER,
    CONSIGNOR,
    STRANGER,
    direct,
    file_for_review,
    parties,
    staffed,
)
from workflow import diagram, lifecycle
from workflow.claims import Actor, Role
from workflow.services import review

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAFF_ACTOR = Actor(Role.AGENT, 1)


async def _picture(world: World, message: dict[str, Any]) -> bytes:
    """The bytes of a photo the bot sent, as the sandbox stored them."""
    async with aiohttp.ClientSession() as http:
        url = f"{world.sandbox.url}/sandbox/files/{message['photo']['file_id']}"
        async with http.get(url) as response:
            assert response.status == 200
            return await response.read()


async def _state(world: World, claim_id: int) -> tuple[str, int, int]:
    """(status, version, audit events) of a claim as stored."""
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        return claim.status, claim.version, len(await uow.claims.timeline(claim_id))


async def _expected(world: World, claim_id: int, lang: str) -> bytes:
    """The flowchart ``aftersales diagram`` would draw for the claim, in ``lang``."""
    async with world.uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        trace = diagram.Trace.of(
            claim.claim_type, claim.status, await uow.claims.timeline(claim_id)
        )
    words = {
        "number": claim_id,
        "claim_type": i18n.t(lang, f"claim_type.{claim.claim_type}"),
        "state": i18n.t(lang, f"state.{claim.status}"),
    }
    title = i18n.t(lang, "status.title", **words)
    return diagram.render(lambda kind, name: i18n.t(lang, f"{kind}.{name}"), "png", trace, title)


async def _send_photos(world: World) -> list[dict[str, Any]]:
    return list((await world.client.calls(method="sendPhoto"))["calls"])


async def _menu(world: World, chat: int) -> set[str]:
    commands = await world.bot.get_my_commands(scope=BotCommandScopeChat(chat_id=chat))
    return {c.command for c in commands}


async def test_every_party_gets_the_claims_lit_flowchart_as_a_photo(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    claim_id = await file_for_review(world, p)
    await world.back_office()
    before = await _state(world, claim_id)
    state_words = i18n.t("en", f"state.{before[0]}")

    [photo] = await world.say(BUYER, f"/status {claim_id}")
    assert photo.get("photo") is not None and "text" not in photo
    assert f"Claim #{claim_id}" in photo["caption"] and f"Now: {state_words}" in photo["caption"]
    assert "Return and refund" in photo["caption"]
    [call] = await _send_photos(world)
    assert call["ok"] and int(call["params"]["chat_id"]) == BUYER
    assert call["params"]["photo"].startswith("attach://")  # uploaded, not a file_id reused
    picture = await _picture(world, photo)
    assert picture.startswith(PNG_SIGNATURE)
    assert picture == await _expected(world, claim_id, "en")

    # A consignor of the claim's items, and staff, see the same picture of it.
    for party in (CONSIGNOR, AGENT):
        [theirs] = await world.say(party, f"/status #{claim_id}")
        assert f"Claim #{claim_id}" in theirs["caption"]
        assert await _picture(world, theirs) == picture

    # Looking changes nothing.
    assert await _state(world, claim_id) == before
    await no_rejected_calls(world)


async def test_the_picture_is_drawn_after_the_updates_transaction_has_ended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Graphviz draws, the database is free: another unit of work can lock and write
    the very row the /status update locked (the asker's chat user). Drawing inside the
    transaction would keep it waiting (SQLite: the process's writer turn; PostgreSQL: the
    row lock) until the drawing was done."""
    await staffed(world, group=False)
    p = await parties(world)
    claim_id = await file_for_review(world, p)
    probes: list[str] = []
    monkeypatch.setattr(status, "_draw", probing(world, BUYER, status._draw, probes))
    [photo] = await world.say(BUYER, f"/status {claim_id}")
    assert photo.get("photo") is not None
    assert probes == ["free"]


async def test_a_claim_not_theirs_or_not_there_is_refused_like_everywhere(world: World) -> None:
    await staffed(world, group=False)
    p = await parties(world)
    claim_id = await file_for_review(world, p)
    await world.back_office()
    before = await _state(world, claim_id)
    photos = len(await _send_photos(world))

    other = await bound_buyer(world, 861, "B-OTHER", ("OT-1",))
    [refused] = await world.say(other.user_id, f"/status {claim_id}")
    [as_claim] = await world.say(other.user_id, f"/claim {claim_id}")
    assert refused["text"] == as_claim["text"]
    assert f"there is no claim {claim_id} that you can see" in refused["text"]
    [missing] = await world.say(other.user_id, f"/status {claim_id + 1000}")
    assert f"there is no claim {claim_id + 1000} that you can see" in missing["text"]
    [staff_missing] = await world.say(AGENT, f"/status {claim_id + 1000}")
    assert "there is no claim" in staff_missing["text"]

    # The button, forged for another's claim or a number no claim has, draws nothing either.
    forged = await direct(world, other.user_id, callback_data=ClaimFlowchart(claim_id).pack())
    assert [o.text for o in forged if isinstance(o, Toast)] == [refused["text"]]
    assert not any(isinstance(o, Screen) for o in forged)
    [bad] = [
        o.text for o in await direct(world, BUYER, callback_data="cf:0") if isinstance(o, Toast)
    ]
    assert "not recognised" in bad

    # A stranger who never bound their chat gets the usual explanation.
    await world.user(STRANGER, "Eve")
    [unbound] = await world.say(STRANGER, f"/status {claim_id}")
    assert unbound["text"] == i18n.t("en", "bind.unbound")

    assert len(await _send_photos(world)) == photos
    assert await _state(world, claim_id) == before
    await no_rejected_calls(world)


async def test_status_without_a_number_or_with_garbage_explains_the_usage(world: World) -> None:
    ann = await bound_buyer(world, 871, "B-USAGE")
    for text in (
        "/status",
        "/status twelve",
        "/status -3",
        "/status 0",
        "/status 1 2",
        "/status 12345678901234",
    ):
        [reply] = await world.say(ann.user_id, text)
        assert "like /status 12" in reply["text"], text
    assert await _send_photos(world) == []
    await no_rejected_calls(world)


async def test_the_caption_and_the_labels_speak_the_viewers_language(world: World) -> None:
    p = await parties(world, bind=False)
    claim_id = await file_for_review(world, p)
    await world.back_office()
    await world.user(881, "安", "zh-CN")
    await world.say(881, f"/start {await world.token('buyer', p.buyer_id)}")
    status = (await _state(world, claim_id))[0]

    [photo] = await world.say(881, f"/status {claim_id}")
    assert f"售后单 #{claim_id}" in photo["caption"]
    assert f"当前：{i18n.t('zh-CN', f'state.{status}')}" in photo["caption"]
    assert "退货退款" in photo["caption"]
    picture = await _picture(world, photo)
    assert picture.startswith(PNG_SIGNATURE)
    assert picture == await _expected(world, claim_id, "zh-CN")
    assert picture != await _expected(world, claim_id, "en")
    await no_rejected_calls(world)


async def test_the_card_has_a_flowchart_button_that_sends_the_same_picture(world: World) -> None:
    p = await parties(world)
    claim_id = await file_for_review(world, p)
    await world.back_office()
    before = await _state(world, claim_id)

    [card] = await world.say(BUYER, f"/claim {claim_id}")
    assert "🗺 Flowchart" in buttons(card)
    [photo] = await press(world, BUYER, "Flowchart", card)
    assert photo["message_id"] != card["message_id"]  # a new message: the card stays
    assert f"Claim #{claim_id}" in photo["caption"]
    assert (await _picture(world, photo)).startswith(PNG_SIGNATURE)
    [via_command] = await world.say(BUYER, f"/status {claim_id}")
    assert await _picture(world, photo) == await _picture(world, via_command)
    assert await _state(world, claim_id) == before
    await no_rejected_calls(world)


async def test_status_is_in_the_menus_of_buyers_consignors_and_staff(world: World) -> None:
    await staffed(world, group=False)
    await parties(world)
    for chat in (BUYER, CONSIGNOR, AGENT):
        assert "status" in await _menu(world, chat), chat
    [help_] = await world.say(BUYER, "/help")
    assert "/status — a claim's flowchart" in help_["text"]


async def test_the_state_is_worded_for_whoever_asks_not_for_the_buyer_alone(
    world: World,
) -> None:
    """The caption and the picture are the same for every party of a claim, so a state's name
    may not address one of them: a consignor or staff asking about a claim that waits for the
    buyer's answer must not read that it waits for *their* information."""
    await staffed(world, group=False)
    p = await parties(world)
    claim_id = await file_for_review(world, p)
    await world.back_office()
    async with world.uows() as uow:
        await review.request_info(uow, world.env, STAFF_ACTOR, claim_id, None, "Which seam?")
        await uow.commit()
    for party in (BUYER, CONSIGNOR, AGENT):
        [photo] = await world.say(party, f"/status {claim_id}")
        assert "Now: Waiting for more information\n" in photo["caption"], party
    # No state's name addresses one party, in any language: it is drawn for all of them.
    for lang in i18n.LANGUAGES:
        for state in lifecycle.STATES:
            words = i18n.t(lang, f"state.{state}").lower()
            assert not {"you", "your"} & set(words.split()), (lang, state)
            assert "您" not in words and "你" not in words, (lang, state)
    await no_rejected_calls(world)
