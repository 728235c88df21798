"""The control side, ``/sandbox/...``: users act, tests look, faults get injected.

Every route takes and answers JSON. Errors answer ``{"error": "<what went wrong>"}`` with a
4xx status. The shapes below are a contract shared with the web chat and the tests.

Users and chats
  POST /sandbox/users        {id?, first_name, username?, last_name?, language_code?}
                             → 201 {"user": User, "chat_id": int}  (creates the private chat)
  GET  /sandbox/users        → {"users": [User]}
      User = {id, first_name, username?, last_name?, language_code?, blocked: bool}
  POST /sandbox/chats        {id?, type: "group"|"supergroup", title, is_forum?: bool,
                              members: [user_id]}  → 201 {"chat": Chat}
  GET  /sandbox/chats?user_id=N → {"chats": [Chat]}   (all chats without user_id)
      Chat = {id, type: "private"|"group"|"supergroup", title, is_forum, members: [user_id],
              topics: [{message_thread_id, name, icon_color, closed}]}
  POST   /sandbox/chats/{chat_id}/topics {user_id, name, icon_color?}
                             → {"update_id": N, "message_thread_id": T}
  DELETE /sandbox/chats/{chat_id}/topics/{thread_id}   → {"deleted": true}  (a user deletes it)

What users do (both answer the new update's id)
  POST /sandbox/messages     JSON {user_id, chat_id?, text?, message_thread_id?,
                             reply_to_message_id?, contact?: {phone_number, first_name, ...}}
                             or multipart with the same fields plus a "photo" or "document"
                             file part ("text" or "caption" becomes the caption)
                             → {"update_id": N, "message_id": M}
  POST /sandbox/press        {user_id, chat_id?, message_id, callback_data? | text?}
                             → {"update_id": N, "callback_query_id": "..."}
  POST /sandbox/block        {user_id, blocked?: true} → {"user": User}

What users see
  GET /sandbox/chats/{chat_id}/messages?thread_id=T →
      {"chat": Chat, "messages": [Message], "reply_keyboard": ReplyKeyboardMarkup | null,
       "chat_action": {"action", "until"} | null,
       "callback_answers": [{callback_query_id, message_id, user_id, data, answered, text,
                             show_alert}]}
      Message = {message_id, date, edit_date?, from: {id, first_name, username?, is_bot},
                 outgoing: bool (sent by the bot), message_thread_id?, reply_to_message_id?,
                 text? | caption?, entities: [...], html: "safe HTML of the formatted text",
                 reply_markup: InlineKeyboardMarkup | null,
                 photo?: {file_id, url, width, height},
                 document?: {file_id, url, file_name, mime_type, file_size},
                 contact?, media_group_id?, forwarded?, service?: {type, ...}}
  GET /sandbox/files/{file_id} → the file's bytes (the "url" above)

For tests
  GET    /sandbox/calls?method=M&ok=true|false&since=SEQ →
      {"calls": [{seq, at, method, params, ok, status, error_code?, description?, result?,
                  duration_ms, faults?}],
       "unanswered_callback_queries": [{id, user_id, chat_id, message_id, data, update_id}]}
  POST   /sandbox/faults     {kind: "5xx"|"latency"|"drop"|"429"|"400", method?: "*",
                              status?: 500, delay_ms?, retry_after?, count?, probability?,
                              seed?, when?: "before"|"after", description?} → 201 {"fault": Fault}
  GET    /sandbox/faults     → {"faults": [Fault]};  DELETE /sandbox/faults → {"cleared": n}
  POST   /sandbox/wait-idle  {quiet_ms?: 100, timeout_ms?: 10000} → {"idle": true, ...} once no
                             update is pending, no call is in flight and the bot has been
                             quiet for quiet_ms; 408 {"idle": false, ...} on timeout
  POST   /sandbox/wait-calls {method?, ok?, text_contains?, params?: {}, count?: 1,
                              distinct?: false, timeout_ms?: 10000} → {"calls": [...matching]}
                             once at least ``count`` logged calls match (text: ``params.text``
                             or ``params.caption``; ``params``: each given parameter equal, as
                             a string; ``distinct``: counted by distinct text);
                             408 {"calls": [...]} on timeout
  GET    /sandbox/updates    → {"pending": [Update]}
  POST   /sandbox/reset      → {"reset": true}  (everything but the bot's token)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from sandbox.faults import Faults
from sandbox.flood import FloodControl
from sandbox.users import UserActions, UserError
from sandbox.views import chat_view, conversation_view, user_view
from sandbox.world import World


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise UserError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise UserError(400, "the body must be a JSON object")
    return body


@web.middleware
async def _user_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except UserError as exc:
        return _error(exc.status, exc.message)


class Control:
    def __init__(self, world: World, flood: FloodControl, faults: Faults):
        self.world = world
        self.flood = flood
        self.faults = faults
        self.users = UserActions(world)

    def setup(self, app: web.Application) -> None:
        app.middlewares.append(_user_errors)
        r = app.router
        r.add_post("/sandbox/users", self.create_user)
        r.add_get("/sandbox/users", self.list_users)
        r.add_post("/sandbox/chats", self.create_chat)
        r.add_get("/sandbox/chats", self.list_chats)
        r.add_get("/sandbox/chats/{chat_id}/messages", self.chat_messages)
        r.add_post("/sandbox/chats/{chat_id}/topics", self.create_topic)
        r.add_delete("/sandbox/chats/{chat_id}/topics/{thread_id}", self.delete_topic)
        r.add_post("/sandbox/messages", self.send_message)
        r.add_post("/sandbox/press", self.press)
        r.add_post("/sandbox/block", self.block)
        r.add_get("/sandbox/files/{file_id}", self.file)
        r.add_get("/sandbox/calls", self.calls)
        r.add_post("/sandbox/faults", self.add_fault)
        r.add_get("/sandbox/faults", self.list_faults)
        r.add_delete("/sandbox/faults", self.clear_faults)
        r.add_post("/sandbox/wait-idle", self.wait_idle)
        r.add_post("/sandbox/wait-calls", self.wait_calls)
        r.add_get("/sandbox/updates", self.pending_updates)
        r.add_post("/sandbox/reset", self.reset)

    # --- users and chats ----------------------------------------------------------------

    async def create_user(self, request: web.Request) -> web.Response:
        user = self.users.create_user(await _body(request))
        return web.json_response({"user": user_view(user), "chat_id": user.id}, status=201)

    async def list_users(self, request: web.Request) -> web.Response:
        return web.json_response({"users": [user_view(u) for u in self.world.users.values()]})

    async def create_chat(self, request: web.Request) -> web.Response:
        chat = self.users.create_chat(await _body(request))
        return web.json_response({"chat": chat_view(chat)}, status=201)

    async def list_chats(self, request: web.Request) -> web.Response:
        user_id = request.query.get("user_id")
        if user_id is None:
            chats = list(self.world.chats.values())
        else:
            chats = self.world.chats_of(_int(user_id, "user_id"))
        return web.json_response({"chats": [chat_view(c) for c in chats]})

    async def chat_messages(self, request: web.Request) -> web.Response:
        chat = self.users.chat(_int(request.match_info["chat_id"], "chat_id"))
        thread = request.query.get("thread_id")
        view = conversation_view(
            self.world, chat, None if thread is None else _int(thread, "thread_id")
        )
        return web.json_response(view)

    async def create_topic(self, request: web.Request) -> web.Response:
        body = await _body(request)
        chat_id = _int(request.match_info["chat_id"], "chat_id")
        return web.json_response(self.users.create_topic(chat_id, body))

    async def delete_topic(self, request: web.Request) -> web.Response:
        self.users.delete_topic(
            _int(request.match_info["chat_id"], "chat_id"),
            _int(request.match_info["thread_id"], "thread_id"),
        )
        return web.json_response({"deleted": True})

    # --- what users do ------------------------------------------------------------------

    async def send_message(self, request: web.Request) -> web.Response:
        if request.content_type == "multipart/form-data":
            form = await request.post()
            fields: dict[str, Any] = {}
            files: dict[str, web.FileField] = {}
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value
                else:
                    fields[key] = value
            return web.json_response(self.users.send(fields, files))
        return web.json_response(self.users.send(await _body(request), {}))

    async def press(self, request: web.Request) -> web.Response:
        return web.json_response(self.users.press(await _body(request)))

    async def block(self, request: web.Request) -> web.Response:
        user = self.users.block(await _body(request))
        return web.json_response({"user": user_view(user)})

    async def file(self, request: web.Request) -> web.StreamResponse:
        stored = self.world.files.get(request.match_info["file_id"])
        if stored is None:
            return _error(404, "no such file")
        return web.Response(
            body=stored.data,
            content_type=stored.mime_type,
            headers={"Content-Disposition": f'inline; filename="{stored.file_name}"'},
        )

    # --- for tests ----------------------------------------------------------------------

    async def calls(self, request: web.Request) -> web.Response:
        q = request.query
        since = _int(q.get("since", "0"), "since")
        calls = [c for c in self.world.calls if c["seq"] > since]
        if "method" in q:
            calls = [c for c in calls if c["method"] == q["method"]]
        if "ok" in q:
            wanted = q["ok"].lower() in ("1", "true", "yes")
            calls = [c for c in calls if c["ok"] == wanted]
        unanswered = [
            {
                "id": cb.id,
                "user_id": cb.user_id,
                "chat_id": cb.chat_id,
                "message_id": cb.message_id,
                "data": cb.data,
                "update_id": cb.update_id,
            }
            for cb in self.world.callbacks.values()
            if cb.answer is None
        ]
        return web.json_response({"calls": calls, "unanswered_callback_queries": unanswered})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = self.faults.add(await _body(request))
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return web.json_response({"fault": fault.to_json()}, status=201)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in self.faults.rules]})

    async def clear_faults(self, request: web.Request) -> web.Response:
        count = len(self.faults.rules)
        self.faults.clear()
        return web.json_response({"cleared": count})

    async def wait_idle(self, request: web.Request) -> web.Response:
        body = await _body(request)
        quiet = float(body.get("quiet_ms", 100)) / 1000
        deadline = time.monotonic() + float(body.get("timeout_ms", 10_000)) / 1000
        world = self.world
        started = time.monotonic()
        while True:
            now = time.monotonic()
            quiet_for = now - world.last_activity
            busy = world.pending_count > 0 or world.inflight > 0
            state = {
                "pending": world.pending_count,
                "inflight": world.inflight,
                "waited_ms": round((now - started) * 1000, 1),
            }
            if not busy and quiet_for >= quiet:
                return web.json_response({"idle": True, **state})
            if now >= deadline:
                return web.json_response({"idle": False, **state}, status=408)
            step = deadline - now if busy else min(quiet - quiet_for, deadline - now)
            await world.wait_changed(max(step, 0.001))

    async def wait_calls(self, request: web.Request) -> web.Response:
        """Until enough logged calls match: a test waits for the bot's work, not for time."""
        body = await _body(request)
        method, ok = body.get("method"), body.get("ok")
        needle = body.get("text_contains")
        wanted = {str(k): str(v) for k, v in (body.get("params") or {}).items()}
        count = int(body.get("count", 1))
        distinct = bool(body.get("distinct", False))
        deadline = time.monotonic() + float(body.get("timeout_ms", 10_000)) / 1000

        def text(call: dict[str, Any]) -> str:
            params = call.get("params") or {}
            return str(params.get("text") or params.get("caption") or "")

        def matching() -> list[dict[str, Any]]:
            return [
                c
                for c in self.world.calls
                if (method is None or c["method"] == method)
                and (ok is None or c["ok"] == bool(ok))
                and (needle is None or needle in text(c))
                and all(str((c.get("params") or {}).get(k)) == v for k, v in wanted.items())
            ]

        while True:
            found = matching()
            have = len({text(c) for c in found}) if distinct else len(found)
            if have >= count:
                return web.json_response({"calls": found})
            left = deadline - time.monotonic()
            if left <= 0:
                return web.json_response({"calls": found}, status=408)
            await self.world.wait_changed(left)

    async def pending_updates(self, request: web.Request) -> web.Response:
        return web.json_response({"pending": list(self.world.updates)})

    async def reset(self, request: web.Request) -> web.Response:
        self.world.reset()
        self.flood.reset()
        self.faults.clear()
        await asyncio.sleep(0)
        return web.json_response({"reset": True})


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(400, f"{name} must be an integer") from None
