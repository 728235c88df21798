"""Cases in the staff group: one forum topic per case, and who on staff has taken it.

What a topic is called and what its card says are decided here, framework-neutral; the
Bot API side (creating, renaming, closing, recreating topics within the group's flood
budget) lives in :mod:`bot.staff_group`, driven by the delivery of outbox messages.

The first staff member to press "Take" is named on the case's card for every other staff
member, so no two people work one case unknowingly. Only staff ever see that name.
"""

from __future__ import annotations

import html

from bot.conversations.cards import CARD_LINES, EXTRA_APPLIES, action, card
from bot.conversations.context import Ctx, Services
from bot.conversations.model import ChatUser, Incoming, Outcome, Screen, Toast
from storage.repositories import TopicRepo
from storage.uow import SqlUnitOfWork
from workflow import lifecycle
from workflow.claims import STAFF_ROLES, Actor, ClaimRecord, Role
from workflow.services.queries import ClaimView

TAKE = "x_take"
# Bot API createForumTopic / editForumTopic: a topic name is 1-128 characters.
TOPIC_NAME_CHARS = 128


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
    drawn = await card(ctx, claim_id)
    text = f"{note}\n\n{drawn.text}" if note else drawn.text
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
EXTRA_APPLIES[TAKE] = lambda view: view.claim.status in lifecycle.OPEN_STATES


@action(TAKE, *sorted(STAFF_ROLES, key=lambda r: r.value))
async def take(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    """Take the case: the first to press is named on the card; later takers are told who."""
    assert actor.party_id is not None  # staff accounts always have one
    claim_id = view.claim.id
    topics = TopicRepo(ctx.uow.session)
    before = await topics.get(claim_id)
    if before is not None and before.taken_by == actor.party_id:
        return Outcome([Toast(ctx.t("staff.take.already_yours", number=claim_id))])
    group = ctx.services.config.staff_chat_id or 0
    holder = await topics.take(claim_id, actor.party_id, group, ctx.env.clock.now())
    if holder != actor.party_id:
        name = await topics.taken_by_name(claim_id) or "?"
        text = ctx.t("staff.take.taken_by_other", number=claim_id, name=html.escape(name))
        return Outcome([Toast(text, alert=True)])
    fresh = await card(ctx, claim_id, edit=True)
    outputs: list[Toast | Screen] = [Toast(ctx.t("staff.take.done", number=claim_id)), fresh]
    topic = await topics.get(claim_id)
    pressed_elsewhere = topic is not None and ctx.incoming.chat_id != topic.chat_id
    if topic is not None and topic.thread_id is not None and pressed_elsewhere:
        # Taken from a private chat: say so in the case's topic too.
        lang = staff_language(ctx.services)
        name = await topics.taken_by_name(claim_id) or "?"
        said = ctx.services.translate(
            lang, "staff.topic.taken", number=claim_id, name=html.escape(name)
        )
        outputs.append(Screen(said, chat_id=topic.chat_id, thread_id=topic.thread_id))
    return Outcome(list(outputs))
