"""Bot API methods that put messages in front of users: send, edit, delete, copy, media and
callback answers.

Each handler receives parameters already checked and coerced against the spec; what is left
here is what the spec cannot say: the limits in its prose (4096 characters, 1024 for a
caption, 1–64 bytes of callback_data, 200 for a callback answer), the state of the world
(does the chat, the topic, the message exist; has the user blocked the bot) and flood
control, each refused with the description Telegram gives.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from typing import Any

from sandbox.context import Ctx, Handler
from sandbox.entities import parse_text
from sandbox.media import document, photo_sizes, resolve_input_file
from sandbox.spec import ApiError, bad_request
from sandbox.world import Chat

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_CONTENT_KEYS = ("text", "entities", "photo", "document", "caption", "caption_entities", "contact")


# --- shared checks -------------------------------------------------------------------------


def chat_for_send(ctx: Ctx, p: dict[str, Any], key: str = "chat_id") -> Chat:
    chat = ctx.world.find_chat(p[key])
    if chat is None:
        raise bad_request("chat not found")
    if chat.user is not None and chat.user.blocked_bot:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def thread_for_send(chat: Chat, p: dict[str, Any]) -> int | None:
    thread_id = p.get("message_thread_id")
    if thread_id is None or (chat.is_forum and thread_id == 1):  # 1 is the General topic
        return None
    if not chat.is_forum or thread_id not in chat.topics:
        raise bad_request("message thread not found")
    return int(thread_id)


def formatted(
    p: dict[str, Any], text_key: str, entities_key: str, limit: int, required: bool
) -> tuple[str | None, list[dict[str, Any]] | None]:
    raw = p.get(text_key)
    if raw is None:
        return None, None
    text, entities = parse_text(raw, p.get("parse_mode"), p.get(entities_key))
    if required and not text.strip():
        raise bad_request("message text is empty")
    if len(text) > limit:
        raise bad_request("message is too long" if required else "message caption is too long")
    return text, entities or None


def inline_markup(p: dict[str, Any]) -> dict[str, Any] | None:
    """The inline keyboard of the message (validated), if the markup is one."""
    markup = p.get("reply_markup")
    if not markup or "inline_keyboard" not in markup:
        return None
    for row in markup["inline_keyboard"]:
        for button in row:
            actions = [a for a in _BUTTON_ACTIONS if button.get(a) is not None]
            if not actions:
                raise bad_request("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
                raise bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not re.match(r"^(https?|tg)://\S+$", url):
                raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    return {"inline_keyboard": markup["inline_keyboard"]}


def apply_reply_keyboard(chat: Chat, p: dict[str, Any]) -> None:
    markup = p.get("reply_markup") or {}
    if "keyboard" in markup:
        chat.reply_keyboard = markup
    elif markup.get("remove_keyboard"):
        chat.reply_keyboard = None


def replied_message(chat: Chat, p: dict[str, Any]) -> dict[str, Any] | None:
    params = p.get("reply_parameters")
    if not params:
        return None
    target = chat.messages.get(params["message_id"])
    if target is None:
        if params.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    reply = copy.deepcopy(target)
    reply.pop("reply_to_message", None)
    return reply


async def _send(ctx: Ctx, p: dict[str, Any], chat: Chat, **content: Any) -> dict[str, Any]:
    """The common tail of every send: keyboard, reply, flood control, then the message."""
    thread_id = thread_for_send(chat, p)
    markup = inline_markup(p)
    reply = replied_message(chat, p)
    ctx.flood.take(chat.id, chat.is_private)
    message = ctx.world.new_message(
        chat,
        ctx.world.bot,
        thread_id,
        reply_to_message=reply,
        reply_markup=markup,
        **content,
    )
    apply_reply_keyboard(chat, p)
    return message


# --- sending -------------------------------------------------------------------------------


async def send_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    text, entities = formatted(p, "text", "entities", TEXT_LIMIT, required=True)
    return await _send(ctx, p, chat, text=text, entities=entities)


async def send_photo(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    caption, entities = formatted(p, "caption", "caption_entities", CAPTION_LIMIT, required=False)
    stored = resolve_input_file(ctx.world, "photo", p["photo"], ctx.uploads)
    return await _send(
        ctx, p, chat, photo=photo_sizes(stored), caption=caption, caption_entities=entities
    )


async def send_document(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    caption, entities = formatted(p, "caption", "caption_entities", CAPTION_LIMIT, required=False)
    stored = resolve_input_file(ctx.world, "document", p["document"], ctx.uploads)
    return await _send(
        ctx, p, chat, document=document(stored), caption=caption, caption_entities=entities
    )


async def send_media_group(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    media = p["media"]
    if len(media) < 2:
        raise bad_request("MEDIA_GROUP_INVALID")
    if len(media) > 10:
        raise bad_request("too much messages to send as an album")
    kinds = {item["type"] for item in media}
    if not kinds <= {"photo", "document"}:
        raise bad_request(f"media type {sorted(kinds - {'photo', 'document'})[0]} is not supported")
    if "document" in kinds and len(kinds) > 1:
        raise bad_request("documents can't be mixed with other media types")
    thread_id = thread_for_send(chat, p)
    reply = replied_message(chat, p)
    prepared = []
    for item in media:
        caption, entities = formatted(
            {**item, "parse_mode": item.get("parse_mode")},
            "caption",
            "caption_entities",
            CAPTION_LIMIT,
            required=False,
        )
        stored = resolve_input_file(ctx.world, item["type"], item["media"], ctx.uploads)
        body = photo_sizes(stored) if item["type"] == "photo" else document(stored)
        prepared.append({item["type"]: body, "caption": caption, "caption_entities": entities})
    ctx.flood.take(chat.id, chat.is_private)
    group_id = str(secrets.randbits(60))
    return [
        ctx.world.new_message(
            chat,
            ctx.world.bot,
            thread_id,
            media_group_id=group_id,
            reply_to_message=reply,
            **content,
        )
        for content in prepared
    ]


async def send_chat_action(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    thread_for_send(chat, p)
    if p["action"] not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.chat_action = {"action": p["action"], "until": time.time() + 5}
    ctx.world.changed()
    return True


# --- copying -------------------------------------------------------------------------------


def _source(ctx: Ctx, p: dict[str, Any], message_id: int) -> dict[str, Any] | None:
    chat = ctx.world.find_chat(p["from_chat_id"])
    if chat is None:
        raise bad_request("chat not found")
    return chat.messages.get(message_id)


def _copy_content(ctx: Ctx, p: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    content = {k: copy.deepcopy(source[k]) for k in _CONTENT_KEYS if k in source}
    if not content:
        raise bad_request("message can't be copied")
    if "caption" in p and "text" not in content:
        caption, entities = formatted(
            p, "caption", "caption_entities", CAPTION_LIMIT, required=False
        )
        content["caption"], content["caption_entities"] = caption, entities
    return content


async def copy_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    source = _source(ctx, p, p["message_id"])
    if source is None:
        raise bad_request("message to copy not found")
    chat = chat_for_send(ctx, p)
    message = await _send(ctx, p, chat, **_copy_content(ctx, p, source))
    return {"message_id": message["message_id"]}


async def copy_messages(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    thread_id = thread_for_send(chat, p)
    ids = sorted(set(p["message_ids"]))
    if not 1 <= len(ids) <= 100:
        raise bad_request("message identifiers are not specified")
    sources = [s for s in (_source(ctx, p, i) for i in ids) if s is not None]
    if not sources:
        raise bad_request("messages to copy not found")
    contents = [_copy_content(ctx, {}, s) for s in sources]
    ctx.flood.take(chat.id, chat.is_private, len(contents))
    return [
        {"message_id": ctx.world.new_message(chat, ctx.world.bot, thread_id, **c)["message_id"]}
        for c in contents
    ]


async def forward_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    source = _source(ctx, p, p["message_id"])
    if source is None:
        raise bad_request("message to forward not found")
    chat = chat_for_send(ctx, p)
    content = _copy_content(ctx, {}, source)
    origin = {"type": "user", "sender_user": source["from"], "date": source["date"]}
    return await _send(ctx, {**p, "reply_markup": None}, chat, forward_origin=origin, **content)


# --- editing and deleting ------------------------------------------------------------------


def _own_message(ctx: Ctx, p: dict[str, Any], verb: str) -> tuple[Chat, dict[str, Any]]:
    if p.get("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    if p.get("chat_id") is None:
        raise bad_request("chat_id is empty")
    if p.get("message_id") is None:
        raise bad_request("message identifier is not specified")
    chat = chat_for_send(ctx, p)
    message = chat.messages.get(p["message_id"])
    if message is None:
        raise bad_request(f"message to {verb} not found")
    if verb == "edit" and message["from"]["id"] != ctx.world.bot["id"]:
        raise bad_request("message can't be edited")
    return chat, message


def _commit_edit(ctx: Ctx, message: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    if all(message.get(k) == v for k, v in changes.items()):
        raise bad_request(NOT_MODIFIED)
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    message["edit_date"] = int(time.time())
    ctx.world.changed()
    return message


async def edit_message_text(ctx: Ctx, p: dict[str, Any]) -> Any:
    _, message = _own_message(ctx, p, "edit")
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    text, entities = formatted(p, "text", "entities", TEXT_LIMIT, required=True)
    changes = {"text": text, "entities": entities, "reply_markup": inline_markup(p)}
    return _commit_edit(ctx, message, changes)


async def edit_message_caption(ctx: Ctx, p: dict[str, Any]) -> Any:
    _, message = _own_message(ctx, p, "edit")
    if "text" in message:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = formatted(p, "caption", "caption_entities", CAPTION_LIMIT, required=False)
    changes = {"caption": caption, "caption_entities": entities, "reply_markup": inline_markup(p)}
    return _commit_edit(ctx, message, changes)


async def edit_message_reply_markup(ctx: Ctx, p: dict[str, Any]) -> Any:
    _, message = _own_message(ctx, p, "edit")
    return _commit_edit(ctx, message, {"reply_markup": inline_markup(p)})


async def delete_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat, message = _own_message(ctx, p, "delete")
    del chat.messages[message["message_id"]]
    ctx.world.changed()
    return True


async def delete_messages(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = chat_for_send(ctx, p)
    found = [i for i in p["message_ids"] if i in chat.messages]
    if not found:
        raise bad_request("message to delete not found")
    for message_id in found:
        del chat.messages[message_id]
    ctx.world.changed()
    return True


# --- callback queries ----------------------------------------------------------------------


async def answer_callback_query(ctx: Ctx, p: dict[str, Any]) -> Any:
    query = ctx.world.callbacks.get(p["callback_query_id"])
    if query is None or query.answer is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.get("text")
    if text is not None and len(text) > CALLBACK_ANSWER_LIMIT:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answer = {
        "text": text,
        "show_alert": bool(p.get("show_alert")),
        "url": p.get("url"),
        "at": time.time(),
    }
    ctx.world.changed()
    return True


HANDLERS: dict[str, Handler] = {
    "sendMessage": send_message,
    "sendPhoto": send_photo,
    "sendDocument": send_document,
    "sendMediaGroup": send_media_group,
    "sendChatAction": send_chat_action,
    "copyMessage": copy_message,
    "copyMessages": copy_messages,
    "forwardMessage": forward_message,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "deleteMessages": delete_messages,
    "answerCallbackQuery": answer_callback_query,
}
