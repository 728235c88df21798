"""What a buyer sees and may press: the claim dialog, their claims, and the card's actions.

The claim dialog is a small table of steps (``STEPS``); its draft (ids and choices, never
objects) lives in the database, so a restart of the bot mid-dialog loses nothing, and
/cancel leaves it at any step.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from bot.conversations.callbacks import ClaimAction, DraftChoice, PageOf
from bot.conversations.cards import action, card, money
from bot.conversations.context import CHANNEL, Ctx
from bot.conversations.model import Button, Keyboard, Outcome, Screen, Toast
from bot.conversations.routes import BUYERS, ROUTES
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
from workflow.errors import InvalidClaim
from workflow.services import filing, returns, review
from workflow.services.queries import ClaimView, OrderChoice, buyer_order, buyer_orders, claim_view

FLOW = "file_claim"
ANSWER_FLOW = "answer_info"
TRACKING_FLOW = "return_tracking"
PAGE = 5
# Telegram's own limits for what a bot may download (getFile): 20 MB; photos sent as photos
# are at most 10 MB. Anything bigger is refused before we keep a reference to it.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
TRACKING_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _buyer(ctx: Ctx) -> Actor:
    buyer = ctx.buyer
    assert buyer is not None and buyer.party_id is not None  # the routes admit buyers only
    return buyer


async def _save(ctx: Ctx, step: str, data: dict[str, Any], flow: str = FLOW) -> None:
    await ctx.uow.chat.save_conversation(
        CHANNEL, ctx.incoming.user.id, flow, step, data, ctx.env.clock.now()
    )


async def _end(ctx: Ctx) -> None:
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)


# ---- starting the dialog: which order ----


@ROUTES.command("new", BUYERS)
async def new_claim(ctx: Ctx, args: str) -> Outcome:
    await _save(ctx, "order", {"page": 0})
    return Outcome([await _orders_screen(ctx, 0)])


async def _orders_screen(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    buyer = _buyer(ctx)
    assert buyer.party_id is not None
    orders, total = await buyer_orders(ctx.uow, buyer.party_id, page * PAGE, PAGE)
    if not orders:
        return Screen(ctx.t("buyer.no_orders"), edit=edit)
    lines = [ctx.t("buyer.pick_order")]
    rows: list[tuple[Button, ...]] = []
    for o in orders:
        items = ", ".join(html.escape(line.title) for line in o.lines)
        why = o.ineligible_reason
        if why is None:
            rows.append(
                (
                    Button(
                        f"{o.order_ref} · {items}"[:60],
                        DraftChoice("order", str(o.order_id)).pack(),
                    ),
                )
            )
        else:
            lines.append(f"• {html.escape(o.order_ref)}: {ctx.t(f'buyer.ineligible.{why}')}")
    nav = []
    if page > 0:
        nav.append(Button("◀", PageOf("orders", page - 1).pack()))
    if (page + 1) * PAGE < total:
        nav.append(Button("▶", PageOf("orders", page + 1).pack()))
    if nav:
        rows.append(tuple(nav))
    return Screen("\n".join(lines), tuple(rows), edit=edit)


@ROUTES.callback(PageOf, BUYERS)
async def page_pressed(ctx: Ctx, data: PageOf) -> Outcome:
    if data.page < 0:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    if data.listing == "orders":
        return Outcome([await _orders_screen(ctx, data.page, edit=True)])
    if data.listing == "claims":
        return Outcome([await _claims_screen(ctx, data.page, edit=True)])
    return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])


# ---- the dialog's steps ----


async def _order(ctx: Ctx, data: dict[str, Any]) -> OrderChoice:
    buyer = _buyer(ctx)
    assert buyer.party_id is not None
    return await buyer_order(ctx.uow, buyer.party_id, int(data["order"]))


def _lines_keyboard(ctx: Ctx, order: OrderChoice, chosen: dict[str, int]) -> Keyboard:
    rows = []
    for line in order.lines:
        if line.claimable <= 0:
            continue
        qty = chosen.get(str(line.line_id), 0)
        mark = f"✓ ×{qty} " if qty else ""
        rows.append(
            (Button(f"{mark}{line.title}"[:60], DraftChoice("line", str(line.line_id)).pack()),)
        )
    rows.append((Button(ctx.t("buyer.next"), DraftChoice("lines_done", "1").pack()),))
    return tuple(rows)


def _choices(ctx: Ctx, step: str, prefix: str, values: list[str]) -> Keyboard:
    return tuple((Button(ctx.t(f"{prefix}.{v}"), DraftChoice(step, v).pack()),) for v in values)


def _types_for(order: OrderChoice) -> list[str]:
    return [t.value for t in ClaimType] if order.delivered else [ClaimType.REFUND_ONLY.value]


def _reasons_for(claim_type: str) -> list[str]:
    return [
        r.value
        for r in Reason
        if claim_type == ClaimType.REFUND_ONLY.value or r is not Reason.NOT_RECEIVED
    ]


async def _ask(ctx: Ctx, step: str, data: dict[str, Any], edit: bool = False) -> Screen:
    """The screen that asks for ``step``."""
    if step == "order":
        return await _orders_screen(ctx, int(data.get("page", 0)), edit)
    order = await _order(ctx, data)
    if step == "lines":
        return Screen(
            ctx.t("buyer.pick_lines", order=html.escape(order.order_ref)),
            _lines_keyboard(ctx, order, data.get("lines", {})),
            edit=edit,
        )
    if step == "type":
        return Screen(
            ctx.t("buyer.pick_type"),
            _choices(ctx, "type", "claim_type", _types_for(order)),
            edit=edit,
        )
    if step == "reason":
        return Screen(
            ctx.t("buyer.pick_reason"),
            _choices(ctx, "reason", "reason", _reasons_for(data["type"])),
            edit=edit,
        )
    if step == "description":
        skip = ((Button(ctx.t("buyer.skip"), DraftChoice("description", "skip").pack()),),)
        return Screen(
            ctx.t("buyer.describe", limit=MAX_DESCRIPTION_CHARS),
            () if data["reason"] == Reason.OTHER else skip,
            edit=edit,
        )
    if step == "photos":
        done = ((Button(ctx.t("buyer.photos_done"), DraftChoice("photos", "done").pack()),),)
        return Screen(
            ctx.t("buyer.photos", limit=MAX_EVIDENCE_ITEMS, count=len(data.get("photos", []))),
            done,
            edit=edit,
        )
    return _summary(ctx, order, data, edit)


def _summary(ctx: Ctx, order: OrderChoice, data: dict[str, Any], edit: bool) -> Screen:
    chosen = data.get("lines", {})
    items = [
        f"• {html.escape(line.title)} ×{chosen[str(line.line_id)]} — {money(line.unit_price * chosen[str(line.line_id)], order.currency)}"
        for line in order.lines
        if str(line.line_id) in chosen
    ]
    text = ctx.t(
        "buyer.summary",
        order=html.escape(order.order_ref),
        items="\n".join(items),
        claim_type=ctx.t(f"claim_type.{data['type']}"),
        reason=ctx.t(f"reason.{data['reason']}"),
        description=html.escape(data.get("description") or "—"),
        photos=len(data.get("photos", [])),
    )
    keyboard = (
        (
            Button(ctx.t("buyer.confirm"), DraftChoice("confirm", "yes").pack()),
            Button(ctx.t("buyer.edit"), DraftChoice("confirm", "edit").pack()),
            Button(ctx.t("buyer.cancel"), DraftChoice("confirm", "cancel").pack()),
        ),
    )
    return Screen(text, keyboard, edit=edit)


@ROUTES.callback(DraftChoice, BUYERS)
async def draft_pressed(ctx: Ctx, choice: DraftChoice) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is None or conversation.flow != FLOW:
        return Outcome([Toast(ctx.t("buyer.dialog_over"), alert=True)])
    data = dict(conversation.data)
    step = conversation.step
    handler = PRESSES.get(choice.step)
    if handler is None or not _press_fits(step, choice.step):
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    return await handler(ctx, data, choice.value)


def _press_fits(step: str, pressed: str) -> bool:
    """A button belongs to the step it was drawn for; older dialog buttons do nothing."""
    return pressed == step or (step == "lines" and pressed in ("line", "lines_done"))


async def _press_order(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    data = {"order": int(value), "lines": {}}
    order = await _order(ctx, data)  # not the buyer's → not found
    if order.ineligible_reason:
        return Outcome([Toast(ctx.t(f"buyer.ineligible.{order.ineligible_reason}"), alert=True)])
    await _save(ctx, "lines", data)
    return Outcome([await _ask(ctx, "lines", data, edit=True)])


async def _press_line(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    order = await _order(ctx, data)
    line = next((x for x in order.lines if str(x.line_id) == value and x.claimable > 0), None)
    if line is None:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    chosen = dict(data.get("lines", {}))
    qty = chosen.get(value, 0) + 1
    if qty > line.claimable:
        chosen.pop(value, None)
    else:
        chosen[value] = qty
    data["lines"] = chosen
    await _save(ctx, "lines", data)
    return Outcome([await _ask(ctx, "lines", data, edit=True)])


async def _press_lines_done(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if not data.get("lines"):
        return Outcome([Toast(ctx.t("buyer.pick_a_line"), alert=True)])
    return await _advance(ctx, data, "type")


async def _press_type(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value not in _types_for(await _order(ctx, data)):
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data["type"] = value
    return await _advance(ctx, data, "reason")


async def _press_reason(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value not in _reasons_for(data["type"]):
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data["reason"] = value
    return await _advance(ctx, data, "description")


async def _press_description(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value != "skip" or data["reason"] == Reason.OTHER:
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    data["description"] = ""
    return await _advance(ctx, data, "photos")


async def _press_photos(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    return await _advance(ctx, data, "confirm")


async def _press_confirm(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value == "cancel":
        await _end(ctx)
        return Outcome([Screen(ctx.t("dialog.cancelled"), edit=True)])
    if value == "edit":
        return await _advance(ctx, data, "type")
    draft = ClaimDraft(
        ClaimType(data["type"]),
        Reason(data["reason"]),
        tuple(LineRequest(int(k), int(v)) for k, v in sorted(data["lines"].items())),
        data.get("description", ""),
        tuple(data.get("photos", [])),
    )
    claim = await filing.file_claim(ctx.uow, ctx.env, _buyer(ctx), draft)
    await _end(ctx)
    filed = Screen(
        ctx.t("buyer.filed", number=claim.id, state=ctx.t(f"state.{claim.status}")), edit=True
    )
    return Outcome([filed, await card(ctx, claim.id)])


async def _advance(ctx: Ctx, data: dict[str, Any], step: str) -> Outcome:
    await _save(ctx, step, data)
    return Outcome([await _ask(ctx, step, data, edit=True)])


PRESSES: dict[str, Callable[[Ctx, dict[str, Any], str], Awaitable[Outcome]]] = {
    "order": _press_order,
    "line": _press_line,
    "lines_done": _press_lines_done,
    "type": _press_type,
    "reason": _press_reason,
    "description": _press_description,
    "photos": _press_photos,
    "confirm": _press_confirm,
}


@ROUTES.dialog(FLOW)
async def dialog_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    """What the buyer types or sends while the dialog waits for ``step``."""
    incoming = ctx.incoming
    if step == "description":
        if incoming.text is None or incoming.photo or incoming.document:
            return Outcome([Screen(ctx.t("buyer.want_text"))])
        text = incoming.text.strip()
        if not text:
            return Outcome([Screen(ctx.t("buyer.want_text"))])
        if len(text) > MAX_DESCRIPTION_CHARS:
            return Outcome(
                [Screen(ctx.t("buyer.too_long", limit=MAX_DESCRIPTION_CHARS, length=len(text)))]
            )
        data["description"] = text
        await _save(ctx, "photos", data)
        return Outcome([await _ask(ctx, "photos", data)])
    if step == "photos":
        reference = evidence_of(ctx)
        if isinstance(reference, Screen):
            return Outcome([reference])
        photos = list(data.get("photos", []))
        if len(photos) >= MAX_EVIDENCE_ITEMS:
            return Outcome([Screen(ctx.t("buyer.photo_limit", limit=MAX_EVIDENCE_ITEMS))])
        photos.append(reference)
        data["photos"] = photos
        await _save(ctx, "photos", data)
        if incoming.media_group_id and len(photos) < MAX_EVIDENCE_ITEMS:
            return Outcome()  # the rest of the album follows; one answer for the album is enough
        return Outcome([await _ask(ctx, "photos", data)])
    # Buttons are expected at the other steps: show them again.
    return Outcome([Screen(ctx.t("buyer.use_buttons")), await _ask(ctx, step, data)])


def evidence_of(ctx: Ctx) -> str | Screen:
    """A photo (or an image sent as a file) to keep as evidence, or the reason it is refused."""
    incoming = ctx.incoming
    if incoming.photo is not None:
        if (incoming.photo.file_size or 0) > MAX_PHOTO_BYTES:
            return Screen(ctx.t("buyer.photo_too_big", limit_mb=MAX_PHOTO_BYTES // 2**20))
        return incoming.photo.file_id
    if incoming.document is not None:
        if not (incoming.document.mime_type or "").startswith("image/"):
            return Screen(ctx.t("buyer.not_an_image"))
        if (incoming.document.file_size or 0) > MAX_PHOTO_BYTES:
            return Screen(ctx.t("buyer.photo_too_big", limit_mb=MAX_PHOTO_BYTES // 2**20))
        return incoming.document.file_id
    return Screen(ctx.t("buyer.want_photo"))


# ---- the buyer's claims ----


@ROUTES.command("claims", BUYERS)
async def my_claims(ctx: Ctx, args: str) -> Outcome:
    return Outcome([await _claims_screen(ctx, 0)])


@ROUTES.command("claim", BUYERS)
async def one_claim(ctx: Ctx, args: str) -> Outcome:
    number = args.strip().lstrip("#")
    if not (number.isascii() and number.isdigit()):
        return Outcome([Screen(ctx.t("buyer.claim_usage"))])
    return Outcome([await card(ctx, int(number))])


async def _claims_screen(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    buyer = _buyer(ctx)
    assert buyer.party_id is not None
    claims = await ctx.uow.claims.for_buyer(buyer.party_id, page * PAGE, PAGE)
    total = await ctx.uow.claims.count_for_buyer(buyer.party_id)
    if not claims:
        return Screen(ctx.t("buyer.no_claims"), edit=edit)
    rows: list[tuple[Button, ...]] = [
        (
            Button(
                f"#{c.id} · {ctx.t(f'claim_type.{c.claim_type}')} · {ctx.t(f'state.{c.status}')}"[
                    :60
                ],
                ClaimAction(c.id, "view", c.version).pack(),
            ),
        )
        for c in claims
    ]
    nav = []
    if page > 0:
        nav.append(Button("◀", PageOf("claims", page - 1).pack()))
    if (page + 1) * PAGE < total:
        nav.append(Button("▶", PageOf("claims", page + 1).pack()))
    if nav:
        rows.append(tuple(nav))
    return Screen(ctx.t("buyer.your_claims", total=total), tuple(rows), edit=edit)


# ---- the card's buttons for a buyer ----


@action("withdraw", Role.BUYER)
async def withdraw(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await review.withdraw(ctx.uow, ctx.env, actor, view.claim.id, view.claim.version)
    return Outcome([Toast(ctx.t("buyer.withdrawn")), await card(ctx, view.claim.id, edit=True)])


@action("provide_info", Role.BUYER)
async def answer(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await _save(ctx, "answer", {"claim": view.claim.id, "version": view.claim.version}, ANSWER_FLOW)
    return Outcome([Screen(ctx.t("buyer.answer_prompt", number=view.claim.id))])


@ROUTES.dialog(ANSWER_FLOW)
async def answer_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    text = (ctx.incoming.text or "").strip()
    evidence: tuple[str, ...] = ()
    if ctx.incoming.photo or ctx.incoming.document:
        reference = evidence_of(ctx)
        if isinstance(reference, Screen):
            return Outcome([reference])
        evidence = (reference,)
    if not text and not evidence:
        return Outcome([Screen(ctx.t("buyer.want_text_or_photo"))])
    if len(text) > MAX_DESCRIPTION_CHARS:
        return Outcome(
            [Screen(ctx.t("buyer.too_long", limit=MAX_DESCRIPTION_CHARS, length=len(text)))]
        )
    claim_id, version = int(data["claim"]), int(data["version"])
    await review.provide_info(ctx.uow, ctx.env, _buyer(ctx), claim_id, version, text, evidence)
    await _end(ctx)
    return Outcome([Screen(ctx.t("buyer.answer_sent", number=claim_id)), await card(ctx, claim_id)])


@action("ship_return", Role.BUYER)
async def shipped_back(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    await _save(
        ctx, "tracking", {"claim": view.claim.id, "version": view.claim.version}, TRACKING_FLOW
    )
    return Outcome([Screen(ctx.t("buyer.tracking_prompt", number=view.claim.id))])


@ROUTES.dialog(TRACKING_FLOW)
async def tracking_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    text = (ctx.incoming.text or "").strip().upper()
    claim_id, version = int(data["claim"]), int(data["version"])
    if not (6 <= len(text) <= 40 and set(text) <= TRACKING_CHARS):
        return Outcome([Screen(ctx.t("buyer.bad_tracking"))])
    view = await claim_view(ctx.uow, _buyer(ctx), claim_id)
    if not any(s.tracking_number == text for s in view.shipments):
        raise InvalidClaim("tracking_mismatch")
    await returns.mark_return_shipped(ctx.uow, ctx.env, _buyer(ctx), claim_id, version)
    await _end(ctx)
    return Outcome(
        [Screen(ctx.t("buyer.return_noted", number=claim_id)), await card(ctx, claim_id)]
    )
