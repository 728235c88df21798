"""What staff see and may press: the queue, a case, decisions, inspection, refunds, roles.

Staff stay anonymous to buyers and consignors: their names never appear in what those see
(the claim card shows notes only to staff; the audit trail records the role and staff id).
"""

from __future__ import annotations

import html
from typing import Any

from bot.conversations.cards import action, card
from bot.conversations.context import CHANNEL, Ctx
from bot.conversations.model import Outcome, Screen
from bot.conversations.routes import ADMINS, ROUTES, STAFF
from workflow import lifecycle
from workflow.claims import Actor, Inspection, Liability, Role
from workflow.errors import InvalidAmount, InvalidClaim
from workflow.money import Money
from workflow.services import accounts, refunds, returns, review
from workflow.services.queries import ClaimView

STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
NOTE_FLOW = "staff_note"
PAGE = 10


def _staff(ctx: Ctx) -> Actor:
    staff = ctx.staff
    assert staff is not None  # the routes admit staff only
    return staff


def _number(text: str) -> int | None:
    text = text.strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() else None


@ROUTES.command("queue", STAFF)
async def queue(ctx: Ctx, args: str) -> Outcome:
    page = _number(args) or 0
    states = sorted(lifecycle.WAITING_FOR_STAFF)
    claims = await ctx.uow.claims.in_states(states, page * PAGE, PAGE)
    total = await ctx.uow.claims.count_in_states(states)
    if not claims:
        return Outcome([Screen(ctx.t("staff.queue_empty"))])
    now = ctx.env.clock.now()
    lines = [ctx.t("staff.queue_title", total=total)]
    for c in claims:
        hours = int((now - c.updated_at).total_seconds() // 3600)
        lines.append(
            ctx.t(
                "staff.queue_line",
                number=c.id,
                state=ctx.t(f"state.{c.status}"),
                claim_type=ctx.t(f"claim_type.{c.claim_type}"),
                hours=hours,
                amount=Money(c.claimed_amount, c.currency).format(),
            )
        )
    if (page + 1) * PAGE < total:
        lines.append(ctx.t("staff.queue_more", next=page + 1))
    return Outcome([Screen("\n".join(lines))])


@ROUTES.command("case", STAFF)
async def case(ctx: Ctx, args: str) -> Outcome:
    number = _number(args)
    if number is None:
        return Outcome([Screen(ctx.t("staff.usage.case"))])
    return Outcome([await card(ctx, number)])


# ---- decisions on the card ----


@action("approve", *STAFF_ROLES)
async def approve(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await review.approve(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([await card(ctx, view.claim.id, edit=True)])


@action("receive_return", *STAFF_ROLES)
async def receive(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await returns.receive_return(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([await card(ctx, view.claim.id, edit=True)])


async def _ask_note(ctx: Ctx, purpose: str, view: ClaimView) -> Outcome:
    data = {"purpose": purpose, "claim": view.claim.id, "version": view.claim.version}
    await ctx.uow.chat.save_conversation(
        CHANNEL, ctx.incoming.user.id, NOTE_FLOW, purpose, data, ctx.env.clock.now()
    )
    return Outcome([Screen(ctx.t(f"staff.prompt.{purpose}", number=view.claim.id))])


@action("reject", *STAFF_ROLES)
async def reject(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "reject", view)


@action("request_info", *STAFF_ROLES)
async def ask(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "request_info", view)


@action("resolve_compensation", *STAFF_ROLES)
async def resolve(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "resolve_compensation", view)


@action("grant_goodwill", *STAFF_ROLES)
async def goodwill(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    return await _ask_note(ctx, "grant_goodwill", view)


@ROUTES.dialog(NOTE_FLOW)
async def note_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    """The reason, question or amount a staff member was asked for."""
    text = (ctx.incoming.text or "").strip()
    if not text or ctx.incoming.photo or ctx.incoming.document:
        return Outcome([Screen(ctx.t(f"staff.prompt.{step}", number=data["claim"]))])
    actor, claim_id, version = _staff(ctx), int(data["claim"]), int(data["version"])
    if step == "reject":
        await review.reject(ctx.uow, ctx.env, actor, claim_id, version, text)
    elif step == "request_info":
        await review.request_info(ctx.uow, ctx.env, actor, claim_id, version, text)
    else:
        claim = await ctx.uow.claims.get(claim_id)
        if claim is None:
            raise InvalidClaim("no_claim")
        amount = Money.parse(text, claim.currency).amount
        if step == "resolve_compensation":
            await returns.resolve_compensation(ctx.uow, ctx.env, actor, claim_id, version, amount)
        else:
            await review.grant_goodwill(ctx.uow, ctx.env, actor, claim_id, version, amount)
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    return Outcome([Screen(ctx.t("staff.done", number=claim_id)), await card(ctx, claim_id)])


# ---- commands with arguments ----


@ROUTES.command("inspect", STAFF)
async def inspect(ctx: Ctx, args: str) -> Outcome:
    """/inspect N intact | /inspect N damaged AMOUNT LIABILITY (every line the same)."""
    parts = args.split()
    number = _number(parts[0]) if parts else None
    if number is None or len(parts) < 2 or parts[1] not in ("intact", "damaged"):
        return Outcome([Screen(ctx.t("staff.usage.inspect"))])
    claim = await ctx.uow.claims.get(number)
    if claim is None:
        return Outcome([await card(ctx, number)])  # the card says "not found" the usual way
    result = Inspection(parts[1])
    liability, compensation = None, None
    if result is Inspection.DAMAGED:
        if len(parts) != 4 or parts[3] not in {x.value for x in Liability}:
            return Outcome([Screen(ctx.t("staff.usage.inspect"))])
        compensation = Money.parse(parts[2], claim.currency).amount
        liability = Liability(parts[3])
    lines = await ctx.uow.claims.lines(number)
    await returns.inspect_return(
        ctx.uow,
        ctx.env,
        _staff(ctx),
        number,
        None,
        {line.id: result for line in lines},
        liability,
        compensation,
    )
    return Outcome([await card(ctx, number)])


@ROUTES.command("refund", STAFF)
async def refund(ctx: Ctx, args: str) -> Outcome:
    """/refund N AMOUNT — a goodwill partial refund without a return; /refund N retry."""
    parts = args.split()
    number = _number(parts[0]) if parts else None
    if number is None or len(parts) != 2:
        return Outcome([Screen(ctx.t("staff.usage.refund"))])
    if parts[1] == "retry":
        count = await refunds.retry_failed_refunds(ctx.uow, ctx.env, _staff(ctx), number)
        return Outcome([Screen(ctx.t("staff.retried", count=count, number=number))])
    claim = await ctx.uow.claims.get(number)
    if claim is None:
        return Outcome([await card(ctx, number)])
    amount = Money.parse(parts[1], claim.currency).amount
    if amount <= 0:
        raise InvalidAmount(parts[1])
    await review.grant_goodwill(ctx.uow, ctx.env, _staff(ctx), number, None, amount)
    return Outcome([await card(ctx, number)])


@ROUTES.command("find", STAFF)
async def find(ctx: Ctx, args: str) -> Outcome:
    """/find ORDER_REF | BUYER_REF | TRACKING — the claims that match."""
    term = args.strip()
    if not term or len(term) > 64:
        return Outcome([Screen(ctx.t("staff.usage.find"))])
    ids = await ctx.uow.claims.find(term)
    if not ids:
        return Outcome([Screen(ctx.t("staff.found_none", term=html.escape(term)))])
    return Outcome(
        [
            Screen(
                ctx.t(
                    "staff.found", term=html.escape(term), numbers=", ".join(f"#{i}" for i in ids)
                )
            )
        ]
    )


@ROUTES.command("grant", ADMINS)
async def grant(ctx: Ctx, args: str) -> Outcome:
    """/grant TELEGRAM_USER_ID agent|supervisor|admin"""
    parts = args.split()
    roles = {r.value: r for r in STAFF_ROLES}
    if len(parts) != 2 or _number(parts[0]) is None or parts[1] not in roles:
        return Outcome([Screen(ctx.t("staff.usage.grant"))])
    user_id = int(parts[0])
    known = await ctx.uow.chat.user(CHANNEL, user_id)
    name = known.first_name if known else parts[0]
    await accounts.grant_role(
        ctx.uow, ctx.env, _staff(ctx), CHANNEL, user_id, roles[parts[1]], name
    )
    return Outcome([Screen(ctx.t("staff.granted", user=user_id, role=parts[1]))])
