"""What the control side shows: users, chats and messages as a Telegram client displays them.

These JSON shapes are a public contract (the web chat and the tests read them); see the
docstring of ``control.py`` for the full list. File URLs are relative to the sandbox root so
the web chat can use them as they are.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.entities import to_html
from sandbox.world import Chat, User, World

_SERVICE_KEYS = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
)


def file_url(file_id: str) -> str:
    return f"/sandbox/files/{file_id}"


def user_view(user: User) -> dict[str, Any]:
    data = user.to_api()
    data.pop("is_bot")
    data["blocked"] = user.blocked_bot
    return data


def chat_view(chat: Chat) -> dict[str, Any]:
    title = chat.title
    if chat.user is not None:
        title = " ".join(filter(None, (chat.user.first_name, chat.user.last_name)))
    return {
        "id": chat.id,
        "type": chat.type,
        "title": title,
        "is_forum": chat.is_forum,
        "members": list(chat.members),
        "topics": [{**topic.to_api(), "closed": topic.closed} for topic in chat.topics.values()],
    }


def message_view(world: World, message: dict[str, Any]) -> dict[str, Any]:
    sender = message.get("from") or {}
    view: dict[str, Any] = {
        "message_id": message["message_id"],
        "date": message["date"],
        "from": {k: sender[k] for k in ("id", "first_name", "username", "is_bot") if k in sender},
        "outgoing": bool(sender.get("is_bot")),
        "reply_markup": message.get("reply_markup"),
    }
    for key in ("edit_date", "message_thread_id", "media_group_id", "contact"):
        if key in message:
            view[key] = message[key]
    if "reply_to_message" in message:
        view["reply_to_message_id"] = message["reply_to_message"]["message_id"]
    if "forward_origin" in message:
        view["forwarded"] = True
    if "text" in message or "caption" in message:
        text_key, entities_key = (
            ("text", "entities") if "text" in message else ("caption", "caption_entities")
        )
        view[text_key] = message[text_key]
        view["entities"] = message.get(entities_key) or []
        view["html"] = to_html(message[text_key], view["entities"])
    if "photo" in message:
        biggest = message["photo"][-1]
        view["photo"] = {
            "file_id": biggest["file_id"],
            "url": file_url(biggest["file_id"]),
            "width": biggest["width"],
            "height": biggest["height"],
        }
    if "document" in message:
        doc = message["document"]
        view["document"] = {
            "file_id": doc["file_id"],
            "url": file_url(doc["file_id"]),
            "file_name": doc.get("file_name"),
            "mime_type": doc.get("mime_type"),
            "file_size": doc.get("file_size"),
        }
    for key in _SERVICE_KEYS:
        if key in message:
            view["service"] = {"type": key, **message[key]}
    return view


def conversation_view(world: World, chat: Chat, thread_id: int | None) -> dict[str, Any]:
    messages = [
        message_view(world, m)
        for m in chat.messages.values()
        if thread_id is None or m.get("message_thread_id") == thread_id
    ]
    action = chat.chat_action
    if action is not None and action["until"] < time.time():
        action = None
    answers = [
        {
            "callback_query_id": q.id,
            "message_id": q.message_id,
            "user_id": q.user_id,
            "data": q.data,
            "answered": q.answer is not None,
            "text": (q.answer or {}).get("text"),
            "show_alert": (q.answer or {}).get("show_alert", False),
        }
        for q in world.callbacks.values()
        if q.chat_id == chat.id
    ]
    return {
        "chat": chat_view(chat),
        "messages": messages,
        "reply_keyboard": chat.reply_keyboard,
        "chat_action": action,
        "callback_answers": answers[-20:],
    }
