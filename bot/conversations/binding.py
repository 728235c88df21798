"""Binding and the basics everyone has: /start (with a binding token), /help, /lang, /cancel."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from bot.conversations.callbacks import LanguageChoice, MenuChoice
from bot.conversations.context import (
    ASKED_IN,
    CHANNEL,
    LANGUAGES,
    Ctx,
    asked_here,
    waits_for_user,
)
from bot.conversations.model import Button, Outcome, Output, Screen, Toast
from bot.conversations.routes import (
    ANYONE,
    ROUTES,
    audience_of,
    commands_for,
    private_only,
    staff_elsewhere,
)
from workflow.claims import SYSTEM, Role
from workflow.services.accounts import actors_for, grant_role, redeem_binding


@ROUTES.command("start", ANYONE)
async def start(ctx: Ctx, args: str) -> Outcome:
    user_id = ctx.incoming.user.id
    welcome: list[Output] = []
    if user_id in ctx.services.config.admins and ctx.staff is None:
        # The first admins come from configuration; they bind by just saying /start.
        await grant_role(
            ctx.uow, ctx.env, SYSTEM, CHANNEL, user_id, Role.ADMIN, ctx.incoming.user.first_name
        )
        welcome.append(Screen(ctx.t("bind.done.staff")))
    if args:  # a binding link (an admin may be a buyer or a consignor too)
        before = {a.role.value: a.party_id for a in ctx.actors}
        binding = await redeem_binding(ctx.uow, ctx.env, CHANNEL, user_id, args)
        done = ctx.t(f"bind.done.{binding.party_kind}")
        if before.get(binding.party_kind, binding.party_id) == binding.party_id:
            welcome.append(Screen(done))
        else:
            # The chat now speaks for another account (one per kind): said so, since the
            # first account's claims vanish from it. A dialog begun for the first one is
            # about its orders and claims, which this chat can no longer see.
            welcome.append(Screen(f"{done}\n{ctx.t(f'bind.replaced.{binding.party_kind}')}"))
            welcome += await _drop_dialog(ctx, binding.party_kind)
    if welcome:
        ctx.actors = await actors_for(ctx.uow, CHANNEL, user_id)
        return Outcome([*welcome, *(await help_(ctx, "")).outputs])
    if not ctx.actors:
        return Outcome([Screen(ctx.t("bind.unbound"))])
    return await help_(ctx, "")


@ROUTES.command("help", ANYONE)
async def help_(ctx: Ctx, args: str) -> Outcome:
    """The menu: what this user may do, by role."""
    if not ctx.actors:
        return Outcome([Screen(ctx.t("bind.unbound"))])
    lines = [ctx.t("menu.title", name=html.escape(ctx.incoming.user.first_name))]
    for route in commands_for(audience_of(ctx) - {"anyone"}) + commands_for({"anyone"}):
        if route.name != "start":
            lines.append(f"/{route.name} — {ctx.t(route.description_key)}")
    return Outcome([Screen("\n".join(dict.fromkeys(lines)), _menu_buttons(ctx))])


# The menu's buttons: the commands a role uses most, one press away.
MENU_BUTTONS = ("new", "claims", "balance", "items", "queue", "stats")


def _menu_buttons(ctx: Ctx) -> tuple[tuple[Button, ...], ...]:
    who = audience_of(ctx)
    shown = [
        Button(ctx.t(f"menu.button.{name}"), MenuChoice(name).pack())
        for name in MENU_BUTTONS
        if (route := ROUTES.commands.get(name)) is not None and route.audience & who
    ]
    return tuple(tuple(shown[i : i + 2]) for i in range(0, len(shown), 2))


@ROUTES.callback(MenuChoice, ANYONE)
async def menu_pressed(ctx: Ctx, choice: MenuChoice) -> Outcome:
    """A menu button does what typing its command does."""
    route = ROUTES.commands.get(choice.item) if choice.item in MENU_BUTTONS else None
    if route is None:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    who = audience_of(ctx)
    if not route.audience & who:
        return Outcome([Toast(ctx.t("error.not_for_you"), alert=True)])
    if not ctx.incoming.is_private and private_only(route.audience, who):  # a /help in a group
        return Outcome([Toast(ctx.t("error.private_button"), alert=True)])
    if staff_elsewhere(ctx, route.audience, who):  # a /help in a group that is not staff's
        return Outcome([Toast(ctx.t("error.staff_button_elsewhere"), alert=True)])
    return await route.handler(ctx, "")


@ROUTES.command("lang", ANYONE)
async def choose_language(ctx: Ctx, args: str) -> Outcome:
    if args in LANGUAGES:
        return await _set_language(ctx, args)
    keyboard = (
        tuple(Button(ctx.t(f"lang.{code}"), LanguageChoice(code).pack()) for code in LANGUAGES),
    )
    return Outcome([Screen(ctx.t("lang.choose"), keyboard)])


@ROUTES.callback(LanguageChoice, ANYONE)
async def language_pressed(ctx: Ctx, choice: LanguageChoice) -> Outcome:
    if choice.language not in LANGUAGES:
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    outcome = await _set_language(ctx, choice.language, edit=True)
    return outcome


async def _set_language(ctx: Ctx, language: str, edit: bool = False) -> Outcome:
    user = await ctx.uow.chat.user(CHANNEL, ctx.incoming.user.id)
    if user is not None:
        user.language = language
    ctx.lang = language
    return Outcome([Screen(ctx.t("lang.set"), edit=edit)])


@ROUTES.command("cancel", ANYONE)
async def cancel(ctx: Ctx, args: str) -> Outcome:
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    # In a group only a question asked there (a staff prompt in its topic) is cancelled: a
    # private dialog is not ended, nor talked about, where others read.
    elsewhere = conversation is not None and not ctx.incoming.is_private
    if conversation is None or (elsewhere and not asked_here(conversation.data, ctx.incoming)):
        if conversation is not None and _asked_in_this_chat(conversation.data, ctx):
            # a prompt in another topic of this same (staff) group: where to cancel it
            claim = conversation.data.get("claim")
            return Outcome([Screen(ctx.t("dialog.cancel_in_its_topic", number=claim))])
        return Outcome([Screen(ctx.t("dialog.nothing_to_cancel"))])
    dropped = await _drop_dialog(ctx)
    return Outcome([*dropped] if dropped else [Screen(ctx.t("dialog.nothing_to_cancel"))])


def _asked_in_this_chat(data: Mapping[str, Any], ctx: Ctx) -> bool:
    """A question asked in this group chat, in another of its topics, about a claim."""
    place = data.get(ASKED_IN)
    return place is not None and place[0] == ctx.incoming.chat_id and "claim" in data


async def _drop_dialog(ctx: Ctx, party: str | None = None) -> list[Output]:
    """End the user's open dialog, saying what was left undone: nothing is said of none, nor
    of one that has had its answer already. With ``party``, only a dialog held for that kind
    of account (a staff prompt stays when the chat's buyer account changes)."""
    conversation = await ctx.uow.chat.conversation(CHANNEL, ctx.incoming.user.id)
    if conversation is None:
        return []
    if party is not None and ROUTES.dialog_party.get(conversation.flow, "buyer") != party:
        return []
    await ctx.uow.chat.end_conversation(CHANNEL, ctx.incoming.user.id)
    if not waits_for_user(conversation.data):
        return []
    worded = ROUTES.cancel_texts.get(conversation.flow)
    text = worded(ctx, dict(conversation.data)) if worded else ctx.t("dialog.cancelled")
    return [Screen(text)]
