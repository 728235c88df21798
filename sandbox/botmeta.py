"""Bot API methods about the bot itself rather than its messages: identity, receiving
updates (long polling and webhooks), commands, files, chats and forum topics.

getUpdates keeps Telegram's delivery contract: an update stays queued until a later call
passes an ``offset`` above its id (at-least-once), a newer getUpdates call terminates an
older one still waiting with 409, and getUpdates is refused with 409 while a webhook is set.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from sandbox.context import Ctx, Handler
from sandbox.media import DOWNLOAD_LIMIT
from sandbox.messaging import chat_for_send
from sandbox.spec import ApiError, bad_request, load_spec
from sandbox.world import Chat, Topic, Webhook

TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


async def get_me(ctx: Ctx, p: dict[str, Any]) -> Any:
    return {
        **ctx.world.bot,
        "can_join_groups": True,
        "can_read_all_group_messages": True,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def accept(ctx: Ctx, p: dict[str, Any]) -> Any:
    """Settings the sandbox takes note of but that change nothing users see."""
    return True


# --- receiving updates ---------------------------------------------------------------------


async def get_updates(ctx: Ctx, p: dict[str, Any]) -> Any:
    world = ctx.world
    if world.webhook is not None:
        raise ApiError(409, WEBHOOK_ACTIVE)
    world.poll_generation += 1
    generation = world.poll_generation
    world.changed()  # an older getUpdates still waiting wakes up and is terminated
    if "allowed_updates" in p:
        world.allowed_updates = p["allowed_updates"] or None
    offset = p.get("offset")
    if offset is not None and offset < 0:
        world.forget_all_but_last(-offset)
    elif offset is not None:
        world.confirm_below(offset)
    limit = min(max(int(p.get("limit") or 100), 1), 100)
    deadline = time.monotonic() + max(int(p.get("timeout") or 0), 0)
    while True:
        world.drop_unwanted()
        if world.updates:
            world.touch()
            return [dict(u) for u in list(world.updates)[:limit]]
        remaining = deadline - time.monotonic()
        if remaining <= 0 or world.closing:
            return []
        await world.wait_changed(remaining)
        if world.poll_generation != generation:
            raise ApiError(409, TERMINATED)
        if world.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE)


async def set_webhook(ctx: Ctx, p: dict[str, Any]) -> Any:
    world = ctx.world
    url = p["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
    secret = p.get("secret_token")
    if secret is not None and not _SECRET_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = int(p.get("max_connections") or 40)
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    if "allowed_updates" in p:
        world.allowed_updates = p["allowed_updates"] or None
    if p.get("drop_pending_updates"):
        world.updates.clear()
    world.webhook = Webhook(url=url, secret_token=secret, max_connections=max_connections)
    world.changed()
    return True


async def delete_webhook(ctx: Ctx, p: dict[str, Any]) -> Any:
    world = ctx.world
    world.webhook = None
    if p.get("drop_pending_updates"):
        world.updates.clear()
    world.changed()
    return True


async def get_webhook_info(ctx: Ctx, p: dict[str, Any]) -> Any:
    world = ctx.world
    hook = world.webhook
    info: dict[str, Any] = {
        "url": hook.url if hook else "",
        "has_custom_certificate": False,
        "pending_update_count": world.pending_count,
    }
    if hook is not None:
        info["max_connections"] = hook.max_connections
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        if world.allowed_updates:
            info["allowed_updates"] = world.allowed_updates
    return info


# --- commands ------------------------------------------------------------------------------


def _scope_key(ctx: Ctx, p: dict[str, Any]) -> tuple[str, str]:
    scope = dict(p.get("scope") or {"type": "default"})
    if "chat_id" in scope:
        chat = ctx.world.find_chat(scope["chat_id"])
        if chat is None:
            raise bad_request("chat not found")
        scope["chat_id"] = chat.id
    return json.dumps(scope, sort_keys=True), p.get("language_code") or ""


async def set_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    commands = p["commands"]
    if len(commands) > 100:
        raise bad_request("too much commands specified")
    cleaned = []
    for command in commands:
        name = command["command"].removeprefix("/")
        if not _COMMAND_RE.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(command["description"]) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": name, "description": command["description"]})
    ctx.world.commands[_scope_key(ctx, p)] = cleaned
    return True


async def get_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    return ctx.world.commands.get(_scope_key(ctx, p), [])


async def delete_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    ctx.world.commands.pop(_scope_key(ctx, p), None)
    return True


# --- files and chats -----------------------------------------------------------------------


async def get_file(ctx: Ctx, p: dict[str, Any]) -> Any:
    stored = ctx.world.files.get(p["file_id"])
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > DOWNLOAD_LIMIT:
        raise bad_request("file is too big")
    return stored.to_api()


def _known_chat(ctx: Ctx, chat_id: Any) -> Chat:
    chat = ctx.world.find_chat(chat_id)
    if chat is None:
        raise bad_request("chat not found")
    return chat


async def get_chat(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = _known_chat(ctx, p["chat_id"])
    return {
        **chat.to_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


def _administrator(user: dict[str, Any]) -> dict[str, Any]:
    """A ChatMemberAdministrator with every right the spec lists (the bot runs the group)."""
    fields = load_spec().types["ChatMemberAdministrator"]["fields"]
    member: dict[str, Any] = {"status": "administrator", "user": user}
    for field in fields:
        if field["required"] and field["types"] == ["Boolean"]:
            member[field["name"]] = field["name"] not in ("can_be_edited", "is_anonymous")
    return member


async def get_chat_member(ctx: Ctx, p: dict[str, Any]) -> Any:
    world = ctx.world
    chat = _known_chat(ctx, p["chat_id"])
    user_id = p["user_id"]
    if user_id == world.bot["id"]:
        if chat.is_private:
            return {"status": "member", "user": world.bot}
        return _administrator(world.bot)
    user = world.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    if chat.user is not None:
        return {"status": "member", "user": user.to_api()}
    status = "member" if user_id in chat.members else "left"
    return {"status": status, "user": user.to_api()}


# --- forum topics --------------------------------------------------------------------------


def _forum(ctx: Ctx, p: dict[str, Any]) -> Chat:
    chat = chat_for_send(ctx, p)
    if not chat.is_forum:
        raise bad_request("the chat is not a forum")
    return chat


def _topic(ctx: Ctx, p: dict[str, Any]) -> tuple[Chat, Topic]:
    chat = _forum(ctx, p)
    topic = chat.topics.get(p["message_thread_id"])
    if topic is None:
        raise bad_request("message thread not found")
    return chat, topic


def _service(ctx: Ctx, chat: Chat, topic: Topic, **event: Any) -> None:
    ctx.world.new_message(chat, ctx.world.bot, topic.thread_id, **event)


async def create_forum_topic(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat = _forum(ctx, p)
    name = p["name"]
    if not 1 <= len(name) <= 128:
        raise bad_request("TOPIC_TITLE_EMPTY" if not name else "TOPIC_TITLE_TOO_LONG")
    color = p.get("icon_color", TOPIC_COLORS[0])
    if color not in TOPIC_COLORS:
        raise bad_request("TOPIC_ICON_COLOR_INVALID")
    topic, _ = create_topic(ctx, chat, ctx.world.bot, name, color, p.get("icon_custom_emoji_id"))
    return topic.to_api()


def create_topic(
    ctx: Ctx,
    chat: Chat,
    sender: dict[str, Any],
    name: str,
    color: int,
    emoji: str | None = None,
) -> tuple[Topic, dict[str, Any]]:
    """Open a topic: its id is the id of the service message that starts it, as in Telegram."""
    thread_id = chat.next_message_id
    topic = Topic(thread_id=thread_id, name=name, icon_color=color, icon_custom_emoji_id=emoji)
    chat.topics[thread_id] = topic
    created = {"name": name, "icon_color": color}
    if emoji:
        created["icon_custom_emoji_id"] = emoji
    message = ctx.world.new_message(chat, sender, thread_id, forum_topic_created=created)
    return topic, message


async def edit_forum_topic(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat, topic = _topic(ctx, p)
    changes = {k: p[k] for k in ("name", "icon_custom_emoji_id") if k in p}
    if "name" in changes and not 1 <= len(changes["name"]) <= 128:
        raise bad_request("TOPIC_TITLE_EMPTY")
    if all(getattr(topic, k) == v for k, v in changes.items()):
        raise bad_request("TOPIC_NOT_MODIFIED")
    for key, value in changes.items():
        setattr(topic, key, value)
    _service(ctx, chat, topic, forum_topic_edited=changes)
    return True


async def close_forum_topic(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat, topic = _topic(ctx, p)
    if topic.closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.closed = True
    _service(ctx, chat, topic, forum_topic_closed={})
    return True


async def reopen_forum_topic(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat, topic = _topic(ctx, p)
    if not topic.closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic.closed = False
    _service(ctx, chat, topic, forum_topic_reopened={})
    return True


async def delete_forum_topic(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat, topic = _topic(ctx, p)
    delete_topic(ctx, chat, topic.thread_id)
    return True


def delete_topic(ctx: Ctx, chat: Chat, thread_id: int) -> None:
    """A deleted topic takes its messages with it; later sends get 'thread not found'."""
    chat.topics.pop(thread_id, None)
    for message_id in ctx.world.thread_messages(chat, thread_id):
        del chat.messages[message_id]
    ctx.world.changed()


HANDLERS: dict[str, Handler] = {
    "getMe": get_me,
    "logOut": accept,
    "close": accept,
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "setMyDescription": accept,
    "setMyShortDescription": accept,
    "setMyName": accept,
    "setChatMenuButton": accept,
    "getFile": get_file,
    "getChat": get_chat,
    "getChatMember": get_chat_member,
    "createForumTopic": create_forum_topic,
    "editForumTopic": edit_forum_topic,
    "closeForumTopic": close_forum_topic,
    "reopenForumTopic": reopen_forum_topic,
    "deleteForumTopic": delete_forum_topic,
}
