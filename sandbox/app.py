"""Assembling the sandbox: :func:`create_app` builds the aiohttp application and
:func:`running_sandbox` runs one on 127.0.0.1 on a free port for a test or a benchmark.

    async with running_sandbox(scale=100) as sb:
        session = AiohttpSession(api=TelegramAPIServer.from_base(sb.url))
        bot = Bot(sb.token, session=session)
        await sb.client.create_user(id=1, first_name="Ann")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from sandbox.botapi import BotApi
from sandbox.client import SandboxClient
from sandbox.control import Control
from sandbox.faults import Faults
from sandbox.flood import FloodControl, Rates
from sandbox.media import UPLOAD_LIMIT
from sandbox.spec import load_spec
from sandbox.webchat import setup_webchat
from sandbox.webhook import WebhookDeliverer, stop
from sandbox.world import World

DEFAULT_TOKEN = "123456789:SANDBOX-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
WORLD = web.AppKey("world", World)
FLOOD = web.AppKey("flood", FloodControl)
FAULTS = web.AppKey("faults", Faults)
DELIVERER = web.AppKey("deliverer", WebhookDeliverer)


def create_app(
    *,
    token: str = DEFAULT_TOKEN,
    scale: float = 1.0,
    flood_control: bool = True,
    rates: Rates | None = None,
    webhook_timeout: float = 10.0,
    bot_username: str = "sandbox_bot",
    bot_first_name: str = "Sandbox Bot",
) -> web.Application:
    """The whole sandbox as one aiohttp application.

    ``scale`` speeds up time-based behaviour (flood-control refill, webhook retry pauses);
    1.0 is Telegram's real pace. ``flood_control=False`` turns rate limits off entirely.
    """
    if ":" not in token or not token.split(":", 1)[0].isdigit():
        raise ValueError("a bot token looks like '<bot id>:<secret>'")
    app = web.Application(client_max_size=UPLOAD_LIMIT + 5 * 1024 * 1024)
    world = World(token, bot_username, bot_first_name)
    flood = FloodControl(rates=rates or Rates(), scale=scale, enabled=flood_control)
    faults = Faults()
    api = BotApi(world, flood, faults, load_spec())
    deliverer = WebhookDeliverer(world, api, timeout=webhook_timeout, scale=scale)
    app[WORLD], app[FLOOD], app[FAULTS], app[DELIVERER] = world, flood, faults, deliverer
    api.setup(app)
    Control(world, flood, faults).setup(app)
    setup_webchat(app)

    async def background(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(deliverer.run(), name="sandbox-webhook")
        yield
        await stop(task)

    async def wake_waiters(app: web.Application) -> None:
        world.closing = True
        world.changed()

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(wake_waiters)
    return app


@dataclass
class RunningSandbox:
    url: str  # http://127.0.0.1:<port>, the base for both libraries' custom API server
    token: str
    app: web.Application
    client: SandboxClient

    @property
    def world(self) -> World:
        return self.app[WORLD]

    @property
    def bot_url(self) -> str:
        """The base of Bot API calls: ``f"{sb.bot_url}/getMe"``."""
        return f"{self.url}/bot{self.token}"


@asynccontextmanager
async def running_sandbox(
    host: str = "127.0.0.1", port: int = 0, **options: object
) -> AsyncIterator[RunningSandbox]:
    """Run a sandbox in this event loop (on a free port unless ``port`` is given)."""
    app = create_app(**options)  # type: ignore[arg-type]
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    url = f"http://{host}:{bound_port}"
    client = SandboxClient(url)
    try:
        yield RunningSandbox(url=url, token=app[WORLD].token, app=app, client=client)
    finally:
        await client.close()
        await runner.cleanup()
