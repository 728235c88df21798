"""Cases in the staff group: one forum topic per case, and who on staff has taken it.

What a topic is called and what its card says are decided here, framework-neutral; the
Bot API side (creating, renaming, closing, recreating topics within the group's flood
budget) lives in :mod:`bot.staff_group`, driven by the delivery of outbox messages.

The first staff member to take a case — by pressing "Take", or by acting on a case nobody
holds — is named on the case's card for every other staff member, so no two people work one
case unknowingly: a colleague's action on a held case (a decision, inspection, refund) is
refused with the holder's name and a "Take over" button; taking over is recorded (with
every change of holder, in ``claim_holds``) and the case's topic is told. Only staff ever
see these names.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from typing import ClassVar

from bot import limits
from bot.conversations.callbacks import Callback, ClaimAction
from bot.conversations.cards import CARD_LINES, EXTRA_BUTTONS, action, card, pressed
from bot.conversations.context import Ctx, Services
from bot.conversations.model import Button, ChatUser, Incoming, Outcome, Output, Screen, Toast
from bot.conversations.routes import ROUTES, STAFF
from storage.repositories import TopicRepo
from storage.uow import SqlUnitOfWork
from workflow import lifecycle
from workflow.claims import STAFF_ROLES, Actor, ClaimRecord, Role
from workflow.services.queries import ClaimView

TAKE = "x_take"
TAKE_OVER = "x_take_over"
TOPIC_NAME_CHARS = limits.TOPIC_NAME


@dataclass(frozen=True)
class TakeOverFrom(Callback):
    """ "Take over" on a refusal: it names the holder the refusal named, and takes the case
    from them only (a colleague who took it over meanwhile is not displaced unasked)."""

    prefix: ClassVar[str] = "ho"
    claim_id: int
    version: int
    holder: int


def staff_language(services: Services) -> str:
    return "zh-CN" if services.config.staff_language == "zh-CN" else "en"


def topic_name(services: Services, claim: ClaimRecord) -> str:
    """The case number and its state in words, e.g. "#12 · Waiting for review"."""
    lang = staff_language(services)
    name = services.translate(
        lang,
        "staff.topic.name",
        number=claim.id,
        state=services.translate(lang, f"state.{claim.status}"),
    )
    return name[:TOPIC_NAME_CHARS]


def group_ctx(uow: SqlUnitOfWork, services: Services) -> Ctx:
    """A context for drawing what the staff group sees (no update behind it)."""
    group = services.config.staff_chat_id or 0
    incoming = Incoming(
        update_id=0, user=ChatUser(0, "staff"), chat_id=group, chat_type="supergroup"
    )
    return Ctx(uow, services, incoming, staff_language(services), [Actor(Role.AGENT)])


async def topic_card(uow: SqlUnitOfWork, services: Services, claim_id: int, note: str) -> Screen:
    """The card posted in a case's topic, under the note that says why staff are called."""
    ctx = group_ctx(uow, services)
    if not note:
        return await card(ctx, claim_id)
    room = limits.MESSAGE_TEXT - limits.visible_length(note) - 2  # the note and a blank line
    drawn = await card(ctx, claim_id, room=room)
    text = f"{note}\n\n{drawn.text}"
    return Screen(text, drawn.keyboard)


async def _taken_line(ctx: Ctx, view: ClaimView, viewer: Actor) -> list[str]:
    if not viewer.is_staff:
        return []  # staff stay anonymous to buyers and consignors
    name = await TopicRepo(ctx.uow.session).taken_by_name(view.claim.id)
    if name is not None:
        return [ctx.t("staff.card.taken_by", name=html.escape(name))]
    if view.claim.status in lifecycle.OPEN_STATES:
        return [ctx.t("staff.card.not_taken")]
    return []


CARD_LINES.append(_taken_line)


async def _take_button(ctx: Ctx, view: ClaimView, viewer: Actor) -> str | None:
    """ "Take" on an open case. A card in a private chat is its viewer's own: the case's
    holder is not offered to take what they hold, a colleague is offered to take it over.
    The card in the case's topic is one message for all staff, the holder among them: once
    the case is held it says "Take over…" (pressed, it asks first, naming the holder; the
    holder pressing it is told they hold the case already)."""
    if view.claim.status not in lifecycle.OPEN_STATES:
        return None
    topic = await TopicRepo(ctx.uow.session).get(view.claim.id)
    holder = topic.taken_by if topic is not None else None
    if holder is None:
        return f"action.{TAKE}"
    if ctx.incoming.is_private and holder == viewer.party_id:
        return None
    return f"action.{TAKE}.held"


async def _never(ctx: Ctx, view: ClaimView, viewer: Actor) -> str | None:
    return None


EXTRA_BUTTONS[TAKE] = _take_button
# "Take over" is offered where an action was refused, never on the card itself.
EXTRA_BUTTONS[TAKE_OVER] = _never


def _holder_of(actor: Actor) -> int:
    assert actor.party_id is not None  # staff accounts always have one
    return actor.party_id


async def hold(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome | None:
    """Before a staff action on a case: None if ``actor`` may go ahead (they hold the case,
    or nobody did and now they do); else the refusal, naming the holder, with "Take over".

    Taking by acting is recorded like a take, and rolled back with the action if that is
    refused. The case's topic card is redrawn to name the new holder (see :func:`news`)."""
    if (own := _own_claim(ctx, view)) is not None:
        return own
    me = _holder_of(actor)
    claim_id = view.claim.id
    topics = TopicRepo(ctx.uow.session)
    before = await topics.get(claim_id)
    if before is not None and before.taken_by == me:
        return None
    group = ctx.services.config.staff_chat_id or 0
    holder = await topics.take(claim_id, me, group, ctx.env.clock.now(), how="acted")
    if holder == me:
        ctx.memo[(TAKE, claim_id)] = view.claim.version
        return None
    return await _held_by_other(ctx, view, holder)


async def news(ctx: Ctx, claim_id: int) -> list[Output]:
    """After an action that took the case by the way: if it left the claim where it was (a
    prompt for a reason or an amount), redraw the topic's card so it names the holder. A
    step that moved the claim needs nothing here: the topic is renamed and its card redrawn
    after delivery (``bot.staff_group.sync``)."""
    version = ctx.memo.pop((TAKE, claim_id), None)
    claim = await ctx.uow.claims.get(claim_id)
    if version is None or claim is None or claim.version != version:
        return []
    return await _redraw_topic_card(ctx, claim_id)


async def _held_by_other(ctx: Ctx, view: ClaimView, holder: int | None) -> Outcome:
    topics = TopicRepo(ctx.uow.session)
    name = (await topics.staff_name(holder) if holder else None) or "?"
    number = view.claim.id
    over = TakeOverFrom(number, view.claim.version, holder or 0).pack()
    offer = Screen(
        ctx.t("staff.hold.offer", number=number, name=html.escape(name)),
        ((Button(ctx.t(f"action.{TAKE_OVER}"), over),),),
    )
    if ctx.incoming.callback_id:  # a toast is plain text: the name as it is, not escaped
        refused = Toast(ctx.t("staff.hold.refused", number=number, name=name), alert=True)
        return Outcome([refused, offer])
    return Outcome([offer])


async def _redraw_topic_card(ctx: Ctx, claim_id: int) -> list[Output]:
    """The card in the case's topic, drawn anew (unless the press being answered was on it:
    then the handler's own answer redraws it)."""
    topic = await TopicRepo(ctx.uow.session).get(claim_id)
    if topic is None or topic.thread_id is None or topic.card_message_id is None or topic.closed:
        return []
    if ctx.incoming.chat_id == topic.chat_id and ctx.incoming.message_id == topic.card_message_id:
        return []
    drawn = await topic_card(ctx.uow, ctx.services, claim_id, "")
    return [
        replace(
            drawn,
            edit=True,
            chat_id=topic.chat_id,
            thread_id=topic.thread_id,
            message_id=topic.card_message_id,
        )
    ]


async def _tell_topic(ctx: Ctx, claim_id: int, key: str, **names: str) -> list[Output]:
    """A line in the case's topic (when the press was elsewhere), in the staff language."""
    topic = await TopicRepo(ctx.uow.session).get(claim_id)
    if topic is None or topic.thread_id is None or topic.closed:
        return []
    if ctx.incoming.chat_id == topic.chat_id:
        return []  # pressed in the group: everyone there sees the answer already
    lang = staff_language(ctx.services)
    said = ctx.services.translate(lang, key, number=claim_id, **names)
    return [Screen(said, chat_id=topic.chat_id, thread_id=topic.thread_id)]


async def _already_yours(ctx: Ctx, claim_id: int) -> Outcome:
    """A take by the case's holder (a button drawn before they held it, or the topic's card
    that everyone shares): nothing changes, and they are told so. A private card is redrawn
    without its stale "Take"; the topic's card stays as all staff see it."""
    outputs: list[Output] = [Toast(ctx.t("staff.take.already_yours", number=claim_id), alert=True)]
    if ctx.incoming.is_private:
        outputs.append(await card(ctx, claim_id, edit=True))
    return Outcome(list(outputs))  # a list of Output is no list of Output | Later


def _own_claim(ctx: Ctx, view: ClaimView) -> Outcome | None:
    """Nobody on staff handles a claim of their own (they are its buyer, or a consignor of
    its items, in another role of the same chat): a colleague must, so no one approves or
    refunds themselves. They may still read its card."""
    claim = view.claim
    for actor in ctx.actors:
        mine = (actor.role is Role.BUYER and actor.party_id == claim.buyer_id) or (
            actor.role is Role.CONSIGNOR and actor.party_id in view.consignor_ids
        )
        if mine:
            said = ctx.t("staff.own_claim", number=claim.id)
            return Outcome([Toast(said, alert=True) if ctx.incoming.callback_id else Screen(said)])
    return None


def _ended(ctx: Ctx, view: ClaimView) -> Outcome | None:
    """A case that has ended is nobody's to take (the cards offer no Take then; a button
    drawn for its last version, or forged, is answered so — and nothing is recorded)."""
    if view.claim.status in lifecycle.OPEN_STATES:
        return None
    return Outcome([Toast(ctx.t("staff.take.ended", number=view.claim.id), alert=True)])


@action(TAKE, *sorted(STAFF_ROLES, key=lambda r: r.value))
async def take(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    """Take the case: the first to press is named on the card; later takers are told who
    holds it and offered to take it over."""
    me = _holder_of(actor)
    claim_id = view.claim.id
    if (refused := _ended(ctx, view) or _own_claim(ctx, view)) is not None:
        return refused
    topics = TopicRepo(ctx.uow.session)
    before = await topics.get(claim_id)
    if before is not None and before.taken_by == me:
        return await _already_yours(ctx, claim_id)
    group = ctx.services.config.staff_chat_id or 0
    holder = await topics.take(claim_id, me, group, ctx.env.clock.now())
    if holder != me:
        return await _held_by_other(ctx, view, holder)
    name = html.escape(await topics.staff_name(me) or "?")
    outputs: list[Output] = [
        Toast(ctx.t("staff.take.done", number=claim_id)),
        await card(ctx, claim_id, edit=True),
        *await _redraw_topic_card(ctx, claim_id),
        *await _tell_topic(ctx, claim_id, "staff.topic.taken", name=name),
    ]
    return Outcome(list(outputs))  # a list of Output is no list of Output | Later


@action(TAKE_OVER, *sorted(STAFF_ROLES, key=lambda r: r.value))
async def take_over(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    """Take a case over from the colleague who holds it (pressed on the refusal that named
    them): recorded in ``claim_holds``; the topic's card names the new holder."""
    me = _holder_of(actor)
    claim_id = view.claim.id
    if (refused := _ended(ctx, view) or _own_claim(ctx, view)) is not None:
        return refused
    topics = TopicRepo(ctx.uow.session)
    before = await topics.get(claim_id)
    previous = before.taken_by if before is not None else None
    if previous == me:  # pressed on a refusal: it stays as it is
        return Outcome([Toast(ctx.t("staff.take.already_yours", number=claim_id), alert=True)])
    named = ctx.memo.pop((TAKE_OVER, claim_id), None)
    if previous is not None and named is not None and previous != named:
        return await _held_by_other(ctx, view, previous)  # asked again, naming who holds it now
    group = ctx.services.config.staff_chat_id or 0
    now = ctx.env.clock.now()
    if previous is None:
        holder = await topics.take(claim_id, me, group, now)
    else:
        holder = await topics.take_over(claim_id, me, previous, group, now)
    if holder != me:
        return await _held_by_other(ctx, view, holder)
    name = html.escape(await topics.staff_name(me) or "?")
    was = html.escape((await topics.staff_name(previous) if previous else None) or "?")
    key = "staff.topic.taken_over" if previous is not None else "staff.topic.taken"
    said = ctx.t(key, number=claim_id, name=name, previous=was)
    outputs: list[Output] = [
        Toast(ctx.t("staff.take.done", number=claim_id)),
        Screen(said, edit=True),  # the refusal it was pressed on says what happened
        *await _redraw_topic_card(ctx, claim_id),
        *await _tell_topic(ctx, claim_id, key, name=name, previous=was),
    ]
    if ctx.incoming.is_private:  # in the group, the topic's card (redrawn) is the card
        outputs.append(await card(ctx, claim_id))
    return Outcome(list(outputs))  # a list of Output is no list of Output | Later


@ROUTES.callback(TakeOverFrom, STAFF)
async def take_over_from(ctx: Ctx, data: TakeOverFrom) -> Outcome:
    """A card action like any other (the claim's version checked, the role's handler found),
    with the holder the refusal named remembered for :func:`take_over`."""
    if data.holder:
        ctx.memo[(TAKE_OVER, data.claim_id)] = data.holder
    return await pressed(ctx, ClaimAction(data.claim_id, TAKE_OVER, data.version))
