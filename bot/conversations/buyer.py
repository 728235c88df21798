"""What a buyer sees and may press besides filing (:mod:`bot.conversations.claim_dialog`):
their claims, the claim card's buttons (withdraw, answer a question, ship the return), the
return waybill's QR code, and the rating of a closed case.

The short dialogs here (an answer, a waybill number, a rating comment) keep their draft in the
database like the claim dialog does; each checks the claim is still where the button found
it before calling its one service, and ends itself if the claim has moved on. A user has one
dialog at a time: a button that would open one while another waits says what that one waits
for, and leaves it be.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import segno

from bot.conversations import claim_dialog
from bot.conversations.callbacks import Callback, ClaimAction
from bot.conversations.cards import EXTRA_BUTTONS, VIEW, action, card
from bot.conversations.claim_dialog import (
    OVER,
    PAGE,
    BuyerPage,
    as_id,
    buyer_of,
    end,
    evidence_of,
    first_of_album,
    other_dialog,
    pager,
    save,
    too_long,
)
from bot.conversations.context import ANSWERED, CHANNEL, Ctx
from bot.conversations.model import Button, Outcome, Screen, Toast
from bot.conversations.routes import BUYERS, ROUTES
from bot.outbox_screens import PICTURES
from workflow import lifecycle
from workflow.claims import MAX_EVIDENCE_ITEMS, Actor, Role
from workflow.errors import AlreadyHandled, InvalidClaim
from workflow.reminders import RETURN_REMINDER
from workflow.services import ratings, returns, review
from workflow.services.queries import ClaimView, claim_view

ANSWER_FLOW = "answer_info"
TRACKING_FLOW = "return_tracking"
RATING_FLOW = "rate_claim"
RATE = "x_rate"  # a card button that is not a transition (cards.py: extra actions start "x_")
TRACKING_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
TRACKING_LENGTH = range(6, 41)


@dataclass(frozen=True)
class HandedOver(Callback):
    """The buyer confirms the return parcel was handed to the carrier (no number typed)."""

    prefix: ClassVar[str] = "bh"
    claim_id: int
    version: int


@dataclass(frozen=True)
class RateScore(Callback):
    prefix: ClassVar[str] = "br"
    claim_id: int
    score: int


@dataclass(frozen=True)
class RateSkip(Callback):
    """Rate without a comment."""

    prefix: ClassVar[str] = "bk"
    claim_id: int


# ---- paging (orders in the claim dialog, the buyer's claims) ----


@ROUTES.callback(BuyerPage, BUYERS)
async def page_pressed(ctx: Ctx, data: BuyerPage) -> Outcome:
    if data.listing == "l":  # the order's items: it knows how many pages there are
        return await claim_dialog.lines_page(ctx, data.page)
    if not 0 <= data.page < 10_000:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    if data.listing == "o":
        return await claim_dialog.orders_page(ctx, data.page)
    if data.listing == "c":
        return Outcome([await _claims_screen(ctx, data.page, edit=True)])
    return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])


# ---- the buyer's claims ----


@ROUTES.command("claims", BUYERS)
async def my_claims(ctx: Ctx, args: str) -> Outcome:
    return Outcome([await _claims_screen(ctx, 0)])


@ROUTES.command("claim", BUYERS)
async def one_claim(ctx: Ctx, args: str) -> Outcome:
    number = as_id(args)
    if number is None:
        return ctx.usage("buyer.claim_usage")
    return Outcome([await card(ctx, number)])  # another buyer's claim: "not found"


async def _claims_screen(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    buyer = buyer_of(ctx)
    assert buyer.party_id is not None
    claims = await ctx.uow.claims.for_buyer(buyer.party_id, page * PAGE, PAGE)
    total = await ctx.uow.claims.count_for_buyer(buyer.party_id)
    if not claims:
        return Screen(ctx.t("buyer.no_claims" if page == 0 else "buyer.page_empty"), edit=edit)
    rows: list[tuple[Button, ...]] = []
    for c in claims:
        label = f"#{c.id} · {ctx.t(f'claim_type.{c.claim_type}')} · {ctx.t(f'state.{c.status}')}"
        rows.append((Button(label[:64], ClaimAction(c.id, VIEW, c.version).pack()),))
    if nav := pager("c", page, total):
        rows.append(nav)
    return Screen(ctx.t("buyer.your_claims", total=total), tuple(rows), edit=edit)


# ---- the card's buttons for a buyer ----


@action("withdraw", Role.BUYER)
async def withdraw(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await review.withdraw(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([Toast(ctx.t("buyer.withdrawn")), await card(ctx, view.claim.id, edit=True)])


async def _still_there(ctx: Ctx, data: dict[str, Any], trigger: str) -> ClaimView | Outcome:
    """The claim the dialog is about, if it is still where the button found it."""
    view = await claim_view(ctx.uow, buyer_of(ctx), int(data["claim"]))
    c = view.claim
    if c.version != int(data["version"]) or trigger not in lifecycle.allowed_triggers(
        c.status, c.claim_type, Role.BUYER
    ):
        await end(ctx)
        return Outcome([Screen(ctx.t("buyer.moved_on", number=c.id)), await card(ctx, c.id)])
    return view


def _about(key: str) -> Callable[[Ctx, dict[str, Any]], str]:
    """A dialog's text that names its claim (what /cancel left, what the dialog waits for)."""
    return lambda ctx, data: ctx.t(key, number=int(data["claim"]))


async def _busy(ctx: Ctx, flow: str, claim_id: int) -> Outcome | None:
    """A card button that opens a dialog while another one is open: that one is kept."""
    busy = await other_dialog(ctx, flow, claim_id)
    return None if busy is None else Outcome([Toast(busy, alert=True)])


@action("provide_info", Role.BUYER)
async def answer(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    if busy := await _busy(ctx, ANSWER_FLOW, view.claim.id):
        return busy
    data = {"claim": view.claim.id, "version": view.claim.version}
    await save(ctx, ANSWER_FLOW, "answer", data)
    return Outcome([Screen(ctx.t("buyer.answer_prompt", number=view.claim.id))])


@ROUTES.dialog(
    ANSWER_FLOW,
    cancelled=_about("buyer.answer_cancelled"),
    busy=_about("dialog.busy.answer_info"),
)
async def answer_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    incoming = ctx.incoming
    if step == "album":
        return await _album_tail(ctx, data)
    text = (incoming.text or "").strip()
    evidence: tuple[str, ...] = ()
    if incoming.photo or incoming.document:
        reference = evidence_of(ctx)
        if isinstance(reference, Screen):
            return Outcome([reference])
        evidence = (reference,)
    if not text and not evidence:
        return Outcome([Screen(ctx.t("buyer.want_text_or_photo"))])
    if refusal := too_long(ctx, text):
        return Outcome([refusal])
    view = await _still_there(ctx, data, "provide_info")
    if isinstance(view, Outcome):
        return view
    c = view.claim
    await review.provide_info(ctx.uow, ctx.env, buyer_of(ctx), c.id, c.version, text, evidence)
    if incoming.media_group_id is not None:  # the album's other pictures are on their way
        tail = {"claim": c.id, "album": incoming.media_group_id, "pictures": 1, ANSWERED: True}
        await save(ctx, ANSWER_FLOW, "album", tail)
    else:
        await end(ctx)
    return Outcome([Screen(ctx.t("buyer.answer_sent", number=c.id)), await card(ctx, c.id)])


async def _album_tail(ctx: Ctx, data: dict[str, Any]) -> Outcome:
    """After an answer sent as an album: its other pictures join the answer quietly (one
    reply per album); anything else ends the wait and is taken as if none were open."""
    incoming = ctx.incoming
    if incoming.media_group_id != data["album"]:
        await end(ctx)
        return await ROUTES.commands["help"].handler(ctx, "")  # what a buyer gets with no dialog
    if data.get("full"):
        return Outcome()
    if int(data["pictures"]) >= MAX_EVIDENCE_ITEMS:
        await save(ctx, ANSWER_FLOW, "album", {**data, "full": True})
        return Outcome([Screen(ctx.t("buyer.answer_photo_limit", limit=MAX_EVIDENCE_ITEMS))])
    reference = evidence_of(ctx)
    if isinstance(reference, Screen):
        return Outcome([reference])
    try:
        await review.add_to_answer(
            ctx.uow, ctx.env, buyer_of(ctx), int(data["claim"]), (reference,)
        )
    except AlreadyHandled:  # staff acted between two pictures: say so once, then stay quiet
        await save(ctx, ANSWER_FLOW, "album", {**data, "full": True})
        return Outcome([Screen(ctx.t("buyer.album_too_late", number=int(data["claim"])))])
    await save(ctx, ANSWER_FLOW, "album", {**data, "pictures": int(data["pictures"]) + 1})
    return Outcome()


@action("ship_return", Role.BUYER)
async def shipped_back(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    c = view.claim
    if busy := await _busy(ctx, TRACKING_FLOW, c.id):
        return busy
    await save(ctx, TRACKING_FLOW, "tracking", {"claim": c.id, "version": c.version})
    handed = Button(ctx.t("buyer.handed_over"), HandedOver(c.id, c.version).pack())
    return Outcome([Screen(ctx.t("buyer.tracking_prompt", number=c.id), ((handed,),))])


@ROUTES.dialog(
    TRACKING_FLOW,
    cancelled=_about("buyer.tracking_cancelled"),
    busy=_about("dialog.busy.return_tracking"),
)
async def tracking_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    incoming = ctx.incoming
    if incoming.text is None or incoming.photo or incoming.document:  # a label's picture…
        if not await first_of_album(ctx, TRACKING_FLOW, step, data):
            return Outcome()
        return Outcome([Screen(ctx.t("buyer.tracking_want_text"))])
    text = waybill_number(incoming.text)
    if len(text) not in TRACKING_LENGTH or not set(text) <= TRACKING_CHARS:
        return Outcome([Screen(ctx.t("buyer.bad_tracking"))])
    view = await _still_there(ctx, data, "ship_return")
    if isinstance(view, Outcome):
        return view
    if not any(s.tracking_number.upper() == text for s in view.shipments):
        raise InvalidClaim("tracking_mismatch")
    return await _ship(ctx, view)


def waybill_number(typed: str) -> str:
    """A waybill number as typed, read as the label prints it: a Chinese input method's
    full-width letters and digits as plain ones (NFKC), the spaces a label groups them with
    (ideographic ones too) dropped, in capitals."""
    return "".join(unicodedata.normalize("NFKC", typed).split()).upper()


@ROUTES.callback(HandedOver, BUYERS)
async def handed_over(ctx: Ctx, data: HandedOver) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if (
        conversation is None
        or conversation.flow != TRACKING_FLOW
        or conversation.data.get("claim") != data.claim_id
    ):  # the prompt was answered, or left: not a claim being filed, so not "dialog over"
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    view = await _still_there(ctx, dict(conversation.data), "ship_return")
    if isinstance(view, Outcome):
        return view
    return await _ship(ctx, view, edit=True)


async def _ship(ctx: Ctx, view: ClaimView, edit: bool = False) -> Outcome:
    c = view.claim
    await returns.mark_return_shipped(ctx.uow, ctx.env, buyer_of(ctx), c.id, c.version)
    await end(ctx)
    noted = Screen(ctx.t("buyer.return_noted", number=c.id), edit=edit)
    return Outcome([noted, await card(ctx, c.id)])


# ---- the return waybill's QR code, attached to the "send it back" message and its reminder ----

WAYBILL_ISSUED = next(step.dest for step in lifecycle.TABLE if step.trigger == "issue_waybill")


def waybill_qr(payload: dict[str, Any]) -> bytes | None:
    """A PNG of the waybill's QR code (shown at the drop-off point), or None without one."""
    content = str(payload.get("qr_payload") or "")
    if not content:
        return None
    out = io.BytesIO()
    segno.make(content, error="m").save(out, kind="png", scale=8, border=4)
    return out.getvalue()


PICTURES[f"claim.{WAYBILL_ISSUED}"] = waybill_qr
# The reminder tells the buyer to show the QR code at the drop-off point: it comes with it.
PICTURES[RETURN_REMINDER] = waybill_qr


# ---- rating a closed case ----


def _may_rate(view: ClaimView) -> bool:
    return view.claim.status in lifecycle.TERMINAL_STATES and view.rating is None


async def _rate_button(ctx: Ctx, view: ClaimView, viewer: Actor) -> str | None:
    return f"action.{RATE}" if _may_rate(view) else None


EXTRA_BUTTONS[RATE] = _rate_button


@action(RATE, Role.BUYER)
async def rate(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    if not _may_rate(view):
        return Outcome([Toast(ctx.t("buyer.cannot_rate"), alert=True)])
    stars = tuple(
        Button("⭐" * score, RateScore(view.claim.id, score).pack())
        for score in range(ratings.MIN_SCORE, ratings.MAX_SCORE + 1)
    )
    return Outcome(
        [Screen(ctx.t("buyer.rate_prompt", number=view.claim.id), (stars[:3], stars[3:]))]
    )


@ROUTES.callback(RateScore, BUYERS)
async def score_pressed(ctx: Ctx, data: RateScore) -> Outcome:
    if (
        not ratings.MIN_SCORE <= data.score <= ratings.MAX_SCORE
        or as_id(str(data.claim_id)) is None
    ):
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    view = await claim_view(ctx.uow, buyer_of(ctx), data.claim_id)  # another's: not found
    if not _may_rate(view):
        return Outcome([Toast(ctx.t("buyer.cannot_rate"), alert=True)])
    if busy := await _busy(ctx, RATING_FLOW, data.claim_id):
        return busy
    await save(ctx, RATING_FLOW, "comment", {"claim": data.claim_id, "score": data.score})
    skip = Button(ctx.t("buyer.rate_no_comment"), RateSkip(data.claim_id).pack())
    text = ctx.t("buyer.rate_comment", number=data.claim_id, stars="⭐" * data.score)
    return Outcome([Screen(text, ((skip,),), edit=True)])


@ROUTES.callback(RateSkip, BUYERS)
async def skip_pressed(ctx: Ctx, data: RateSkip) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if (
        conversation is None
        or conversation.flow != RATING_FLOW
        or conversation.data.get("claim") != data.claim_id
    ):  # rated already, or left
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    return await _rated(ctx, dict(conversation.data), "", edit=True)


async def _rated_meanwhile(ctx: Ctx, data: dict[str, Any]) -> bool:
    """A rating dialog is over once its claim has a rating (given from the other chat)."""
    return await ctx.uow.claims.rating(int(data["claim"])) is not None


OVER[RATING_FLOW] = _rated_meanwhile


@ROUTES.dialog(
    RATING_FLOW,
    cancelled=_about("buyer.rating_cancelled"),
    busy=_about("dialog.busy.rate_claim"),
)
async def rating_comment(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    incoming = ctx.incoming
    text = (incoming.text or "").strip()
    # A picture's caption is not a comment: the picture would be dropped without a word.
    if incoming.text is None or incoming.photo or incoming.document or not text:
        if not await first_of_album(ctx, RATING_FLOW, step, data):
            return Outcome()
        return Outcome([Screen(ctx.t("buyer.rate_want_text"))])
    if refusal := too_long(ctx, text):
        return Outcome([refusal])
    return await _rated(ctx, data, text)


async def _rated(ctx: Ctx, data: dict[str, Any], comment: str, edit: bool = False) -> Outcome:
    claim_id, score = int(data["claim"]), int(data["score"])
    view = await claim_view(ctx.uow, buyer_of(ctx), claim_id)
    if view.rating is not None:  # rated meanwhile from the buyer's other chat: nothing to wait for
        await end(ctx)
        text = ctx.t("error.invalid_claim.already_rated", claim=claim_id)
        return Outcome([Toast(text, alert=True) if ctx.incoming.callback_id else Screen(text)])
    await ratings.rate_claim(ctx.uow, ctx.env, buyer_of(ctx), claim_id, score, comment)
    await end(ctx)
    return Outcome([Screen(ctx.t("buyer.rated", number=claim_id, stars="⭐" * score), edit=edit)])
