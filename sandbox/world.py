"""The in-memory Telegram the sandbox simulates: users, chats, topics, messages, files and
the bot's update queue.

Both sides act on this one object: the Bot API handlers (``methods.py``) as the bot, the
control routes (``control.py``) as users. Everything runs on one event loop, so state
changes need no locks; waiters (long polling, webhook delivery, wait-idle) are woken through
:meth:`World.changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Update types delivered when the bot has not chosen any (Telegram's default).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    blocked_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class Topic:
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class Chat:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    is_forum: bool = False
    user: User | None = None  # the other side of a private chat
    members: list[int] = field(default_factory=list)
    topics: dict[int, Topic] = field(default_factory=dict)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None
    chat_action: dict[str, Any] | None = None

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    def to_api(self) -> dict[str, Any]:
        if self.user is not None:
            data = self.user.to_api()
            data.pop("is_bot")
            data.pop("language_code", None)
            data["type"] = "private"
            return data
        data = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo | document
    data: bytes
    file_name: str
    mime_type: str
    file_path: str
    width: int = 0
    height: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class CallbackQuery:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    update_id: int
    created: float
    answer: dict[str, Any] | None = None


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class World:
    """All state of one sandbox: one bot and the users and chats around it."""

    def __init__(self, token: str, bot_username: str, bot_first_name: str):
        self._event = asyncio.Event()
        self.poll_generation = 0
        self.closing = False
        self._setup(token, bot_username, bot_first_name)

    def reset(self) -> None:
        """Forget everything but the bot; waiters wake up and see the empty world."""
        self._setup(self.token, self.bot["username"], self.bot["first_name"])
        self.poll_generation += 1
        self.changed()

    def _setup(self, token: str, bot_username: str, bot_first_name: str) -> None:
        self.token = token
        self.bot: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.callbacks: dict[str, CallbackQuery] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.calls: deque[dict[str, Any]] = deque(maxlen=50_000)
        self.call_seq = itertools.count(1)
        self.webhook: Webhook | None = None
        self.allowed_updates: list[str] | None = None
        self.updates: deque[dict[str, Any]] = deque()
        self.next_update_id = 1
        self.inflight = 0  # Bot API calls (other than getUpdates) and webhook posts in progress
        self.last_activity = time.monotonic()
        self._file_seq = itertools.count(1)

    # --- waking waiters -----------------------------------------------------------------

    def changed(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_changed(self, seconds: float) -> None:
        """Return when anything changes, or after ``seconds`` at the latest."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # --- users and chats ----------------------------------------------------------------

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        self.chats[user.id] = Chat(id=user.id, type="private", user=user, members=[user.id])
        self.changed()
        return user

    def add_chat(self, chat: Chat) -> Chat:
        self.chats[chat.id] = chat
        self.changed()
        return chat

    def find_chat(self, chat_id: int | str) -> Chat | None:
        if isinstance(chat_id, str):
            name = chat_id.removeprefix("@").lower()
            for user in self.users.values():
                if user.username and user.username.lower() == name:
                    return self.chats.get(user.id)
            return None
        return self.chats.get(chat_id)

    def chats_of(self, user_id: int) -> list[Chat]:
        return [chat for chat in self.chats.values() if user_id in chat.members]

    # --- messages -----------------------------------------------------------------------

    def new_message(
        self,
        chat: Chat,
        sender: dict[str, Any],
        thread_id: int | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """Store a message in ``chat`` and return its Bot API representation."""
        message: dict[str, Any] = {
            "message_id": chat.next_message_id,
            "from": sender,
            "chat": chat.to_api(),
            "date": int(time.time()),
        }
        chat.next_message_id += 1
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        message.update({k: v for k, v in content.items() if v is not None})
        chat.messages[message["message_id"]] = message
        self.changed()
        return message

    def thread_messages(self, chat: Chat, thread_id: int) -> list[int]:
        return [m for m, msg in chat.messages.items() if msg.get("message_thread_id") == thread_id]

    # --- files --------------------------------------------------------------------------

    def store_file(
        self,
        kind: str,
        data: bytes,
        file_name: str,
        mime_type: str,
        width: int = 0,
        height: int = 0,
    ) -> StoredFile:
        seq = next(self._file_seq)
        suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else "bin"
        folder = "photos" if kind == "photo" else "documents"
        stored = StoredFile(
            file_id=f"{'AgAC' if kind == 'photo' else 'BQAC'}{seq:06d}{secrets.token_hex(8)}",
            file_unique_id=f"AQAD{seq:06d}{secrets.token_hex(4)}",
            kind=kind,
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            file_path=f"{folder}/file_{seq}.{suffix}",
            width=width,
            height=height,
        )
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    # --- the update queue ---------------------------------------------------------------

    def enqueue(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        self.updates.append({"update_id": update_id, kind: copy.deepcopy(payload)})
        self.touch()
        self.changed()
        return update_id

    def wanted(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in DEFAULT_EXCLUDED_UPDATES

    def confirm_below(self, offset: int) -> None:
        """getUpdates with ``offset`` confirms every update with a smaller id."""
        while self.updates and self.updates[0]["update_id"] < offset:
            self.updates.popleft()
            self.touch()
        self.changed()

    def forget_all_but_last(self, count: int) -> None:
        while len(self.updates) > count:
            self.updates.popleft()
        self.changed()

    def drop_unwanted(self) -> None:
        """Updates of types the bot does not want are never delivered, so they go."""
        kept = [u for u in self.updates if self.wanted(u)]
        if len(kept) != len(self.updates):
            self.updates = deque(kept)
            self.changed()

    def confirm(self, update_id: int) -> None:
        self.updates = deque(u for u in self.updates if u["update_id"] != update_id)
        self.touch()
        self.changed()

    @property
    def pending_count(self) -> int:
        return len(self.updates)
