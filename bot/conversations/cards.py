"""The claim card every party sees, and the buttons on it, drawn from the transition table.

The buttons a viewer gets are exactly the steps the table lets their role fire from the
claim's state (``lifecycle.allowed_triggers``) for which a role module registered an action
handler. Each button carries the claim's version; a press on an older version is answered
"out of date" with a fresh card, and never fires a second transition.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot import dates, limits
from bot.conversations.callbacks import ClaimAction, ClaimFlowchart
from bot.conversations.context import Ctx
from bot.conversations.model import Button, Outcome, Screen, Toast
from bot.conversations.routes import ANYONE, ROUTES, STAFF, audience_of, staff_elsewhere
from bot.i18n import exists
from workflow import lifecycle
from workflow.claims import Actor, AuditEvent, Role, Source
from workflow.errors import NotFound
from workflow.money import Money
from workflow.rules import ReviewPolicy
from workflow.services.queries import ClaimView, claim_view

ActionHandler = Callable[[Ctx, Actor, ClaimView], Awaitable[Outcome]]

# Buttons that are not transitions: open the card again, and the like.
VIEW = "view"


@dataclass(frozen=True)
class Action:
    trigger: str
    handler: ActionHandler
    roles: frozenset[Role]


ACTIONS: dict[tuple[str, Role], Action] = {}


def action(trigger: str, *roles: Role) -> Callable[[ActionHandler], ActionHandler]:
    """Register what pressing ``trigger`` does for ``roles`` (a role module's job)."""

    def register(handler: ActionHandler) -> ActionHandler:
        for role in roles:
            if (trigger, role) in ACTIONS:
                raise ValueError(f"{trigger} for {role} registered twice")
            ACTIONS[(trigger, role)] = Action(trigger, handler, frozenset(roles))
        return handler

    return register


def viewer_for(ctx: Ctx, view: ClaimView) -> Actor | None:
    """Which of the user's roles looks at this claim (buyer of it, consignor of it, staff)."""
    buyer, consignor = ctx.buyer, ctx.consignor
    if buyer is not None and buyer.party_id == view.claim.buyer_id:
        return buyer
    if consignor is not None and consignor.party_id in view.consignor_ids:
        return consignor
    return ctx.staff


def money(amount: int | None, currency: str) -> str:
    return Money(amount or 0, currency).format()


# A user text (description, note, item title) cut to this many characters when a card
# does not fit even with only its latest timeline entry.
SHORT_TEXT = 200


@dataclass(frozen=True)
class _Layout:
    """How much of a claim a card shows: its latest ``entries`` timeline entries, its first
    ``lines`` items, user texts whole (``cut`` None) or cut to ``cut`` characters."""

    entries: int
    lines: int
    cut: int | None = None


def _layouts(entries: int, lines: int) -> list[_Layout]:
    """From the whole card to the least a card shows, in the order they are tried: older
    timeline entries go first, then long user texts are cut, then the list of items."""
    whole = [_Layout(shown, lines) for shown in range(entries, 0, -1)]
    cut = [_Layout(1, shown, SHORT_TEXT) for shown in range(lines, -1, -1)]
    return whole + cut


# A compensation is open while the consignor may answer its proposal and until staff decide.
_COMPENSATION_DECIDED_BY_STAFF = lifecycle.sources_of("resolve_compensation")
_COMPENSATION_OPEN = lifecycle.sources_of("accept_compensation") + _COMPENSATION_DECIDED_BY_STAFF


def card_text(
    ctx: Ctx,
    view: ClaimView,
    viewer: Actor,
    timeline_limit: int = 8,
    extra: Sequence[str] = (),
    room: int = limits.MESSAGE_TEXT,
) -> str:
    """The card as HTML, in at most ``room`` characters as Telegram counts them: a case
    with a long history (many questions and answers, long notes, many items) would be
    refused whole, so the card drops its oldest timeline entries first (saying how many),
    and only then cuts user texts and the list of items."""
    events = view.timeline[-timeline_limit:]
    layouts = _layouts(len(events), len(view.lines))
    return limits.first_fitting((_draw(ctx, view, viewer, extra, x) for x in layouts), room)


def _draw(ctx: Ctx, view: ClaimView, viewer: Actor, extra: Sequence[str], layout: _Layout) -> str:
    c = view.claim

    def user_text(text: str) -> str:
        return html.escape(limits.clip(text, layout.cut) if layout.cut else text)

    out = [
        ctx.t(
            "card.header",
            number=c.id,
            claim_type=ctx.t(f"claim_type.{c.claim_type}"),
            state=ctx.t(f"state.{c.status}"),
        ),
        ctx.t(
            "card.reason",
            reason=ctx.t(f"reason.{c.reason}"),
            # A consignor is shown what their own lines are worth (the lines they see).
            amount=money(
                view.amount if viewer.role is Role.CONSIGNOR else c.claimed_amount, c.currency
            ),
        ),
        *extra,
    ]
    if c.description:
        out.append(f"<i>{user_text(c.description)}</i>")
    for line in view.lines[: layout.lines]:
        inspected = f" · {ctx.t(f'inspection.{line.inspection}')}" if line.inspection else ""
        out.append(
            f"• {user_text(line.title)} ×{line.quantity} — {money(line.amount, c.currency)}{inspected}"
        )
    if len(view.lines) > layout.lines:
        out.append(ctx.t("card.more_lines", count=len(view.lines) - layout.lines))
    if c.compensation_amount is not None and c.status in _COMPENSATION_OPEN:
        out.append(ctx.t("card.compensation", amount=money(c.compensation_amount, c.currency)))
        # What the consignor asked for instead: staff decide on it, and the consignor sees
        # that it was received (the buyer is not party to it).
        counter = c.counter_offer_amount
        if counter is not None and c.status in _COMPENSATION_DECIDED_BY_STAFF:
            if viewer.is_staff:
                out.append(ctx.t("card.counter_offer", amount=money(counter, c.currency)))
            elif viewer.role is Role.CONSIGNOR:
                out.append(ctx.t("card.counter_offer.yours", amount=money(counter, c.currency)))
    if c.refund_amount and viewer.role is not Role.CONSIGNOR:
        # What is (being) paid back, which a goodwill refund or a compensation makes less
        # than the amount claimed. A consignor sees what their own lines are worth, not
        # the claim's whole refund.
        out.append(ctx.t("card.refund", amount=money(c.refund_amount, c.currency)))
    for shipment in view.shipments:
        out.append(
            ctx.t(
                "card.shipment",
                carrier=html.escape(shipment.carrier),
                tracking=html.escape(shipment.tracking_number),
            )
        )
    deadline = view.next_deadline
    if deadline is not None and c.status not in lifecycle.TERMINAL_STATES:
        shown = dates.when(deadline[1], ctx.lang, ctx.services.config.timezone)
        out.append(ctx.t(f"card.deadline.{deadline[0]}", when=shown))
    out.append(ctx.t("card.timeline"))
    events = view.timeline[len(view.timeline) - layout.entries :] if layout.entries else ()
    if len(view.timeline) > len(events):
        out.append(ctx.t("card.timeline_earlier", count=len(view.timeline) - len(events)))
    for event in events:
        at = dates.when(event.at, ctx.lang, ctx.services.config.timezone, short=True)
        entry = f"{at} {ctx.t(f'trigger.{event.trigger}')} → {ctx.t(f'state.{event.to_status}')}"
        note = note_for(ctx, event, viewer, c.currency)
        if note:
            entry += f" — <i>{user_text(note)}</i>"
        out.append(entry)
    return "\n".join(out)


# The notes written for a party (staff's reason for a rejection, their question and the
# buyer's answer) and who besides staff reads them; every other note (an approval's remark,
# a rule's working) is the team's own.
NOTES_FOR: dict[str, frozenset[Role]] = {
    "reject": frozenset({Role.BUYER, Role.CONSIGNOR}),
    "auto_reject": frozenset({Role.BUYER, Role.CONSIGNOR}),
    "request_info": frozenset({Role.BUYER}),
    "provide_info": frozenset({Role.BUYER}),
}


def note_for(ctx: Ctx, event: AuditEvent, viewer: Actor, currency: str = "CNY") -> str | None:
    """The timeline note this viewer may read: a rule's decision in their words for a
    party (a rule's note is written for staff), the note as written otherwise."""
    if viewer.is_staff:
        return staff_note(ctx, event, currency)
    if viewer.role not in NOTES_FOR.get(event.trigger, frozenset()):
        return None
    if event.rule:
        return rule_reason(ctx.t, ctx.env.policy, event.rule)
    return event.note


def staff_note(ctx: Ctx, event: AuditEvent, currency: str) -> str | None:
    """A note for staff, in their language. The system writes its own notes (a rule's
    working, who filed) in English for the audit row, with amounts in minor units; staff
    read them from the rule's name instead. What a person typed is shown as typed."""
    key = f"rule_note.{event.trigger}.{event.rule}"
    if event.rule and exists(ctx.lang, key):
        policy = ctx.env.policy
        limit = policy.review_limit(currency)
        if limit is None and exists(ctx.lang, f"{key}.no_limit"):
            key = f"{key}.no_limit"  # no limit set for this currency: always a person
        return ctx.t(
            key,
            days=policy.no_reason_window.days,
            limit=Money(limit or 0, currency).format(),
            currency=currency,
            claims=policy.max_claims_per_30_days,
        )
    if event.trigger == "file" and event.note in _SOURCES:
        return ctx.t(f"card.filed_by.{event.note}")
    return event.note


_SOURCES = frozenset(source.value for source in Source)


def rule_reason(t: Callable[..., str], policy: ReviewPolicy, rule: str) -> str:
    """Why a review rule decided as it did, for the buyer and the consignor."""
    return t(f"rule_reason.{rule}", days=policy.no_reason_window.days)


async def buttons(ctx: Ctx, view: ClaimView, viewer: Actor) -> tuple[tuple[Button, ...], ...]:
    c = view.claim
    row = [
        Button(ctx.t(f"trigger.{trigger}"), ClaimAction(c.id, trigger, c.version).pack())
        for trigger in lifecycle.allowed_triggers(c.status, c.claim_type, viewer.role)
        if (trigger, viewer.role) in ACTIONS
        and OFFERED.get((trigger, viewer.role), _always)(view, viewer)
    ]
    extra = [a for (t, role), a in ACTIONS.items() if role is viewer.role and t.startswith("x_")]
    for a in extra:
        label = await _extra_label(ctx, a.trigger, view, viewer)
        if label is not None:
            row.append(Button(ctx.t(label), ClaimAction(c.id, a.trigger, c.version).pack()))
    refresh = Button(ctx.t("action.refresh"), ClaimAction(c.id, VIEW, c.version).pack())
    # The picture of where the claim stands (bot.conversations.status draws it).
    flowchart = Button(ctx.t("action.flowchart"), ClaimFlowchart(c.id).pack())
    rows = [tuple(row[i : i + 2]) for i in range(0, len(row), 2)]
    return (*rows, (refresh, flowchart))


# A step the table allows a role may still not be this viewer's to take (a consignor cannot
# answer for a claim that also covers another consignor's items): such a check hides its
# button. The step's own handler refuses it all the same, should it be pressed anyway.
OFFERED: dict[tuple[str, Role], Callable[[ClaimView, Actor], bool]] = {}


def _always(view: ClaimView, viewer: Actor) -> bool:
    return True


# Lines a role module adds under the card's header for some viewers (e.g. who on staff took
# the case): each gets the context, the claim and the viewer, and returns HTML lines.
CARD_LINES: list[Callable[[Ctx, ClaimView, Actor], Awaitable[list[str]]]] = []


async def extra_lines(ctx: Ctx, view: ClaimView, viewer: Actor) -> list[str]:
    return [line for hook in CARD_LINES for line in await hook(ctx, view, viewer)]


# Extra (non-transition) actions may say whether, and how, they are offered to a viewer:
# the text key of the button's label, or None for no button. A check gets the viewer and the
# context (which chat the card is drawn in), and may read the database (e.g. who on staff
# holds the case: its holder is not offered "Take"). Without a check: always, as
# "action.<trigger>".
ExtraButton = Callable[[Ctx, ClaimView, Actor], Awaitable[str | None]]
EXTRA_BUTTONS: dict[str, ExtraButton] = {}


async def _extra_label(ctx: Ctx, trigger: str, view: ClaimView, viewer: Actor) -> str | None:
    check = EXTRA_BUTTONS.get(trigger)
    return await check(ctx, view, viewer) if check else f"action.{trigger}"


async def card(
    ctx: Ctx, claim_id: int, edit: bool = False, room: int = limits.MESSAGE_TEXT
) -> Screen:
    """The card of a claim, as this user may see it (another's claim: not found), in at most
    ``room`` characters (less when it is sent under another text)."""
    view = await view_for_user(ctx, claim_id)
    viewer = viewer_for(ctx, view)
    assert viewer is not None
    extra = await extra_lines(ctx, view, viewer)
    text = card_text(ctx, view, viewer, extra=extra, room=room)
    return Screen(text, await buttons(ctx, view, viewer), edit=edit)


async def view_for_user(ctx: Ctx, claim_id: int) -> ClaimView:
    """The claim as the first of the user's roles that may see it (else: not found)."""
    for actor in sorted(ctx.actors, key=lambda a: (not a.is_staff, a.role.value)):
        try:
            return await claim_view(ctx.uow, actor, claim_id)
        except NotFound:
            continue  # not visible in this role; maybe in the next
    raise NotFound("claim", claim_id)


@ROUTES.callback(ClaimAction, ANYONE)
async def pressed(ctx: Ctx, data: ClaimAction) -> Outcome:
    view = await view_for_user(ctx, data.claim_id)
    viewer = viewer_for(ctx, view)
    if viewer is None:
        return Outcome([Toast(ctx.t("error.not_for_you"), alert=True)])
    if viewer.role in (Role.BUYER, Role.CONSIGNOR) and not ctx.incoming.is_private:
        # A party's card is drawn only in their private chat (staff work cards in the group).
        return Outcome([Toast(ctx.t("error.private_button"), alert=True)])
    if viewer.is_staff and staff_elsewhere(ctx, STAFF, audience_of(ctx)):
        # Staff's cards are drawn in their private chat and the staff group, nowhere else.
        return Outcome([Toast(ctx.t("error.staff_button_elsewhere"), alert=True)])
    extra = await extra_lines(ctx, view, viewer)
    if data.action == VIEW:
        keyboard = await buttons(ctx, view, viewer)
        return Outcome([Screen(card_text(ctx, view, viewer, extra=extra), keyboard, edit=True)])
    if data.version != view.claim.version:
        keyboard = await buttons(ctx, view, viewer)
        fresh = Screen(card_text(ctx, view, viewer, extra=extra), keyboard, edit=True)
        return Outcome([Toast(ctx.t("error.already_handled"), alert=True), fresh])
    handler = ACTIONS.get((data.action, viewer.role))
    if handler is None:
        return Outcome([Toast(ctx.t("error.not_for_you"), alert=True)])
    return await handler.handler(ctx, viewer, view)
