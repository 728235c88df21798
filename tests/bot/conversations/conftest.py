"""A real bot against the sandbox over HTTP: the aiogram dispatcher polling, real storage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update

from bot import flood, i18n
from bot.app import back_office_until_quiet
from bot.conversations import registry as _registry  # noqa: F401  (registers the handlers)
from bot.conversations.context import BotConfig, Services
from bot.flood import SendLimits
from bot.telegram_aiogram.dispatcher import ALLOWED_UPDATES, build_dispatcher
from sandbox.app import RunningSandbox, running_sandbox
from sandbox.client import SandboxClient
from storage.uow import UnitOfWorkFactory
from workflow.claims import SYSTEM
from workflow.services.accounts import mint_binding
from workflow.services.common import Env
from workflow.simulated import SimulatedCarrier, SimulatedPaymentGateway


@dataclass
class World:
    sandbox: RunningSandbox
    services: Services
    uows: UnitOfWorkFactory
    env: Env
    bot: Bot
    payment: SimulatedPaymentGateway
    carrier: SimulatedCarrier

    stop_bot: Any = None  # stops the polling bot (a crash, for restart tests)
    # Updates the dispatcher has finished with (handled, answered, rendered), by update id.
    finished: dict[int, asyncio.Event] = field(default_factory=dict)
    # Rejections a test causes on purpose, by a part of Telegram's description of them.
    provoked: list[str] = field(default_factory=list)

    def provoke(self, *descriptions: str) -> None:
        """Declare the Bot API rejections this test causes on purpose (a deleted topic, a
        blocked user, a double press…) by a part of ``"<method>: <description>"``; any other
        rejected call fails the test."""
        self.provoked.extend(descriptions)

    async def unexplained_rejections(self) -> list[dict[str, Any]]:
        """Rejected Bot API calls that neither an injected fault nor ``provoke`` explains."""
        refused = (await self.client.calls(ok=False))["calls"]
        return [
            c
            for c in refused
            if not c.get("faults")
            and not any(p in f"{c['method']}: {c.get('description')}" for p in self.provoked)
        ]

    def watch(self, dispatcher: Dispatcher) -> None:
        """Note each update as the dispatcher finishes with it (after its Bot API calls)."""

        async def finishing(
            handler: Callable[[Update, dict[str, Any]], Awaitable[Any]],
            update: Update,
            data: dict[str, Any],
        ) -> Any:
            try:
                return await handler(update, data)
            finally:
                self._finished(update.update_id).set()

        dispatcher.update.outer_middleware(finishing)

    def _finished(self, update_id: int) -> asyncio.Event:
        return self.finished.setdefault(update_id, asyncio.Event())

    async def handled(self, update_id: int) -> None:
        """Wait until the bot has finished an update: its work committed, its answers sent."""
        try:
            await asyncio.wait_for(self._finished(update_id).wait(), 30)
        except TimeoutError:
            raise AssertionError(f"update {update_id} was never handled") from None
        await self.client.wait_idle(quiet_ms=30)

    async def back_office(self, rounds: int = 10) -> None:
        """Sweeps, providers, payment callbacks, parcel scans and delivery, until quiet.

        The clock does not move here: tests move it (``world.env.clock.advance``).
        """
        await back_office_until_quiet(self.services, self.bot, self.payment, self.carrier, rounds)
        await self.client.wait_idle(quiet_ms=200)

    @property
    def client(self) -> SandboxClient:
        return self.sandbox.client

    async def user(self, user_id: int, name: str = "Ann", lang: str = "en") -> int:
        made = await self.client.create_user(id=user_id, first_name=name, language_code=lang)
        return int(made["id"])

    async def say(self, user_id: int, text: str) -> list[dict[str, Any]]:
        """The user sends ``text``; returns the bot's messages that arrived in answer."""
        before = await self.client.messages(user_id)
        sent = await self.client.send(user_id, text)
        await self.handled(sent["update_id"])
        after = await self.client.messages(user_id)
        seen = {m["message_id"] for m in before["messages"]}
        return [m for m in after["messages"] if m["outgoing"] and m["message_id"] not in seen]

    async def token(self, party_kind: str, party_id: int) -> str:
        async with self.uows() as uow:
            token = await mint_binding(uow, self.env, SYSTEM, party_kind, party_id)
            await uow.commit()
        return token


SANDBOX_SCALE = 1000.0


@pytest.fixture
async def world(uows: UnitOfWorkFactory, env: Env) -> AsyncIterator[World]:
    async with running_sandbox(scale=SANDBOX_SCALE) as sandbox:
        # The bot paces its sends to the sandbox's sped-up flood limits, as to Telegram's.
        config = BotConfig(bot_username="sandbox_bot", send_limits=SendLimits(scale=SANDBOX_SCALE))
        services = Services(uows=uows, env=env, translate=i18n.t, config=config)
        bot = Bot(
            sandbox.token, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox.url))
        )
        dispatcher = build_dispatcher(services)
        polling = asyncio.create_task(
            dispatcher.start_polling(
                bot, handle_signals=False, allowed_updates=ALLOWED_UPDATES, polling_timeout=1
            )
        )
        try:

            async def stop_bot() -> None:
                with contextlib.suppress(RuntimeError):
                    await dispatcher.stop_polling()
                await polling

            made = World(
                sandbox,
                services,
                uows,
                env,
                bot,
                SimulatedPaymentGateway(env.clock, seed=1),
                SimulatedCarrier(env.clock, seed=1),
            )
            made.stop_bot = stop_bot
            made.watch(dispatcher)
            yield made
            # Must-show of the bot issue: no Bot API call the bot makes is rejected, unless
            # the test provoked it on purpose.
            unexplained = await made.unexplained_rejections()
            assert [(c["method"], c.get("description")) for c in unexplained] == []
        finally:
            flood.forget_gates()  # a test may have put the gate on a hand-moved clock
            with contextlib.suppress(RuntimeError):
                await dispatcher.stop_polling()
            await polling
            await bot.session.close()
