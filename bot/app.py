"""Wiring: settings → services → a running bot (long polling) with its back office.

``build_services`` makes the process-wide collaborators once; ``run_bot`` checks the token
(``getMe``), sets the default commands menu, then runs the aiogram dispatcher's long polling
and the back office (sweeps, provider commands, payment callbacks, tracking polls, outbox
delivery) side by side until asked to stop — by a signal, by ``stop``, or because polling
ended — and then stops both cleanly. ``back_office_round`` is one pass of the same steps, for
tests and the demo, which move a manual clock themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramUnauthorizedError,
)
from aiogram.types import User
from aiogram.utils.token import TokenValidationError, validate_token
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import commands_menu, i18n
from bot.conversations import registry as _registry  # noqa: F401  (registers the handlers)
from bot.conversations.context import BotConfig, Services
from bot.flood import SendLimits
from bot.scheduler import Intervals, build_scheduler, jobs
from bot.settings import Settings
from bot.telegram_aiogram.dispatcher import ALLOWED_UPDATES, build_dispatcher
from bot.telegram_aiogram.render import set_commands
from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
from workflow.ports import Carrier, Clock
from workflow.services.backoffice import until_quiet
from workflow.services.common import Env
from workflow.simulated import SimulatedCarrier, SimulatedPaymentGateway, SystemClock

log = logging.getLogger(__name__)


class BotTokenMissing(Exception):
    """No ``AFTERSALES_BOT_TOKEN`` is configured."""


class BotTokenMalformed(Exception):
    """``AFTERSALES_BOT_TOKEN`` does not have a bot token's shape (``<bot id>:<secret>``)."""


class BotTokenRejected(Exception):
    """Telegram (or the sandbox) answered ``getMe`` with 401: the token is wrong or revoked."""


class TelegramUnreachable(Exception):
    """``getMe`` could not reach the Bot API at all (wrong URL, no network)."""


def build_services(
    settings: Settings, clock: Clock | None = None, engine: AsyncEngine | None = None
) -> Services:
    """The process's collaborators: storage, the review policy, texts, the bot's config."""
    engine = engine or make_engine(settings.database_url)
    policy = settings.policy()
    env = Env(clock=clock or SystemClock(), policy=policy)
    config = BotConfig(
        admins=frozenset(settings.admins),
        staff_chat_id=settings.staff_chat_id,
        staff_language=settings.staff_language,
        timezone=settings.timezone,
        send_limits=SendLimits(scale=settings.send_rate_scale),
        delivery_lease_seconds=settings.delivery_lease_seconds,
    )
    return Services(uows=UnitOfWorkFactory(engine), env=env, translate=i18n.t, config=config)


def make_bot(settings: Settings) -> Bot:
    """A Bot talking to ``AFTERSALES_TELEGRAM_API_URL`` (Telegram itself, or the sandbox)."""
    if not settings.bot_token:
        raise BotTokenMissing()
    try:
        validate_token(settings.bot_token)
    except TokenValidationError:
        raise BotTokenMalformed() from None
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.bot_token, session=session)


async def check_token(bot: Bot) -> User:
    """``getMe``, with a clear exception for a rejected token or an unreachable API.

    The exceptions' texts never hold the token: the HTTP client's error for a URL it cannot
    use quotes the request's URL, ``.../bot<TOKEN>/getMe``, and the text is printed and logged.
    """
    try:
        return await bot.get_me()
    except TelegramUnauthorizedError as exc:
        raise BotTokenRejected(_without_token(str(exc), bot.token)) from exc
    except TelegramNetworkError as exc:
        raise TelegramUnreachable(_without_token(str(exc), bot.token)) from exc


def _without_token(text: str, token: str) -> str:
    return text.replace(token, "<token>")


async def set_default_menus(bot: Bot, services: Services) -> None:
    """The menu for users without a menu of their own (unbound users), and the staff
    group's, per language. A group the bot cannot reach yet is logged, not fatal."""
    for menu in commands_menu.default_menus(services.translate):
        await set_commands(bot, menu)
    group = services.config.staff_chat_id
    if group is None:
        return
    try:
        for menu in commands_menu.group_menus(services.translate, group):
            await set_commands(bot, menu)
    except TelegramBadRequest as exc:
        log.warning("the staff group's commands menu was not set: %s", exc.message)


async def back_office_round(
    services: Services, bot: Bot, payment: SimulatedPaymentGateway, carrier: Carrier
) -> int:
    """Sweeps, provider commands, payment callbacks, parcel scans and outbox delivery, once
    each and in that order; returns how many things moved (0 = nothing was due)."""
    moved = 0
    for job in jobs(services, bot, payment, carrier).values():
        moved += await job()
    return moved


async def back_office_until_quiet(
    services: Services,
    bot: Bot,
    payment: SimulatedPaymentGateway,
    carrier: Carrier,
    rounds: int = 20,
) -> int:
    return await until_quiet(lambda: back_office_round(services, bot, payment, carrier), rounds)


async def run_bot(
    services: Services,
    bot: Bot,
    payment: SimulatedPaymentGateway | None = None,
    carrier: Carrier | None = None,
    *,
    stop: asyncio.Event | None = None,
    intervals: Intervals | None = None,
    polling_timeout: int = 10,
    handle_signals: bool = True,
    on_ready: Callable[[User], None] | None = None,
) -> None:
    """Long polling plus the back office, until ``stop`` is set (or SIGINT/SIGTERM).

    Raises :class:`BotTokenRejected` / :class:`TelegramUnreachable` before anything starts.
    """
    me = await check_token(bot)
    services.config = dataclasses.replace(
        services.config, bot_username=me.username or services.config.bot_username
    )
    await set_default_menus(bot, services)
    clock = services.env.clock
    payment = payment or SimulatedPaymentGateway(clock)
    carrier = carrier or SimulatedCarrier(clock)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)

    dispatcher = build_dispatcher(services)
    scheduler = build_scheduler(services, bot, payment, carrier, intervals)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            allowed_updates=ALLOWED_UPDATES,
            polling_timeout=polling_timeout,
        ),
        name="polling",
    )
    scheduler.start()
    log.info("@%s is running", me.username)
    if on_ready is not None:
        on_ready(me)
    stopped = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        scheduler.shutdown(wait=False)
        with contextlib.suppress(RuntimeError):  # polling had already ended
            await dispatcher.stop_polling()
        stopped.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        for sig in installed:
            loop.remove_signal_handler(sig)
        log.info("stopped")
