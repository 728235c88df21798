"""Webhook delivery, as Telegram does it: POST each update to the bot's URL with the secret
token header, one at a time and in order, and keep an update until the bot answers 2xx.

A failed or timed-out delivery is retried with a growing pause (scaled like flood control)
and reported in getWebhookInfo's ``last_error_*``. A bot may answer a delivery with a Bot
API call in the response body (JSON or multipart, as aiogram writes it); it is executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from http import HTTPStatus
from typing import Any

import aiohttp

from sandbox.botapi import BotApi
from sandbox.spec import Upload
from sandbox.world import Webhook, World

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BACKOFF = 60.0


class WebhookDeliverer:
    def __init__(self, world: World, api: BotApi, timeout: float, scale: float):
        self.world = world
        self.api = api
        self.timeout = timeout
        self.scale = scale
        self.failures = 0
        self.deliveries = 0

    async def run(self) -> None:
        """Deliver until the world closes; started and cancelled with the application."""
        world = self.world
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            while not world.closing:
                hook = world.webhook
                world.drop_unwanted()
                if hook is None or not world.updates:
                    self.failures = 0
                    await world.wait_changed(60)
                    continue
                update = world.updates[0]
                error = await self._deliver(session, hook, update)
                if world.webhook is not hook:
                    continue
                if error is None:
                    self.failures = 0
                    world.confirm(update["update_id"])
                    continue
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                self.failures += 1
                pause = min(MAX_BACKOFF, 2.0 ** (self.failures - 1)) / self.scale
                await world.wait_changed(pause)

    async def _deliver(
        self, session: aiohttp.ClientSession, hook: Webhook, update: dict[str, Any]
    ) -> str | None:
        """POST one update; None on success, else Telegram's description of the failure."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_HEADER] = hook.secret_token
        self.world.inflight += 1
        self.world.touch()
        self.deliveries += 1
        try:
            async with session.post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if not 200 <= response.status < 300:
                    return f"Wrong response from the webhook: {response.status} {_phrase(response.status)}"
                reply = await _reply(response)
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"
        finally:
            self.world.inflight -= 1
            self.world.touch()
            self.world.changed()
        if reply and isinstance(reply.get("method"), str):
            method = reply.pop("method")
            uploads = {k: v for k, v in reply.items() if isinstance(v, Upload)}
            await self.api.invoke(method, reply, uploads)
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _reply(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """The Bot API call a bot put in its webhook answer, if any."""
    if response.content_type == "application/json":
        try:
            body = await response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    if response.content_type.startswith("multipart/"):
        reader = aiohttp.MultipartReader.from_response(response)
        fields: dict[str, Any] = {}
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            data = await part.read()
            if part.filename:
                fields[part.name] = Upload(
                    part.filename, part.headers.get("Content-Type", ""), bytes(data)
                )
            else:
                fields[part.name] = data.decode()
        return fields
    return None


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
