"""The buyer's claim dialog: order → lines and quantities (paged) → type → reason → description →
photos → summary (Confirm / Edit / Cancel) → the claim is filed.

The dialog is a small table of steps (``PRESSES`` for the buttons, :func:`dialog_message` for
what is typed or sent); its draft (ids and choices, never objects) lives in the database, so a
restart of the bot mid-dialog loses nothing, and /cancel leaves it at any step. Every button
belongs to the step it was drawn for: an older one is answered, never acted on.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from bot import limits
from bot.conversations import evidence
from bot.conversations.callbacks import Callback, DraftChoice
from bot.conversations.cards import card, money
from bot.conversations.context import CHANNEL, Ctx, waits_for_user
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
)
from workflow.rules import no_reason_return_open
from workflow.services import filing
from workflow.services.queries import (
    LineChoice,
    OrderChoice,
    buyer_order,
    buyer_orders,
    claim_view,
)

FLOW = "file_claim"
PAGE = 5
# Items of an order on one page of the lines step. The Bot API spec states no limit on an
# inline keyboard (bot/limits.py has none to name), but Telegram refuses a message whose
# keyboard is too big ("reply markup is too long": about a hundred buttons, a limit it does
# not document), and one button per item would reach that on a large order. Eight items, ◀ ▶ and Next fit a phone's screen without
# scrolling; their labels (LABEL_CHARS each) come to under 500 characters, and the step's
# text stays a few lines whatever the order's size (the chosen items are counted, not
# listed), so a page is far under both the keyboard's size and the 4096-character limit.
LINES_PAGE = 8
# Bot API: a photo is at most 10 MB; a bot may download files of up to 20 MB (getFile). We keep
# evidence the staff can open, so pictures above the photo limit are refused.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# Ids in callback data and commands fit the database's integer columns.
MAX_ID_DIGITS = 9
LABEL_CHARS = 60
# Item titles in the summary when even button-long ones make it too long to send.
SHORT_TITLE_CHARS = 20


@dataclass(frozen=True)
class BuyerPage(Callback):
    """Paging through the buyer's orders ("o"), claims ("c") or the items of the order a
    claim is being filed on ("l")."""

    prefix: ClassVar[str] = "bp"
    listing: str
    page: int


def as_id(text: str) -> int | None:
    """A positive id from typed text or callback data; None for anything else."""
    text = text.strip().lstrip("#")
    if text.isascii() and text.isdigit() and 0 < len(text) <= MAX_ID_DIGITS and int(text) > 0:
        return int(text)
    return None


def buyer_of(ctx: Ctx) -> Actor:
    buyer = ctx.buyer
    assert buyer is not None and buyer.party_id is not None  # the routes admit buyers only
    return buyer


async def save(ctx: Ctx, flow: str, step: str, data: dict[str, Any]) -> None:
    await ctx.uow.chat.save_conversation(
        CHANNEL, ctx.incoming.user.id, flow, step, data, ctx.env.clock.now()
    )


async def end(ctx: Ctx) -> None:
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)


async def other_dialog(ctx: Ctx, flow: str, claim: int | None = None) -> str | None:
    """What another open dialog waits for, if one is: a user has one dialog at a time, and
    starting a new one must not drop the one they have not finished (a half-filed claim, an
    answer for staff) without a word. None when nothing else is open (the same dialog about
    the same claim is simply asked again)."""
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is None or (conversation.flow, conversation.data.get("claim")) == (flow, claim):
        return None
    if await _waits_for_nobody(ctx, conversation.flow, conversation.data):
        await end(ctx)
        return None
    busy = ROUTES.busy_texts.get(conversation.flow)
    return busy(ctx, dict(conversation.data)) if busy else ctx.t("dialog.busy")


# A dialog that knows by itself when it is over (a rating, once the claim was rated from the
# buyer's other chat): its flow → whether the dialog, with this data, waits for nobody now.
OVER: dict[str, Callable[[Ctx, dict[str, Any]], Awaitable[bool]]] = {}


async def _waits_for_nobody(ctx: Ctx, flow: str, data: dict[str, Any]) -> bool:
    """A dialog drawn for a claim as it stood (an answer for staff, a waybill number: their
    draft holds the claim's version) is dead once the claim has moved on — staff decided
    without the answer, the return window closed — and must not hold up a new one; nor must
    one that has had its answer (an album's other pictures may still be on their way), nor
    one its flow finds over (:data:`OVER`)."""
    if not waits_for_user(data):  # it has had its answer already
        return True
    if (over := OVER.get(flow)) is not None and await over(ctx, data):
        return True
    claim_id, version = data.get("claim"), data.get("version")
    if claim_id is None or version is None:
        return False
    claim = await ctx.uow.claims.get(int(claim_id))
    return claim is None or claim.version != int(version)


def pager(listing: str, page: int, total: int, per_page: int = PAGE) -> tuple[Button, ...]:
    """◀ ▶ for page ``page`` (from 0) of ``total`` things, ``per_page`` on a page."""
    nav = []
    if page > 0:
        nav.append(Button("◀", BuyerPage(listing, page - 1).pack()))
    if (page + 1) * per_page < total:
        nav.append(Button("▶", BuyerPage(listing, page + 1).pack()))
    return tuple(nav)


# ---- starting the dialog: which order ----


@ROUTES.command("new", BUYERS)
async def new_claim(ctx: Ctx, args: str) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is not None and conversation.flow == FLOW:  # the draft is kept, not reset
        where = await _ask(ctx, conversation.step, dict(conversation.data))
        return Outcome([Screen(ctx.t("buyer.still_filing")), where])
    if busy := await other_dialog(ctx, FLOW):
        return Outcome([Screen(busy)])
    await save(ctx, FLOW, "order", {"page": 0})
    return Outcome([await _orders_screen(ctx, 0)])


async def _orders_screen(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    buyer = buyer_of(ctx)
    assert buyer.party_id is not None
    orders, total = await buyer_orders(ctx.uow, buyer.party_id, page * PAGE, PAGE)
    if not orders:
        return Screen(ctx.t("buyer.no_orders" if page == 0 else "buyer.page_empty"), edit=edit)
    lines = [ctx.t("buyer.pick_order")]
    rows: list[tuple[Button, ...]] = []
    for o in orders:
        why = o.ineligible_reason(ctx.env.clock.now(), ctx.env.policy)
        if why is None:
            items = ", ".join(line.title for line in o.lines)  # a label is plain text
            label = f"{o.order_ref} · {items}"[:LABEL_CHARS]
            rows.append((Button(label, DraftChoice("order", str(o.order_id)).pack()),))
        else:
            lines.append(f"• {html.escape(o.order_ref)}: {_ineligible(ctx, why)}")
    if nav := pager("o", page, total):
        rows.append(nav)
    return Screen("\n".join(lines), tuple(rows), edit=edit)


async def orders_page(ctx: Ctx, page: int) -> Outcome:
    """Another page of orders, only while the dialog is choosing one."""
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is None or conversation.flow != FLOW:
        return Outcome([Toast(ctx.t("buyer.dialog_over"), alert=True)])
    if conversation.step != "order":  # an older message's: the dialog has gone on
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    await save(ctx, FLOW, "order", {"page": page})
    return Outcome([await _orders_screen(ctx, page, edit=True)])


# ---- the dialog's steps ----


def _ineligible(ctx: Ctx, why: str) -> str:
    return ctx.t(f"buyer.ineligible.{why}", days=ctx.env.policy.claim_window.days)


async def _order(ctx: Ctx, data: dict[str, Any]) -> OrderChoice:
    """The dialog's order with its lines, read once per update (a press reads it to check
    the choice, then again to draw the next question)."""
    buyer = buyer_of(ctx)
    assert buyer.party_id is not None
    key = ("order", buyer.party_id, int(data["order"]))
    cached = ctx.memo.get(key)
    if isinstance(cached, OrderChoice):
        return cached
    order = await buyer_order(ctx.uow, buyer.party_id, int(data["order"]))
    ctx.memo[key] = order
    return order


def _claimable(order: OrderChoice) -> list[LineChoice]:
    return [line for line in order.lines if line.claimable > 0]


def _chosen(order: OrderChoice, data: dict[str, Any]) -> dict[str, int]:
    """The draft's choices that can still be claimed, each at most as many as can: a claim
    filed on the order meanwhile (the overdue sweep's, or one from the buyer's other chat)
    may have taken items the draft chose."""
    most = {str(line.line_id): line.claimable for line in _claimable(order)}
    return {k: min(int(v), most[k]) for k, v in data.get("lines", {}).items() if k in most}


async def _claimed_meanwhile(ctx: Ctx, order: OrderChoice, data: dict[str, Any]) -> Outcome | None:
    """None while the draft's choices can all be claimed. Else the buyer is taken back to
    the items, told why (never a claim refused at Confirm, again and again); an order with
    nothing left to claim ends the dialog."""
    chosen = _chosen(order, data)
    if chosen == data.get("lines", {}):
        return None
    why = order.ineligible_reason(ctx.env.clock.now(), ctx.env.policy)
    if why is not None:
        await end(ctx)
        said = ctx.t(
            "buyer.claimed_meanwhile.none",
            order=html.escape(order.order_ref),
            why=_ineligible(ctx, why),
        )
        return Outcome([Screen(said, edit=True)])
    data["lines"] = chosen
    toast = Toast(ctx.t("buyer.claimed_meanwhile"), alert=True)
    return Outcome([toast, *(await _advance(ctx, data, "lines")).outputs])


def _line_pages(order: OrderChoice) -> int:
    return max(1, -(-len(_claimable(order)) // LINES_PAGE))


def _lines_page(order: OrderChoice, data: dict[str, Any]) -> int:
    """The page of items the draft is on (the last one, if items were claimed meanwhile)."""
    return min(int(data.get("lines_page", 0)), _line_pages(order) - 1)


def _lines_keyboard(ctx: Ctx, order: OrderChoice, chosen: dict[str, int], page: int) -> Keyboard:
    """One page of the order's items (what was chosen on other pages is kept in the draft),
    ◀ ▶ between pages, and Next."""
    claimable = _claimable(order)
    rows: list[tuple[Button, ...]] = []
    for line in claimable[page * LINES_PAGE : (page + 1) * LINES_PAGE]:
        qty = chosen.get(str(line.line_id), 0)
        mark = f"✓ ×{qty} " if qty else ""
        label = f"{mark}{line.title}"[:LABEL_CHARS]
        rows.append((Button(label, DraftChoice("line", str(line.line_id)).pack()),))
    if nav := pager("l", page, len(claimable), LINES_PAGE):
        rows.append(nav)
    rows.append((Button(ctx.t("buyer.next"), DraftChoice("lines_done", "1").pack()),))
    return tuple(rows)


async def lines_page(ctx: Ctx, page: int) -> Outcome:
    """Another page of the order's items, only while the dialog is choosing them; a page
    the order does not have (a forged button) is refused and changes nothing."""
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is None or conversation.flow != FLOW:
        return Outcome([Toast(ctx.t("buyer.dialog_over"), alert=True)])
    if conversation.step != "lines":
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    data = dict(conversation.data)
    pages = _line_pages(await _order(ctx, data))
    if not 0 <= page < pages:
        return Outcome([Toast(ctx.t("buyer.no_such_page", pages=pages), alert=True)])
    data["lines_page"] = page
    return await _advance(ctx, data, "lines")


def _choices(ctx: Ctx, step: str, prefix: str, values: list[str]) -> Keyboard:
    return tuple((Button(ctx.t(f"{prefix}.{v}"), DraftChoice(step, v).pack()),) for v in values)


def _types_for(order: OrderChoice) -> list[str]:
    """Returns and exchanges need the parcel delivered; a refund alone does not."""
    return [t.value for t in ClaimType] if order.delivered else [ClaimType.REFUND_ONLY.value]


def _reasons_for(ctx: Ctx, claim_type: str, order: OrderChoice) -> list[str]:
    """ "Not received" only asks for money back; a no-reason return sends the item back, and
    only while its window after delivery is open (past it, review would only reject it)."""
    refund_only = claim_type == ClaimType.REFUND_ONLY.value
    no_reason = not refund_only and no_reason_return_open(
        order.delivered_at, ctx.env.clock.now(), ctx.env.policy
    )
    return [
        r.value
        for r in Reason
        if (r is not Reason.NOT_RECEIVED or refund_only)
        and (r is not Reason.NO_REASON_7_DAYS or no_reason)
    ]


async def _ask(ctx: Ctx, step: str, data: dict[str, Any], edit: bool = False) -> Screen:
    """The screen that asks for ``step``."""
    if step == "order":
        return await _orders_screen(ctx, int(data.get("page", 0)), edit)
    order = await _order(ctx, data)
    if step == "lines":
        chosen, page, pages = _chosen(order, data), _lines_page(order, data), _line_pages(order)
        text = ctx.t("buyer.pick_lines", order=html.escape(order.order_ref))
        if pages > 1:
            text += "\n" + ctx.t("buyer.lines_page", page=page + 1, pages=pages, chosen=len(chosen))
        return Screen(text, _lines_keyboard(ctx, order, chosen, page), edit=edit)
    if step == "type":
        keyboard = _choices(ctx, "type", "claim_type", _types_for(order))
        return Screen(ctx.t("buyer.pick_type"), keyboard, edit=edit)
    if step == "reason":
        keyboard = _choices(ctx, "reason", "reason", _reasons_for(ctx, data["type"], order))
        return Screen(ctx.t("buyer.pick_reason"), keyboard, edit=edit)
    if step == "description":
        skip = ((Button(ctx.t("buyer.skip"), DraftChoice("description", "skip").pack()),),)
        required = data["reason"] == Reason.OTHER
        return Screen(
            ctx.t("buyer.describe", limit=MAX_DESCRIPTION_CHARS),
            () if required else skip,
            edit=edit,
        )
    if step == "photos":
        done = ((Button(ctx.t("buyer.photos_done"), DraftChoice("photos", "done").pack()),),)
        count = len(data.get("photos", []))
        return Screen(ctx.t("buyer.photos", limit=MAX_EVIDENCE_ITEMS, count=count), done, edit=edit)
    return _summary(ctx, order, data, edit)


def _summary(ctx: Ctx, order: OrderChoice, data: dict[str, Any], edit: bool) -> Screen:
    chosen = data.get("lines", {})
    picked = [line for line in order.lines if str(line.line_id) in chosen]

    def draft(cut: int | None) -> str:
        """The summary with item titles whole (``cut`` None) or cut to ``cut`` characters."""
        items = [
            f"• {html.escape(limits.clip(line.title, cut) if cut else line.title)}"
            f" ×{chosen[str(line.line_id)]}"
            f" — {money(line.unit_price * chosen[str(line.line_id)], order.currency)}"
            for line in picked
        ]
        return ctx.t(
            "buyer.summary",
            order=html.escape(order.order_ref),
            items="\n".join(items),
            claim_type=ctx.t(f"claim_type.{data['type']}"),
            reason=ctx.t(f"reason.{data['reason']}"),
            description=html.escape(data.get("description") or "—"),
            photos=len(data.get("photos", [])),
        )

    # Many items with long titles would make the summary too long to send: titles are then
    # cut as short as on the buttons they were picked with, then shorter.
    text = limits.first_fitting(draft(cut) for cut in (None, LABEL_CHARS, SHORT_TITLE_CHARS))
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
    handler = PRESSES.get(choice.step)
    if handler is None or not _press_fits(conversation.step, choice.step):
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    return await handler(ctx, dict(conversation.data), choice.value)


def _press_fits(step: str, pressed: str) -> bool:
    """A button belongs to the step it was drawn for; older dialog buttons do nothing."""
    return pressed == step or (step == "lines" and pressed in ("line", "lines_done"))


async def _press_order(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    order_id = as_id(value)
    if order_id is None:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data = {"order": order_id, "lines": {}}
    order = await _order(ctx, data)  # not the buyer's → not found
    why = order.ineligible_reason(ctx.env.clock.now(), ctx.env.policy)
    if why is not None:
        return Outcome([Toast(_ineligible(ctx, why), alert=True)])
    return await _advance(ctx, data, "lines")


async def _press_line(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    order = await _order(ctx, data)
    claimable = _claimable(order)
    line = next((x for x in claimable if str(x.line_id) == value), None)
    if line is None:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    # The message is redrawn at the page of the item pressed (an older message of the step,
    # e.g. one sent before /new showed it again, may show another page than the draft).
    page = claimable.index(line) // LINES_PAGE
    if page != _lines_page(order, data):
        data["lines_page"] = page
    chosen = _chosen(order, data)
    qty = chosen.get(value, 0) + 1
    if qty > line.claimable:  # one tap past the most that can be claimed unselects the line
        chosen.pop(value, None)
    else:
        chosen[value] = qty
    data["lines"] = chosen
    return await _advance(ctx, data, "lines")


async def _press_lines_done(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if meanwhile := await _claimed_meanwhile(ctx, await _order(ctx, data), data):
        return meanwhile
    if not data.get("lines"):
        return Outcome([Toast(ctx.t("buyer.pick_a_line"), alert=True)])
    return await _advance(ctx, data, "type")


async def _press_type(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value not in _types_for(await _order(ctx, data)):
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data["type"] = value
    return await _advance(ctx, data, "reason")


async def _press_reason(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value not in _reasons_for(ctx, data["type"], await _order(ctx, data)):
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data["reason"] = value
    return await _advance(ctx, data, "description")


async def _press_description(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value != "skip" or data["reason"] == Reason.OTHER:
        return Outcome([Toast(ctx.t("buyer.not_now"), alert=True)])
    data["description"] = ""
    return await _advance(ctx, data, "photos")


async def _press_photos(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value != "done":
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    data.pop("album", None)
    return await _advance(ctx, data, "confirm")


async def _press_confirm(ctx: Ctx, data: dict[str, Any], value: str) -> Outcome:
    if value == "cancel":
        await end(ctx)
        return Outcome([Screen(ctx.t("dialog.cancelled"), edit=True)])
    if value == "edit":  # back to the items; the rest is asked again, photos are kept
        return await _advance(ctx, data, "lines")
    if value != "yes":
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    if meanwhile := await _claimed_meanwhile(ctx, await _order(ctx, data), data):
        return meanwhile
    draft = ClaimDraft(
        ClaimType(data["type"]),
        Reason(data["reason"]),
        tuple(LineRequest(int(k), int(v)) for k, v in sorted(data["lines"].items())),
        data.get("description", ""),
        tuple(data.get("photos", [])),
    )
    # Items of several consignors make one claim per consignor (a claim concerns one
    # consignor's items): the buyer is told every number, and what each one covers.
    claims = await filing.file_claims(ctx.uow, ctx.env, buyer_of(ctx), draft)
    await end(ctx)
    if len(claims) == 1:
        [claim] = claims
        state = ctx.t(f"state.{claim.status}")
        filed = Screen(ctx.t("buyer.filed", number=claim.id, state=state), edit=True)
        return Outcome([filed, await card(ctx, claim.id)])
    views = [await claim_view(ctx.uow, buyer_of(ctx), claim.id) for claim in claims]

    def filed_text(cut: int | None) -> str:
        """The claims filed, with item titles whole (``cut`` None) or cut (see _summary)."""
        parts = [ctx.t("buyer.filed_several", count=len(claims))]
        for view in views:
            items = ", ".join(
                f"{html.escape(limits.clip(line.title, cut) if cut else line.title)}"
                f" ×{line.quantity}"
                for line in view.lines
            )
            parts.append(ctx.t("buyer.filed_part", number=view.claim.id, items=items))
        return "\n".join(parts)

    text = limits.first_fitting(filed_text(cut) for cut in (None, LABEL_CHARS, SHORT_TITLE_CHARS))
    filed = Screen(text, edit=True)
    return Outcome([filed, *[await card(ctx, claim.id) for claim in claims]])


async def _advance(ctx: Ctx, data: dict[str, Any], step: str) -> Outcome:
    await save(ctx, FLOW, step, data)
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


# Dialog-data key: the album a dialog last refused (its other pictures get no reply again).
STRAY_ALBUM = "stray_album"


async def first_of_album(ctx: Ctx, flow: str, step: str, data: dict[str, Any]) -> bool:
    """Whether a message the dialog cannot take is to be answered: Telegram delivers an album
    as one update per picture, and the buyer gets one reply per album, not one per picture."""
    album = ctx.incoming.media_group_id
    if album is None:
        return True
    if data.get(STRAY_ALBUM) == album:
        return False
    await save(ctx, flow, step, {**data, STRAY_ALBUM: album})
    return True


def too_long(ctx: Ctx, text: str) -> Screen | None:
    if len(text) > MAX_DESCRIPTION_CHARS:
        return Screen(ctx.t("buyer.too_long", limit=MAX_DESCRIPTION_CHARS, length=len(text)))
    return None


@ROUTES.dialog(FLOW, busy=lambda ctx, data: ctx.t("dialog.busy.file_claim"))
async def dialog_message(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    """What the buyer types or sends while the dialog waits for ``step``."""
    incoming = ctx.incoming
    media = incoming.photo is not None or incoming.document is not None
    if step == "description":
        text = (incoming.text or "").strip()
        if media or not text:  # a picture (even with a caption) comes at the next step
            required = data["reason"] == Reason.OTHER
            key = "buyer.want_text_required" if required else "buyer.want_text"
            return Outcome([Screen(ctx.t(key))])
        if refusal := too_long(ctx, text):
            return Outcome([refusal])
        data["description"] = text
        await save(ctx, FLOW, "photos", data)
        return Outcome([await _ask(ctx, "photos", data)])
    if step == "photos":
        return await _photo(ctx, data, caption=(incoming.text or "").strip() if media else "")
    # Buttons are expected at the other steps: show them again (once per album sent).
    if not await first_of_album(ctx, FLOW, step, data):
        return Outcome()
    return Outcome([Screen(ctx.t("buyer.use_buttons")), await _ask(ctx, step, data)])


async def _photo(ctx: Ctx, data: dict[str, Any], caption: str = "") -> Outcome:
    """One photo (or one picture of an album) for the draft; a caption adds to the
    description (nothing the buyer sent is dropped without a word).

    Telegram delivers an album as one update per picture with a shared ``media_group_id``:
    the first picture of an album is answered, the rest are taken quietly (one reply per
    album, not five).
    """
    album = ctx.incoming.media_group_id
    quiet = album is not None and data.get("album") == album
    reference = evidence_of(ctx)
    if isinstance(reference, Screen):
        return Outcome([reference])
    photos = list(data.get("photos", []))
    if len(photos) >= MAX_EVIDENCE_ITEMS:
        if quiet and data.get("album_full"):
            return Outcome()
        data.update(album=album, album_full=True)
        await save(ctx, FLOW, "photos", data)
        return Outcome([Screen(ctx.t("buyer.photo_limit", limit=MAX_EVIDENCE_ITEMS))])
    if caption:  # shown back in the summary before Confirm
        described = "\n".join(filter(None, (data.get("description", ""), caption)))
        if refusal := too_long(ctx, described):
            return Outcome([refusal])
        data["description"] = described
    photos.append(reference)
    data["photos"] = photos
    data.pop("album_full", None)
    if album is not None:
        data["album"] = album
    await save(ctx, FLOW, "photos", data)
    if quiet:
        return Outcome()
    if album is not None:
        done = ((Button(ctx.t("buyer.photos_done"), DraftChoice("photos", "done").pack()),),)
        return Outcome([Screen(ctx.t("buyer.album", limit=MAX_EVIDENCE_ITEMS), done)])
    return Outcome([await _ask(ctx, "photos", data)])


# Image files staff can open in any Telegram client (not SVG, HEIC and the like).
IMAGE_FILE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


def evidence_of(ctx: Ctx) -> str | Screen:
    """A photo (or an image sent as a file) to keep as evidence, noted with its kind, or the
    reason it is refused."""
    incoming = ctx.incoming
    limit_mb = MAX_PHOTO_BYTES // 2**20
    if incoming.photo is not None:
        if (incoming.photo.file_size or 0) > MAX_PHOTO_BYTES:
            return Screen(ctx.t("buyer.photo_too_big", limit_mb=limit_mb))
        return evidence.reference(evidence.PHOTO, incoming.photo.file_id)
    if incoming.document is not None:
        if (incoming.document.mime_type or "") not in IMAGE_FILE_TYPES:
            return Screen(ctx.t("buyer.not_an_image"))
        if (incoming.document.file_size or 0) > MAX_PHOTO_BYTES:
            return Screen(ctx.t("buyer.photo_too_big", limit_mb=limit_mb))
        return evidence.reference(evidence.DOCUMENT, incoming.document.file_id)
    return Screen(ctx.t("buyer.want_photo"))
