"""What a consignor sees and may press: compensation proposals, /balance and /items.

Consignors hear of every stage of claims on their items from delivery (the outbox); the
message's "Open claim" button brings up the claim card, whose buttons come from the
transition table. On a compensation proposal those are Accept and Dispute. Dispute asks for a
counter-offer as the next text message (a one-step dialog whose state lives in the database):
typed, parsed without floats, at most what the damaged items are worth. A consignor can never see or press
on a claim about someone else's items: the read model reports it as not found.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from bot import (
    commands_menu,  # noqa: F401  (the commands menu follows binding and /lang)
    dates,
)
from bot.conversations.amounts import MAX_AMOUNT_CHARS, example, shown
from bot.conversations.callbacks import Callback
from bot.conversations.cards import CARD_LINES, OFFERED, action, card, money
from bot.conversations.claim_dialog import other_dialog
from bot.conversations.context import CHANNEL, Ctx
from bot.conversations.model import Button, Outcome, Screen, Toast
from bot.conversations.routes import CONSIGNORS, ROUTES
from workflow import lifecycle
from workflow.claims import Actor, Role
from workflow.errors import InvalidAmount
from workflow.money import Money
from workflow.services import returns
from workflow.services.queries import ClaimView, claim_view, consignor_balance, consignor_items

COUNTER_FLOW = "counter_offer"
ITEMS_PER_PAGE = 8
BALANCE_ENTRIES = 8


@dataclass(frozen=True)
class ItemsPage(Callback):
    """Paging through the consignor's items."""

    prefix: ClassVar[str] = "ki"
    page: int


@dataclass(frozen=True)
class CounterOfferCancel(Callback):
    """Leave the counter-offer prompt without disputing."""

    prefix: ClassVar[str] = "kx"
    claim_id: int


def _consignor(ctx: Ctx) -> Actor:
    consignor = ctx.consignor
    assert consignor is not None and consignor.party_id is not None  # routes admit consignors
    return consignor


# ---- compensation: accept, or dispute with a counter-offer ----


ANSWERS = ("accept_compensation", "dispute_compensation")


def answers_alone(view: ClaimView, viewer: Actor) -> bool:
    """Whether this consignor may answer the claim's compensation: only when the claim covers
    their items alone. Filing keeps a claim to one consignor; one filed before that rule is
    decided by staff once the response deadline passes (``returns._sole_consignors_claim``)."""
    return not view.shared and list(view.consignor_ids) == [viewer.party_id]


for _trigger in ANSWERS:
    OFFERED[(_trigger, Role.CONSIGNOR)] = answers_alone


async def _shared_line(ctx: Ctx, view: ClaimView, viewer: Actor) -> list[str]:
    """Why a consignor sees no Accept or Dispute on a proposal they cannot answer alone."""
    c = view.claim
    if viewer.role is not Role.CONSIGNOR or answers_alone(view, viewer):
        return []
    open_to = lifecycle.allowed_triggers(c.status, c.claim_type, Role.CONSIGNOR)
    return [ctx.t("consignor.shared_claim")] if set(ANSWERS) & set(open_to) else []


CARD_LINES.append(_shared_line)


def _not_alone(ctx: Ctx) -> Outcome:
    return Outcome([Toast(ctx.t("consignor.shared_claim"), alert=True)])


@action("accept_compensation", Role.CONSIGNOR)
async def accept(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    c = view.claim
    if not answers_alone(view, actor):
        return _not_alone(ctx)
    await returns.accept_compensation(ctx.uow, ctx.env, actor, c.id, c.version)
    # A counter-offer prompt for this claim is answered by the Accept; any other dialog (a
    # claim the consignor, as a buyer, is filing) is theirs to finish.
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if (
        conversation is not None
        and conversation.flow == COUNTER_FLOW
        and _claim_of(conversation.data) == c.id
    ):
        await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    amount = money(c.compensation_amount, c.currency)
    return Outcome(
        [
            Toast(ctx.t("consignor.accepted", number=c.id, amount=amount)),
            await card(ctx, c.id, edit=True),
        ]
    )


@action("dispute_compensation", Role.CONSIGNOR)
async def dispute(ctx: Ctx, actor: Actor, view: ClaimView) -> Outcome:
    c = view.claim
    if not answers_alone(view, actor):
        return _not_alone(ctx)
    if busy := await other_dialog(ctx, COUNTER_FLOW, c.id):
        return Outcome([Toast(busy, alert=True)])
    data = {"claim": c.id, "version": c.version}
    await ctx.uow.chat.save_conversation(
        CHANNEL, ctx.incoming.user.id, COUNTER_FLOW, "amount", data, ctx.env.clock.now()
    )
    prompt = ctx.t(
        "consignor.counter.ask",
        number=c.id,
        proposed=money(c.compensation_amount, c.currency),
        most=money(returns.compensation_cap(view.lines), c.currency),
        currency=c.currency,
        example=_example(c.currency),
    )
    cancel = Button(ctx.t("consignor.counter.cancel"), CounterOfferCancel(c.id).pack())
    return Outcome([Screen(prompt, ((cancel,),))])


def _example(currency: str) -> str:
    """A counter-offer to show as what to type: 25.50, or 25 in a currency without decimals."""
    return example(currency, 25, "5")


def _claim_of(data: Mapping[str, Any]) -> int:
    """The claim a counter-offer prompt is about. Its data names it "claim", as every
    claim's dialog does (so another dialog knows whom it waits for); a prompt saved before
    that named it "claim_id"."""
    return int(data["claim"] if "claim" in data else data.get("claim_id", 0))


def _counter_offer_cancelled(ctx: Ctx, data: dict[str, Any]) -> str:
    """/cancel at the counter-offer prompt: nothing was disputed, the proposal stays open."""
    return ctx.t("consignor.counter.cancelled", number=_claim_of(data))


def _counter_offer_awaited(ctx: Ctx, data: dict[str, Any]) -> str:
    """Said to a consignor who, being a buyer too, starts another dialog meanwhile."""
    return ctx.t("dialog.busy.counter_offer", number=_claim_of(data))


@ROUTES.dialog(
    COUNTER_FLOW,
    cancelled=_counter_offer_cancelled,
    busy=_counter_offer_awaited,
    party="consignor",
)
async def counter_offer(ctx: Ctx, step: str, data: dict[str, Any]) -> Outcome:
    """The counter-offer typed after pressing Dispute."""
    consignor = ctx.consignor
    if consignor is None or step != "amount":
        await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
        return Outcome([Screen(ctx.t("error.not_for_you"))])
    claim_id, version = _claim_of(data), int(data["version"])
    view = await claim_view(ctx.uow, consignor, claim_id)
    c = view.claim
    if c.version != version:
        # Someone (or the deadline) moved the claim since Dispute was pressed.
        await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
        return Outcome([Screen(ctx.t("error.already_handled")), await card(ctx, claim_id)])
    text = (ctx.incoming.text or "").strip()
    if not text or ctx.incoming.photo or ctx.incoming.document or ctx.incoming.has_other_content:
        asked = ctx.t(
            "consignor.counter.need_text", currency=c.currency, example=_example(c.currency)
        )
        return Outcome([Screen(asked)])
    try:
        if len(text) > MAX_AMOUNT_CHARS:
            raise InvalidAmount(text)
        amount = Money.parse(text, c.currency)
    except InvalidAmount:
        return Outcome(
            [
                Screen(
                    ctx.t(
                        "consignor.counter.bad_amount",
                        value=shown(text),
                        currency=c.currency,
                        example=_example(c.currency),
                    )
                )
            ]
        )
    most = returns.compensation_cap(view.lines)
    if amount.amount > most:
        return Outcome(
            [
                Screen(
                    ctx.t(
                        "consignor.counter.too_much",
                        amount=amount.format(),
                        most=money(most, c.currency),
                    )
                )
            ]
        )
    if amount.amount == c.compensation_amount:
        return Outcome([Screen(ctx.t("consignor.counter.same", amount=amount.format()))])
    await returns.dispute_compensation(
        ctx.uow, ctx.env, consignor, claim_id, version, amount.amount
    )
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    return Outcome(
        [
            Screen(ctx.t("consignor.counter.sent", number=claim_id, amount=amount.format())),
            await card(ctx, claim_id),
        ]
    )


@ROUTES.callback(CounterOfferCancel, CONSIGNORS)
async def counter_offer_cancelled(ctx: Ctx, data: CounterOfferCancel) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if (
        conversation is None
        or conversation.flow != COUNTER_FLOW
        or _claim_of(conversation.data) != data.claim_id
    ):
        return Outcome([Toast(ctx.t("consignor.counter.not_waiting"), alert=True)])
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    return Outcome([Screen(ctx.t("consignor.counter.cancelled", number=data.claim_id), edit=True)])


# ---- /balance ----


@ROUTES.command("balance", CONSIGNORS)
async def balance(ctx: Ctx, args: str) -> Outcome:
    consignor = _consignor(ctx)
    assert consignor.party_id is not None
    account = await consignor_balance(
        ctx.uow, consignor.party_id, ctx.env.clock.now(), BALANCE_ENTRIES
    )
    lines = [
        ctx.t("consignor.balance.title"),
        ctx.t("consignor.balance.available", amount=_sums(account.available)),
        ctx.t("consignor.balance.pending", amount=_sums(account.pending)),
    ]
    if not account.entries:
        lines.append(ctx.t("consignor.balance.no_entries"))
    else:
        lines.append(ctx.t("consignor.balance.entries"))
        for entry in account.entries:
            claim = (
                ctx.t("consignor.balance.for_claim", number=entry.claim_id)
                if entry.claim_id is not None
                else ""
            )
            lines.append(
                ctx.t(
                    "consignor.balance.entry",
                    when=dates.day(entry.available_at, ctx.services.config.timezone),
                    kind=ctx.t(f"consignor.ledger.{entry.kind.value}"),
                    amount=Money(entry.amount, entry.currency).format(),
                    claim=claim,
                )
            )
    return Outcome([Screen("\n".join(lines))])


def _sums(amounts: tuple[Money, ...]) -> str:
    """One sum per currency, side by side: "450.00 CNY · 8100 JPY"."""
    return " · ".join(amount.format() for amount in amounts)


# ---- /items ----


@ROUTES.command("items", CONSIGNORS)
async def items(ctx: Ctx, args: str) -> Outcome:
    return Outcome([await _items_screen(ctx, 0)])


@ROUTES.callback(ItemsPage, CONSIGNORS)
async def items_page(ctx: Ctx, data: ItemsPage) -> Outcome:
    if data.page < 0:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    return Outcome([await _items_screen(ctx, data.page, edit=True)])


async def _items_screen(ctx: Ctx, page: int, edit: bool = False) -> Screen:
    consignor = _consignor(ctx)
    assert consignor.party_id is not None
    stock, total = await consignor_items(
        ctx.uow, consignor.party_id, page * ITEMS_PER_PAGE, ITEMS_PER_PAGE
    )
    if total == 0:
        return Screen(ctx.t("consignor.items.none"), edit=edit)
    pages = (total + ITEMS_PER_PAGE - 1) // ITEMS_PER_PAGE
    if not stock:  # a page past the end (the list shrank, or forged data)
        return Screen(ctx.t("consignor.items.no_page", pages=pages), edit=edit)
    lines = [ctx.t("consignor.items.title", page=page + 1, pages=pages, total=total)]
    for item in stock:
        lines.append(
            ctx.t(
                "consignor.items.item",
                sku=html.escape(item.sku),
                title=html.escape(item.title),
                status=ctx.t(f"consignor.listing.{item.status}"),
                on_hand=item.on_hand,
                sold=item.sold,
                damaged=item.damaged,
            )
        )
    nav = []
    if page > 0:
        nav.append(Button(ctx.t("consignor.items.previous"), ItemsPage(page - 1).pack()))
    if page + 1 < pages:
        nav.append(Button(ctx.t("consignor.items.next"), ItemsPage(page + 1).pack()))
    return Screen("\n".join(lines), (tuple(nav),) if nav else (), edit=edit)
