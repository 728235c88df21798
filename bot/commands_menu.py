"""The commands menu (the "/" button in Telegram), set per role scope and language.

An unbound user sees the default menu (start, help, lang) in their language. Once a user is
bound, or their language changes, their own chat gets a menu listing exactly the commands of
their audiences (``routes.commands_for``), in their language. The staff group's chat gets
the staff commands (Telegram takes a chat's own scope before the default one). Menus travel as neutral
:class:`~bot.conversations.model.Commands` outputs, which the adapter turns into
``setMyCommands`` after the update's transaction has committed.

Binding (``/start <token>``) and ``/lang`` live in :mod:`bot.conversations.binding`; rather than
reach into them, :func:`install` wraps those routes so that an update that changed the user's
audiences or language also refreshes their menu. A role granted to *another* user (``/grant``)
must add ``await chat_menu(ctx, their_chat_id)`` to its outcome itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from bot import limits
from bot.conversations import binding  # noqa: F401  (its routes must exist before install)
from bot.conversations.callbacks import Callback, LanguageChoice
from bot.conversations.context import CHANNEL, LANGUAGES, Ctx, Translate, language_of
from bot.conversations.model import Commands, Outcome
from bot.conversations.routes import ROUTES, audience_of, commands_for
from workflow.claims import STAFF_ROLES, Actor, Role
from workflow.services.accounts import actors_for

# What an unbound user may do: exactly the commands the engine lets them use.
DEFAULT_COMMANDS = ("start", "help", "lang")
# Telegram scopes menus by two-letter ISO 639-1 codes; "" is every other language.
TELEGRAM_LANGUAGE = {"en": "", "zh-CN": "zh"}
MAX_COMMANDS = limits.COMMANDS
MAX_DESCRIPTION = limits.COMMAND_DESCRIPTION

# Handlers after which the user's roles or language may have changed.
REFRESH_AFTER_COMMANDS = ("start", "lang")
REFRESH_AFTER_CALLBACKS: tuple[type[Callback], ...] = (LanguageChoice,)


def audiences_of(actors: list[Actor]) -> set[str]:
    """The audiences of a set of roles (the same words as ``routes.audience_of``)."""
    who = {"anyone"}
    for actor in actors:
        if actor.role is Role.BUYER:
            who.add("buyer")
        elif actor.role is Role.CONSIGNOR:
            who.add("consignor")
        elif actor.role in STAFF_ROLES:
            who.add("staff")
            if actor.role is Role.ADMIN:
                who.add("admin")
    return who


def menu(translate: Translate, lang: str, audiences: set[str]) -> tuple[tuple[str, str], ...]:
    """(command, description) pairs: the role's own commands first, then everyone's."""
    if audiences <= {"anyone"}:
        names = list(DEFAULT_COMMANDS)
    else:
        routes = commands_for(audiences - {"anyone"}) + commands_for({"anyone"})
        names = [r.name for r in routes if r.name != "start"]
    pairs = []
    for name in dict.fromkeys(names):
        route = ROUTES.commands.get(name)
        if route is None:
            continue
        pairs.append((name, translate(lang, route.description_key)[:MAX_DESCRIPTION]))
    return tuple(pairs[:MAX_COMMANDS])


def group_menus(translate: Translate, group: int) -> list[Commands]:
    """The staff group's menu, one per language (set at start-up): the commands of staff.
    The chat's scope covers every member there, so an admin's own commands stay in their
    private chat rather than being offered to every agent in the group."""
    return [
        Commands(menu(translate, lang, {"staff"}), group, TELEGRAM_LANGUAGE[lang])
        for lang in LANGUAGES
    ]


def default_menus(translate: Translate) -> list[Commands]:
    """The default scope's menu, one per language we speak (set once at start-up)."""
    return [
        Commands(menu(translate, lang, {"anyone"}), None, TELEGRAM_LANGUAGE[lang])
        for lang in LANGUAGES
    ]


async def chat_menu(ctx: Ctx, external_id: int | None = None) -> Commands:
    """The menu of one user's private chat (default: the user of this update), from their
    current roles and language as this transaction sees them."""
    user_id = ctx.incoming.user.id if external_id is None else external_id
    actors = await actors_for(ctx.uow, CHANNEL, user_id)
    if user_id == ctx.incoming.user.id:
        lang = ctx.lang
    else:
        user = await ctx.uow.chat.user(CHANNEL, user_id)
        lang = language_of(user.language if user else None, None)
    return Commands(menu(ctx.services.translate, lang, audiences_of(actors)), user_id)


Handler = Callable[[Ctx, Any], Awaitable[Outcome]]


def _refreshing(handler: Handler) -> Handler:
    async def refreshed(ctx: Ctx, arg: Any) -> Outcome:
        before = (frozenset(audience_of(ctx)), ctx.lang)
        outcome = await handler(ctx, arg)
        if not ctx.incoming.is_private:
            return outcome
        ctx.actors = await actors_for(ctx.uow, CHANNEL, ctx.incoming.user.id)
        if (frozenset(audience_of(ctx)), ctx.lang) != before:
            outcome.outputs.append(await chat_menu(ctx))
        return outcome

    refreshed.__wrapped__ = handler  # type: ignore[attr-defined]
    return refreshed


def install() -> None:
    """Make binding and language changes refresh the user's menu (idempotent)."""
    for name in REFRESH_AFTER_COMMANDS:
        route = ROUTES.commands.get(name)
        if route is not None and not hasattr(route.handler, "__wrapped__"):
            ROUTES.commands[name] = dataclasses.replace(route, handler=_refreshing(route.handler))
    for kind in REFRESH_AFTER_CALLBACKS:
        callback_route = ROUTES.callbacks.get(kind)
        if callback_route is not None and not hasattr(callback_route.handler, "__wrapped__"):
            ROUTES.callbacks[kind] = dataclasses.replace(
                callback_route, handler=_refreshing(callback_route.handler)
            )


install()
