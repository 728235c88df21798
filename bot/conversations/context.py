"""What a conversation handler gets: its unit of work, who is talking, in which language."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.conversations.model import Incoming, Outcome, Screen
from bot.flood import SendLimits
from storage.uow import SqlUnitOfWork, UnitOfWorkFactory
from workflow.claims import STAFF_ROLES, Actor, Role
from workflow.services.common import Env

log = logging.getLogger(__name__)

CHANNEL = "telegram"
LANGUAGES = ("en", "zh-CN")
# The dialog-data key naming the chat and topic a question was asked in (engine.route takes
# the answer only from there).
ASKED_IN = "asked_in"
# The dialog-data key of a dialog that has had its answer and only takes in what follows it
# (the other pictures of an album the answer came in): it waits for nothing the user owes, so
# /cancel has nothing to cancel and another dialog may start in its place.
ANSWERED = "answered"

Translate = Callable[..., str]


def language_of(preferred: str | None, language_code: str | None) -> str:
    """The user's chosen language, else Telegram's hint (any Chinese → zh-CN), else English."""
    if preferred in LANGUAGES:
        return preferred
    if language_code and language_code.lower().startswith("zh"):
        return "zh-CN"
    return "en"


@dataclass(frozen=True)
class BotConfig:
    bot_username: str = "sandbox_bot"
    admins: frozenset[int] = frozenset()
    staff_chat_id: int | None = None
    staff_language: str = "zh-CN"
    timezone: str = "Asia/Shanghai"  # how times are shown to people (stored in UTC)
    send_limits: SendLimits = field(default_factory=SendLimits)  # Telegram's flood limits
    delivery_lease_seconds: float = 60.0  # a crashed sender's messages go out again after it


@dataclass
class Services:
    """Process-wide collaborators, built once by the wiring (bot/app.py)."""

    uows: UnitOfWorkFactory
    env: Env
    translate: Translate
    config: BotConfig = field(default_factory=BotConfig)


@dataclass
class Ctx:
    uow: SqlUnitOfWork
    services: Services
    incoming: Incoming
    lang: str
    actors: list[Actor]
    # What one update's handlers read more than once (e.g. the order a claim dialog is about):
    # read once per update, inside its transaction, so never stale.
    memo: dict[object, Any] = field(default_factory=dict)

    @property
    def env(self) -> Env:
        return self.services.env

    def t(self, key: str, **params: Any) -> str:
        return self.services.translate(self.lang, key, **params)

    def usage(self, key: str, **params: Any) -> Outcome:
        """A command typed wrong: its usage line for the user, and a log line for us (every
        bad input leaves one)."""
        typed = (self.incoming.text or "")[:80]
        log.info(
            "update %s: usage shown to user %s for %r",
            self.incoming.update_id,
            self.incoming.user.id,
            typed,
        )
        return Outcome([Screen(self.t(key, **params))])

    def asked_here(self) -> dict[str, Any]:
        """Dialog data that ties a question to this chat and topic: in the staff group a
        prompt asked in one case's topic must not take a message written in another's."""
        return {ASKED_IN: [self.incoming.chat_id, self.incoming.thread_id]}

    def actor(self, role: Role) -> Actor | None:
        return self._here(next((a for a in self.actors if a.role is role), None))

    def _here(self, actor: Actor | None) -> Actor | None:
        """The actor as acting from this chat: what the bot answers here is their record of
        their own step, so the stage message about it goes to their other chats only."""
        return None if actor is None else replace(actor, chat=self.incoming.chat_id)

    @property
    def buyer(self) -> Actor | None:
        return self.actor(Role.BUYER)

    @property
    def consignor(self) -> Actor | None:
        return self.actor(Role.CONSIGNOR)

    @property
    def staff(self) -> Actor | None:
        return self._here(next((a for a in self.actors if a.role in STAFF_ROLES), None))


def waits_for_user(data: Mapping[str, Any]) -> bool:
    """Whether a dialog still waits for the user (not one that has had its answer)."""
    return not data.get(ANSWERED)


def asked_here(data: Mapping[str, Any], incoming: Incoming) -> bool:
    """Whether a message is written where the dialog asked its question (a dialog that
    recorded no place asked in the user's private chat)."""
    place = data.get(ASKED_IN)
    if place is None:
        return incoming.is_private
    return [incoming.chat_id, incoming.thread_id] == list(place)
