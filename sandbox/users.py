"""What the people around the bot do: join, write, send photos, press buttons, block it.

Each action changes the world the way a Telegram client would and queues the update the
bot would receive for it; the bot learns of it only through getUpdates or its webhook.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from typing import Any

from aiohttp import web

from sandbox.botmeta import TOPIC_COLORS, create_topic, delete_topic
from sandbox.context import Ctx
from sandbox.entities import command_entities
from sandbox.flood import FloodControl
from sandbox.media import document, photo_sizes, store_upload
from sandbox.spec import ApiError, Upload
from sandbox.world import CallbackQuery, Chat, User, World


class UserError(Exception):
    """A control call that cannot be done; answered as {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _need(body: dict[str, Any], key: str) -> Any:
    if body.get(key) in (None, ""):
        raise UserError(400, f"{key} is required")
    return body[key]


def _as_int(value: Any, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(400, f"{key} must be an integer") from None


class UserActions:
    def __init__(self, world: World):
        self.world = world
        self._ids = itertools.count(1_000_001)
        self._group_ids = itertools.count(1)

    # --- who is there -------------------------------------------------------------------

    def user(self, user_id: Any) -> User:
        user = self.world.users.get(_as_int(user_id, "user_id"))
        if user is None:
            raise UserError(404, f"no user {user_id}; create it with POST /sandbox/users")
        return user

    def chat(self, chat_id: int) -> Chat:
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise UserError(404, f"no chat {chat_id}")
        return chat

    def create_user(self, body: dict[str, Any]) -> User:
        user_id = _as_int(body["id"], "id") if body.get("id") is not None else next(self._ids)
        if user_id <= 0:
            raise UserError(400, "id must be a positive integer")
        if user_id in self.world.users:
            raise UserError(409, f"user {user_id} already exists")
        user = User(
            id=user_id,
            first_name=str(_need(body, "first_name")),
            username=body.get("username") or None,
            last_name=body.get("last_name") or None,
            language_code=body.get("language_code") or None,
        )
        return self.world.add_user(user)

    def create_chat(self, body: dict[str, Any]) -> Chat:
        kind = body.get("type", "supergroup")
        if kind not in ("group", "supergroup"):
            raise UserError(400, "type must be 'group' or 'supergroup'")
        is_forum = bool(body.get("is_forum", False))
        if is_forum and kind != "supergroup":
            raise UserError(400, "only a supergroup can be a forum")
        members = [self.user(m).id for m in body.get("members", [])]
        if body.get("id") is not None:
            chat_id = _as_int(body["id"], "id")
        elif kind == "supergroup":
            chat_id = -1_000_000_000_000 - next(self._group_ids)
        else:
            chat_id = -next(self._group_ids)
        if chat_id >= 0 or chat_id in self.world.chats:
            raise UserError(409 if chat_id < 0 else 400, f"chat id {chat_id} is taken or invalid")
        chat = Chat(
            id=chat_id,
            type=kind,
            title=str(_need(body, "title")),
            is_forum=is_forum,
            members=members,
            next_message_id=2,  # message 1 is the group's creation; in a forum, the General topic
        )
        return self.world.add_chat(chat)

    def _member_chat(self, user: User, body: dict[str, Any]) -> Chat:
        chat = self.chat(_as_int(body.get("chat_id", user.id), "chat_id"))
        if user.id not in chat.members:
            raise UserError(403, f"user {user.id} is not a member of chat {chat.id}")
        if chat.user is not None and user.blocked_bot:
            raise UserError(
                409, "the user has blocked the bot; POST /sandbox/block with blocked=false"
            )
        return chat

    # --- topics -------------------------------------------------------------------------

    def create_topic(self, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(chat_id)
        user = self.user(_need(body, "user_id"))
        if not chat.is_forum:
            raise UserError(400, "the chat is not a forum")
        if user.id not in chat.members:
            raise UserError(403, f"user {user.id} is not a member of chat {chat.id}")
        color = _as_int(body.get("icon_color", TOPIC_COLORS[0]), "icon_color")
        topic, message = create_topic(
            self._ctx(), chat, user.to_api(), str(_need(body, "name")), color
        )
        update_id = self.world.enqueue("message", message)
        return {"update_id": update_id, "message_thread_id": topic.thread_id}

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        chat = self.chat(chat_id)
        if thread_id not in chat.topics:
            raise UserError(404, f"no topic {thread_id} in chat {chat_id}")
        delete_topic(self._ctx(), chat, thread_id)

    def _ctx(self) -> Ctx:
        return Ctx(self.world, FloodControl(enabled=False))

    # --- messages and buttons -----------------------------------------------------------

    def send(self, body: dict[str, Any], files: dict[str, web.FileField]) -> dict[str, Any]:
        user = self.user(_need(body, "user_id"))
        chat = self._member_chat(user, body)
        thread_id = None
        if body.get("message_thread_id") not in (None, ""):
            thread_id = _as_int(body["message_thread_id"], "message_thread_id")
            topic = chat.topics.get(thread_id)
            if topic is None:
                raise UserError(404, f"no topic {thread_id} in chat {chat.id}")
            if topic.closed:
                raise UserError(409, "the topic is closed")
        text = body.get("text")
        if text is None:
            text = body.get("caption")
        content: dict[str, Any] = {}
        try:
            if "photo" in files:
                stored = store_upload(self.world, "photo", _upload(files["photo"]))
                content["photo"] = photo_sizes(stored)
            elif "document" in files:
                stored = store_upload(self.world, "document", _upload(files["document"]))
                content["document"] = document(stored)
        except ApiError as exc:
            raise UserError(400, exc.description) from None
        if content and text:
            content["caption"] = text
        elif body.get("contact"):
            contact = dict(body["contact"])
            contact.setdefault("first_name", user.first_name)
            _need(contact, "phone_number")
            content["contact"] = contact
        elif text:
            content["text"] = str(text)
            content["entities"] = command_entities(str(text)) or None
        if not content:
            raise UserError(400, "send text, a photo, a document or a contact")
        reply_id = body.get("reply_to_message_id")
        if reply_id not in (None, ""):
            replied = chat.messages.get(_as_int(reply_id, "reply_to_message_id"))
            if replied is None:
                raise UserError(404, f"no message {reply_id} in chat {chat.id}")
            content["reply_to_message"] = {
                k: v for k, v in copy.deepcopy(replied).items() if k != "reply_to_message"
            }
        if chat.reply_keyboard and chat.reply_keyboard.get("one_time_keyboard"):
            chat.reply_keyboard = None
        message = self.world.new_message(chat, user.to_api(), thread_id, **content)
        update_id = self.world.enqueue("message", message)
        return {"update_id": update_id, "message_id": message["message_id"]}

    def press(self, body: dict[str, Any]) -> dict[str, Any]:
        user = self.user(_need(body, "user_id"))
        chat = self._member_chat(user, body)
        message_id = _as_int(_need(body, "message_id"), "message_id")
        message = chat.messages.get(message_id)
        if message is None:
            raise UserError(404, f"no message {message_id} in chat {chat.id}")
        buttons = [
            b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row
        ]
        if body.get("callback_data") is not None:
            matches = [b for b in buttons if b.get("callback_data") == body["callback_data"]]
        elif body.get("text") is not None:
            matches = [b for b in buttons if b.get("text") == body["text"]]
        else:
            raise UserError(400, "give callback_data or text")
        if not matches:
            raise UserError(404, f"message {message_id} has no such button")
        data = matches[0].get("callback_data")
        if data is None:
            raise UserError(400, "that button has no callback_data (it opens a URL or similar)")
        query_id = str(secrets.randbits(63))
        payload = {
            "id": query_id,
            "from": user.to_api(),
            "message": message,
            "chat_instance": str(abs(chat.id) * 7919 % 10**18),
            "data": data,
        }
        update_id = self.world.enqueue("callback_query", payload)
        self.world.callbacks[query_id] = CallbackQuery(
            id=query_id,
            user_id=user.id,
            chat_id=chat.id,
            message_id=message_id,
            data=data,
            update_id=update_id,
            created=time.time(),
        )
        return {"update_id": update_id, "callback_query_id": query_id}

    def block(self, body: dict[str, Any]) -> User:
        user = self.user(_need(body, "user_id"))
        blocked = bool(body.get("blocked", True))
        if user.blocked_bot != blocked:
            user.blocked_bot = blocked
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            new_member: dict[str, Any] = {"status": new, "user": self.world.bot}
            if new == "kicked":
                new_member["until_date"] = 0
            self.world.enqueue(
                "my_chat_member",
                {
                    "chat": self.world.chats[user.id].to_api(),
                    "from": user.to_api(),
                    "date": int(time.time()),
                    "old_chat_member": {"status": old, "user": self.world.bot}
                    | ({"until_date": 0} if old == "kicked" else {}),
                    "new_chat_member": new_member,
                },
            )
        return user


def _upload(field: web.FileField) -> Upload:
    return Upload(field.filename or field.name, field.content_type, field.file.read())
