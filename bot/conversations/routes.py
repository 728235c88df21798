"""The framework-neutral router: commands, button families and dialogs, each with who may use it.

Role modules register their handlers here; :mod:`bot.conversations.engine` looks them up. A
command or button someone may not use gets a clear refusal, never a silent nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.conversations.callbacks import Callback
from bot.conversations.context import Ctx
from bot.conversations.model import Outcome

# Who may use a handler: a set of these words ("buyer", "consignor", "staff", "admin", "anyone").
Audience = frozenset[str]
ANYONE: Audience = frozenset({"anyone"})
BUYERS: Audience = frozenset({"buyer"})
CONSIGNORS: Audience = frozenset({"consignor"})
STAFF: Audience = frozenset({"staff"})
ADMINS: Audience = frozenset({"admin"})

CommandHandler = Callable[[Ctx, str], Awaitable[Outcome]]
CallbackHandler = Callable[[Ctx, Any], Awaitable[Outcome]]
DialogHandler = Callable[[Ctx, str, dict[str, Any]], Awaitable[Outcome]]
# What /cancel says when it leaves a dialog (given the dialog's data): a locale text. The same
# shape says which dialog is open when the user tries to start another.
CancelText = Callable[[Ctx, dict[str, Any]], str]


@dataclass(frozen=True)
class CommandRoute:
    name: str
    audience: Audience
    handler: CommandHandler
    description_key: str


@dataclass(frozen=True)
class CallbackRoute:
    kind: type[Callback]
    audience: Audience
    handler: CallbackHandler


class Routes:
    def __init__(self) -> None:
        self.commands: dict[str, CommandRoute] = {}
        self.callbacks: dict[type[Callback], CallbackRoute] = {}
        self.dialogs: dict[str, DialogHandler] = {}
        self.cancel_texts: dict[str, CancelText] = {}
        self.busy_texts: dict[str, CancelText] = {}
        self.dialog_party: dict[str, str] = {}

    def command(
        self, name: str, audience: Audience = ANYONE
    ) -> Callable[[CommandHandler], CommandHandler]:
        def register(handler: CommandHandler) -> CommandHandler:
            if name in self.commands:
                raise ValueError(f"/{name} registered twice")
            self.commands[name] = CommandRoute(name, audience, handler, f"command.{name}")
            return handler

        return register

    def callback(
        self, kind: type[Callback], audience: Audience = ANYONE
    ) -> Callable[[CallbackHandler], CallbackHandler]:
        def register(handler: CallbackHandler) -> CallbackHandler:
            if kind in self.callbacks:
                raise ValueError(f"{kind.__name__} registered twice")
            self.callbacks[kind] = CallbackRoute(kind, audience, handler)
            return handler

        return register

    def dialog(
        self,
        flow: str,
        cancelled: CancelText | None = None,
        busy: CancelText | None = None,
        party: str = "buyer",
    ) -> Callable[[DialogHandler], DialogHandler]:
        """Register a dialog; ``cancelled`` words what /cancel left, if not a claim being filed;
        ``busy`` what the dialog waits for, said to a user who starts another meanwhile;
        ``party`` the account kind it is held for (buyer, consignor or staff): a chat bound to
        another account of that kind drops it, and only it."""

        def register(handler: DialogHandler) -> DialogHandler:
            self.dialogs[flow] = handler
            self.dialog_party[flow] = party
            if cancelled is not None:
                self.cancel_texts[flow] = cancelled
            if busy is not None:
                self.busy_texts[flow] = busy
            return handler

        return register


ROUTES = Routes()


def audience_of(ctx: Ctx) -> set[str]:
    """The audiences the current user belongs to."""
    who = {"anyone"}
    if ctx.buyer:
        who.add("buyer")
    if ctx.consignor:
        who.add("consignor")
    if ctx.staff:
        who.add("staff")
        if ctx.staff.role.value == "admin":
            who.add("admin")
    return who


# A buyer's or a consignor's own business (orders, claims, money): answered only in their
# private chat, never in a group someone added the bot to, where everyone would read it.
OWN_BUSINESS: Audience = BUYERS | CONSIGNORS


def private_only(audience: Audience, who: set[str]) -> bool:
    """Whether a handler, used by this user, shows a party's own business: the roles it
    serves the user in are all buyer or consignor (staff work in the staff group)."""
    used = audience & who
    return bool(used) and used <= OWN_BUSINESS


# Staff's business (cases, the queue, refunds, roles): answered in a private chat and in the
# staff group only, never in another group someone added the bot to.
STAFF_BUSINESS: Audience = STAFF | ADMINS


def staff_elsewhere(ctx: Ctx, audience: Audience, who: set[str]) -> bool:
    """Whether a handler, used by this user, would show staff's business in a group that is
    not the staff group."""
    if ctx.incoming.is_private or ctx.incoming.chat_id == ctx.services.config.staff_chat_id:
        return False
    return bool(audience & who & STAFF_BUSINESS)


def commands_for(audiences: set[str]) -> list[CommandRoute]:
    return [r for r in ROUTES.commands.values() if r.audience & audiences]
