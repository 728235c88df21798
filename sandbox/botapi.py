"""The bot's side of the sandbox: ``/bot<token>/<method>`` and ``/file/bot<token>/<path>``.

Requests come as JSON, form-urlencoded or multipart (GET with a query string works too), as
Telegram accepts them; every answer has Telegram's envelope. Each call is checked against
the spec, passed through the injected faults, executed, and written to the call log with
its verdict, which is what ``GET /sandbox/calls`` and ``POST /sandbox/wait-idle`` read.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox import botmeta, messaging
from sandbox.context import Ctx, Handler
from sandbox.faults import Faults
from sandbox.flood import FloodControl, too_many_requests
from sandbox.media import DOWNLOAD_LIMIT
from sandbox.spec import ApiError, Spec, Upload, bad_request
from sandbox.world import World

HANDLERS: dict[str, Handler] = {**messaging.HANDLERS, **botmeta.HANDLERS}
IMPLEMENTED = frozenset(HANDLERS)

_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class _Drop(Exception):
    """The connection is to be closed without an answer."""


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    drop: bool = False


def _loggable(value: Any) -> Any:
    if isinstance(value, Upload):
        return {"upload": value.filename, "size": len(value.data)}
    if isinstance(value, dict):
        return {k: _loggable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_loggable(v) for v in value]
    return value


class BotApi:
    def __init__(self, world: World, flood: FloodControl, faults: Faults, spec: Spec):
        self.world = world
        self.flood = flood
        self.faults = faults
        self.spec = spec

    def setup(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self.download)

    # --- HTTP ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.world.token:
            return _answer(Outcome(401, ApiError(401, "Unauthorized").to_json()))
        try:
            params, uploads = await _read_params(request)
        except ApiError as exc:
            return _answer(Outcome(exc.code, exc.to_json()))
        outcome = await self.invoke(request.match_info["method"], params, uploads)
        if outcome.drop:
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return _answer(outcome)

    async def download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.world.token:
            return _answer(Outcome(401, ApiError(401, "Unauthorized").to_json()))
        stored = self.world.file_by_path(request.match_info["path"])
        if stored is None:
            return _answer(Outcome(404, ApiError(404, "Not Found").to_json()))
        if len(stored.data) > DOWNLOAD_LIMIT:
            return _answer(Outcome(400, bad_request("file is too big").to_json()))
        return web.Response(body=stored.data, content_type=stored.mime_type)

    # --- one call -----------------------------------------------------------------------

    async def invoke(
        self, method_name: str, params: dict[str, Any], uploads: dict[str, Upload]
    ) -> Outcome:
        """Run one Bot API call and log it; also used for methods in webhook answers."""
        world = self.world
        method = self.spec.canonical(method_name) or method_name
        polling = method == "getUpdates"
        started = time.monotonic()
        record: dict[str, Any] = {
            "seq": next(world.call_seq),
            "at": time.time(),
            "method": method,
            "params": _loggable(params),
        }
        if not polling:
            world.inflight += 1
            world.touch()
        outcome = Outcome(200, {})
        try:
            result = await self._run(method, params, uploads, record)
            outcome.body = {"ok": True, "result": result}
        except ApiError as exc:
            outcome = Outcome(exc.code, exc.to_json())
        except _Drop:
            outcome = Outcome(0, {}, drop=True)
        finally:
            record.update(
                ok=outcome.body.get("ok", False),
                status=outcome.status,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )
            if outcome.drop:
                record["description"] = "connection dropped"
            elif not outcome.body.get("ok"):
                record["error_code"] = outcome.body.get("error_code")
                record["description"] = outcome.body.get("description")
            else:
                record["result"] = outcome.body["result"]
            world.calls.append(record)
            if not polling:
                world.inflight -= 1
                world.touch()
            world.changed()
        return outcome

    async def _run(
        self,
        method: str,
        params: dict[str, Any],
        uploads: dict[str, Upload],
        record: dict[str, Any],
    ) -> Any:
        if method not in self.spec.methods:
            raise ApiError(404, "Not Found")
        faults = self.faults.draw(method)
        if faults:
            record["faults"] = [f.id for f in faults]
        for fault in faults:
            if fault.kind == "latency":
                await asyncio.sleep(fault.delay_ms / 1000)
        drop_after = False
        for fault in faults:
            if fault.kind == "5xx":
                raise ApiError(fault.status, _REASONS.get(fault.status, "Internal Server Error"))
            if fault.kind == "429":
                raise too_many_requests(fault.retry_after)
            if fault.kind == "400":
                raise bad_request(fault.description)
            if fault.kind == "drop":
                if fault.when == "before":
                    raise _Drop
                drop_after = True
        handler = HANDLERS.get(method)
        if handler is None:
            raise bad_request(f"method {method} is not implemented by the sandbox")
        checked = self.spec.validate(method, params)
        record["params"] = _loggable(checked)
        result = await handler(Ctx(self.world, self.flood, uploads), checked)
        if drop_after:
            raise _Drop
        return result


def _answer(outcome: Outcome) -> web.Response:
    return web.json_response(outcome.body, status=outcome.status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.body_exists:
        return params, uploads
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            raise bad_request("can't parse JSON request") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                upload = Upload(value.filename or key, value.content_type, value.file.read())
                uploads[key] = upload
                params[key] = upload
            else:
                params[key] = value
    return params, uploads
