"""What staff see and may press: the queue, a case, decisions, inspection, refunds, roles.

Staff stay anonymous to buyers and consignors: their names never appear in what those see
(the claim card shows notes only to staff; the audit trail records the role and staff id).
Every action on a case goes through :func:`staff_topics.hold` first: a case a colleague
holds is not acted on unknowingly.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

from bot import dates
from bot.conversations import staff_topics  # also registers "Take" and the card line
from bot.conversations.amounts import typed_amount
from bot.conversations.callbacks import Callback, ClaimAction
from bot.conversations.cards import VIEW, ActionHandler, action, card
from bot.conversations.claim_dialog import as_id, other_dialog
from bot.conversations.context import CHANNEL, Ctx
from bot.conversations.model import Button, Outcome, Screen, Toast
from bot.conversations.routes import ADMINS, ROUTES, STAFF
from workflow import lifecycle
from workflow.claims import Actor, Inspection, Liability, Role
from workflow.money import Money
from workflow.services import accounts, refunds, returns, review
from workflow.services.queries import ClaimView, claim_view

STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
NOTE_FLOW = "staff_note"
PAGE = 10
QUEUE_BUTTONS_PER_ROW = 3
# The claims /find lists, newest first; beyond them it says how many older ones match.
FOUND_SHOWN = 20
RESULTS = frozenset(i.value for i in Inspection)
LIABILITIES = frozenset(x.value for x in Liability)


def _staff(ctx: Ctx) -> Actor:
    staff = ctx.staff
    assert staff is not None  # the routes admit staff only
    return staff


# Telegram user ids are below 2**52 (Bot API: they fit a double); a larger number is a typo.
MAX_TELEGRAM_ID = 2**52


def _telegram_id(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 16 and 0 < int(text) < MAX_TELEGRAM_ID:
        return int(text)
    return None


@dataclass(frozen=True)
class QueuePage(Callback):
    """A page of the staff queue."""

    prefix: ClassVar[str] = "sq"
    page: int


def _age(ctx: Ctx, seconds: float) -> str:
    """Time in the queue, coarse: minutes, hours, or days and hours."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return ctx.t("staff.age.minutes", minutes=minutes)
    hours = minutes // 60
    if hours < 48:
        return ctx.t("staff.age.hours", hours=hours)
    return ctx.t("staff.age.days", days=hours // 24, hours=hours % 24)


async def _queue(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    states = sorted(lifecycle.WAITING_FOR_STAFF)
    total = await ctx.uow.claims.count_in_states(states)
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 0), pages - 1)
    claims = await ctx.uow.claims.in_states(states, page * PAGE, PAGE)
    if not claims:
        return Screen(ctx.t("staff.queue_empty"), edit=edit)
    now = ctx.env.clock.now()
    lines = [ctx.t("staff.queue_title", total=total, page=page + 1, pages=pages)]
    for c in claims:
        lines.append(
            ctx.t(
                "staff.queue_line",
                number=c.id,
                state=ctx.t(f"state.{c.status}"),
                claim_type=ctx.t(f"claim_type.{c.claim_type}"),
                age=_age(ctx, (now - c.updated_at).total_seconds()),
                amount=Money(c.claimed_amount, c.currency).format(),
            )
        )
    # One button per case, as a buyer's list of claims has: a tap opens the case's card.
    opens = [
        Button(ctx.t("staff.queue_open", number=c.id), ClaimAction(c.id, VIEW, c.version).pack())
        for c in claims
    ]
    rows = [
        tuple(opens[i : i + QUEUE_BUTTONS_PER_ROW])
        for i in range(0, len(opens), QUEUE_BUTTONS_PER_ROW)
    ]
    nav = []
    if page > 0:
        nav.append(Button(ctx.t("staff.queue_prev"), QueuePage(page - 1).pack()))
    if page + 1 < pages:
        nav.append(Button(ctx.t("staff.queue_next"), QueuePage(page + 1).pack()))
    if nav:
        rows.append(tuple(nav))
    return Screen("\n".join(lines), tuple(rows), edit=edit)


@ROUTES.command("queue", STAFF)
async def queue(ctx: Ctx, args: str) -> Outcome:
    """Cases waiting for a person, oldest first (time in the queue shown), paged."""
    page = as_id(args) if args.strip() else 1
    if page is None or page < 1:
        return ctx.usage("staff.usage.queue")
    return Outcome([await _queue(ctx, page - 1)])


@ROUTES.callback(QueuePage, STAFF)
async def queue_page(ctx: Ctx, data: QueuePage) -> Outcome:
    return Outcome([await _queue(ctx, data.page, edit=True)])


@ROUTES.command("case", STAFF)
async def case(ctx: Ctx, args: str) -> Outcome:
    number = as_id(args)
    if number is None:
        return ctx.usage("staff.usage.case")
    return Outcome([await card(ctx, number)])


# ---- decisions on the card ----


def held(handler: ActionHandler) -> ActionHandler:
    """A card action only for the staff member who holds the case (or takes it by acting)."""

    async def guarded(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
        refused = await staff_topics.hold(ctx, actor, view)
        if refused is not None:
            return refused
        outcome = await handler(ctx, actor, view)
        outcome.outputs += await staff_topics.news(ctx, view.claim.id)
        return outcome

    guarded.__doc__ = handler.__doc__
    return guarded


@action("approve", *STAFF_ROLES)
@held
async def approve(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await review.approve(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([await card(ctx, view.claim.id, edit=True)])


@action("receive_return", *STAFF_ROLES)
@held
async def receive(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await returns.receive_return(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([await card(ctx, view.claim.id, edit=True)])


async def _ask_note(ctx: Ctx, purpose: str, view: ClaimView) -> Outcome:
    data = {"purpose": purpose, "claim": view.claim.id, "version": view.claim.version}
    data |= ctx.asked_here()  # answered in this chat and topic only
    await ctx.uow.chat.save_conversation(
        CHANNEL, ctx.incoming.user.id, NOTE_FLOW, purpose, data, ctx.env.clock.now()
    )
    return Outcome([_prompt(ctx, purpose, view.claim.id)])


def _prompt(ctx: Ctx, purpose: str, claim_id: int) -> Screen:
    return Screen(ctx.t(f"staff.prompt.{purpose}", number=claim_id, limit=review.MAX_NOTE_CHARS))


def _note_cancelled(ctx: Ctx, data: dict[str, Any]) -> str:
    """/cancel at a prompt: the case is as it was (not "nothing was filed": staff file nothing)."""
    return ctx.t("staff.prompt.cancelled", number=int(data["claim"]))


def _note_waiting(ctx: Ctx, data: dict[str, Any]) -> str:
    """A prompt pressed while this one waits: what it waits for, and where to answer it."""
    return ctx.t("staff.prompt.busy", number=int(data["claim"]))


def prompting(handler: ActionHandler) -> ActionHandler:
    """A card action that asks for a text: refused while another question waits for this
    staff member (say, a reason asked in another case's topic), which it would otherwise
    drop without a word; checked before the case is held, so the refused press takes
    nothing."""

    async def guarded(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
        if busy := await other_dialog(ctx, NOTE_FLOW, view.claim.id):
            return Outcome([Toast(busy, alert=True)])
        return await handler(ctx, actor, view)

    guarded.__doc__ = handler.__doc__
    return guarded


@action("reject", *STAFF_ROLES)
@prompting
@held
async def reject(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "reject", view)


@action("request_info", *STAFF_ROLES)
@prompting
@held
async def ask(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "request_info", view)


@action("resolve_compensation", *STAFF_ROLES)
@prompting
@held
async def resolve(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "resolve_compensation", view)


@action("grant_goodwill", *STAFF_ROLES)
@prompting
@held
async def goodwill(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "grant_goodwill", view)


AMOUNT_STEPS = frozenset({"resolve_compensation", "grant_goodwill"})


def _typed_for(ctx: Ctx, step: str, view: ClaimView, text: str) -> Money | Screen:
    """The amount typed at an amount prompt, within what the step allows: a compensation
    from nothing up to what the damaged items are worth, a goodwill refund from more than
    nothing up to the amount claimed."""
    currency = view.claim.currency
    if step == "resolve_compensation":
        return typed_amount(ctx, text, currency, returns.compensation_cap(view.lines), least=0)
    return typed_amount(ctx, text, currency, view.claim.claimed_amount)


@ROUTES.dialog(NOTE_FLOW, cancelled=_note_cancelled, busy=_note_waiting, party="staff")
async def note_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    """The reason, question or amount a staff member was asked for."""
    text = (ctx.incoming.text or "").strip()
    if not text or ctx.incoming.photo or ctx.incoming.document:
        return Outcome([_prompt(ctx, step, int(data["claim"]))])
    actor, claim_id, version = _staff(ctx), int(data["claim"]), int(data["version"])
    view = await claim_view(ctx.uow, actor, claim_id)
    amount: Money | None = None
    if step in AMOUNT_STEPS:  # a bad amount is answered before anything is held or done
        typed = _typed_for(ctx, step, view, text)
        if isinstance(typed, Screen):
            return Outcome([typed])
        amount = typed
    # A colleague may have taken the case over since the question was asked.
    refused = await staff_topics.hold(ctx, actor, view)
    if refused is not None:
        await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
        return refused
    if step == "reject":
        await review.reject(ctx.uow, ctx.env, actor, claim_id, version, text)
    elif step == "request_info":
        await review.request_info(ctx.uow, ctx.env, actor, claim_id, version, text)
    elif step == "resolve_compensation" and amount is not None:
        await returns.resolve_compensation(
            ctx.uow, ctx.env, actor, claim_id, version, amount.amount
        )
    elif amount is not None:
        await review.grant_goodwill(ctx.uow, ctx.env, actor, claim_id, version, amount.amount)
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    return Outcome([Screen(ctx.t("staff.done", number=claim_id)), await card(ctx, claim_id)])


# ---- commands with arguments ----


@ROUTES.command("inspect", STAFF)
async def inspect(ctx: Ctx, args: str) -> Outcome:
    """/inspect N intact | /inspect N damaged AMOUNT LIABILITY — every line the same; or
    one word per line in the card's order: /inspect N intact damaged AMOUNT LIABILITY."""
    parts = args.split()
    number = as_id(parts[0]) if parts else None
    words = [p for p in parts[1:] if p in RESULTS]
    if number is None or not words or parts[1 : 1 + len(words)] != words:
        return ctx.usage("staff.usage.inspect")
    rest = parts[1 + len(words) :]
    view = await claim_view(ctx.uow, _staff(ctx), number)  # a missing claim: "not found"
    if len(words) == 1:
        words = words * len(view.lines)
    if len(words) != len(view.lines):
        return Outcome([Screen(ctx.t("staff.inspect_lines", count=len(view.lines)))])
    results = {line.claim_line_id: Inspection(w) for line, w in zip(view.lines, words, strict=True)}
    liability, compensation = None, None
    if Inspection.DAMAGED in results.values():
        if len(rest) != 2 or rest[1] not in LIABILITIES:
            return ctx.usage("staff.usage.inspect")
        damaged = [line for line in view.lines if results[line.claim_line_id] is Inspection.DAMAGED]
        typed = typed_amount(
            ctx, rest[0], view.claim.currency, sum(line.amount for line in damaged), least=0
        )
        if isinstance(typed, Screen):
            return Outcome([typed])
        compensation = typed.amount
        liability = Liability(rest[1])
    elif rest:
        return ctx.usage("staff.usage.inspect")
    refused = await staff_topics.hold(ctx, _staff(ctx), view)
    if refused is not None:
        return refused
    await returns.inspect_return(
        ctx.uow, ctx.env, _staff(ctx), number, None, results, liability, compensation
    )
    return Outcome([await card(ctx, number)])


@ROUTES.command("refund", STAFF)
async def refund(ctx: Ctx, args: str) -> Outcome:
    """/refund N AMOUNT — a goodwill partial refund without a return; /refund N retry."""
    parts = args.split()
    number = as_id(parts[0]) if parts else None
    if number is None or len(parts) != 2:
        return ctx.usage("staff.usage.refund")
    view = await claim_view(ctx.uow, _staff(ctx), number)  # a missing claim: "not found"
    amount: Money | None = None
    if parts[1] == "retry" and not await refunds.failed_refunds(ctx.uow, number):
        # nothing to send again: nothing done, so the case is not taken by the way either
        return Outcome([Screen(ctx.t("staff.retried.none", number=number))])
    if parts[1] != "retry":  # a bad amount is answered before the case is held
        typed = typed_amount(ctx, parts[1], view.claim.currency, view.claim.claimed_amount)
        if isinstance(typed, Screen):
            return Outcome([typed])
        amount = typed
    refused = await staff_topics.hold(ctx, _staff(ctx), view)
    if refused is not None:
        return refused
    if amount is None:
        count = await refunds.retry_failed_refunds(ctx.uow, ctx.env, _staff(ctx), number)
        return Outcome([Screen(ctx.t("staff.retried", count=count, number=number))])
    await review.grant_goodwill(ctx.uow, ctx.env, _staff(ctx), number, None, amount.amount)
    return Outcome([await card(ctx, number)])


@ROUTES.command("find", STAFF)
async def find(ctx: Ctx, args: str) -> Outcome:
    """/find ORDER_REF | BUYER_REF | TRACKING — the claims that match."""
    term = args.strip()
    if not term or len(term) > 64:
        return ctx.usage("staff.usage.find")
    ids = await ctx.uow.claims.find(term)  # newest first
    numbers = ", ".join(f"#{i}" for i in ids[:FOUND_SHOWN])
    if not ids:
        found = ctx.t("staff.found_none", term=html.escape(term))
    elif len(ids) > FOUND_SHOWN:
        more = len(ids) - FOUND_SHOWN
        found = ctx.t("staff.found_more", term=html.escape(term), numbers=numbers, more=more)
    else:
        found = ctx.t("staff.found", term=html.escape(term), numbers=numbers)
    # What happened to the order itself (the overdue sweep flagging it), claims or none.
    trail = [
        ctx.t(
            f"staff.order_event.{event.kind.value}",
            order_ref=html.escape(term),
            at=dates.when(event.at, ctx.lang, ctx.services.config.timezone),
            outcome=ctx.t(f"staff.overdue_outcome.{event.outcome}"),
        )
        for event in await ctx.uow.orders.events_by_ref(term)
    ]
    return Outcome([Screen("\n".join([found, *trail]))])


NO_ROLE = "none"  # /grant USER none: no longer staff


@ROUTES.command("grant", ADMINS)
async def grant(ctx: Ctx, args: str) -> Outcome:
    """/grant TELEGRAM_USER_ID agent|supervisor|admin, or ``none`` to take the role away."""
    parts = args.split()
    roles = {r.value: r for r in STAFF_ROLES}
    user_id = _telegram_id(parts[0]) if len(parts) == 2 else None
    if user_id is None or (parts[1] not in roles and parts[1] != NO_ROLE):
        return ctx.usage("staff.usage.grant")
    known = await ctx.uow.chat.user(CHANNEL, user_id)
    if parts[1] == NO_ROLE:
        if not await accounts.revoke_role(ctx.uow, ctx.env, _staff(ctx), CHANNEL, user_id):
            return Outcome([Screen(ctx.t("staff.not_staff", user=user_id))])
        # a question they were asked as staff waits for nobody now
        waiting = await ctx.uow.chat.conversation(CHANNEL, user_id)
        if waiting is not None and ROUTES.dialog_party.get(waiting.flow) == "staff":
            await ctx.uow.chat.end_conversation(CHANNEL, user_id)
        said = ctx.t("staff.revoked", user=user_id)
    else:
        name = known.first_name if known else parts[0]
        await accounts.grant_role(
            ctx.uow, ctx.env, _staff(ctx), CHANNEL, user_id, roles[parts[1]], name
        )
        said = ctx.t("staff.granted", user=user_id, role=parts[1])
    outcome = Outcome([Screen(said)])
    if known is not None:  # Telegram knows no chat with a user who never wrote to the bot
        from bot.commands_menu import chat_menu  # the menu module imports the routes

        outcome.outputs.append(await chat_menu(ctx, user_id))
    return outcome
