"""``aftersales run`` and ``aftersales bind-link``: the bot in production, and its way in.

``run`` brings the schema up to date, checks the token with ``getMe`` and runs long polling
with the back office until Ctrl-C / SIGTERM. A missing, rejected or unusable token and an
unreachable Bot API are one sentence each, before anything starts.

``bind-link`` mints a single-use, expiring binding link for one platform account
(``--buyer REF`` or ``--consignor REF``, the platform's reference or our numeric id) —
``https://t.me/<bot>?start=<token>`` — for the platform to hand to that person.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import select

from bot import i18n
from bot.cli_common import (
    CliFailure,
    Lang,
    choose_language,
    console,
    help_text,
    load_settings,
    run,
    say_error,
)
from bot.settings import Settings
from storage import tables as t
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.uow import UnitOfWorkFactory
from workflow.claims import SYSTEM
from workflow.services.accounts import DEFAULT_TTL, mint_binding
from workflow.services.common import Env
from workflow.simulated import SystemClock


def register(app: typer.Typer) -> None:
    app.command("run", help=help_text("run"))(run_command)
    app.command("bind-link", help=help_text("bind_link"))(bind_link)


def run_command(lang: Lang = None) -> None:
    """``aftersales run``: long polling until stopped."""
    settings = load_settings()
    language = choose_language(lang, settings)
    run(language, _run(settings, language))


async def _run(settings: Settings, lang: str) -> None:
    from bot.app import (
        BotTokenMalformed,
        BotTokenMissing,
        BotTokenRejected,
        TelegramUnreachable,
        build_services,
        check_token,
        make_bot,
        run_bot,
    )

    try:
        bot = make_bot(settings)
    except BotTokenMissing:
        raise CliFailure("cli.run.no_token") from None
    except BotTokenMalformed:
        raise CliFailure("cli.run.malformed_token") from None
    engine = make_engine(settings.database_url)
    try:
        try:
            await check_token(bot)  # before the database is touched
            await upgrade(engine)
            services = build_services(settings, engine=engine)

            def ready(me: object) -> None:
                name = getattr(me, "username", None) or "?"
                console.print(escape(i18n.t(lang, "cli.run.started", username=name)))

            await run_bot(services, bot, on_ready=ready)
        except BotTokenRejected:
            raise CliFailure("cli.run.rejected", url=settings.telegram_api_url) from None
        except TelegramUnreachable as exc:
            raise CliFailure(
                "cli.run.unreachable", url=settings.telegram_api_url, error=exc
            ) from None
        console.print(escape(i18n.t(lang, "cli.run.stopped")))
    finally:
        await bot.session.close()
        await engine.dispose()


Party = Annotated[str | None, typer.Option(metavar="REF", show_default=False)]


def bind_link(
    buyer: Party = None,
    consignor: Party = None,
    hours: Annotated[int, typer.Option(min=1, max=24 * 30, help=help_text("bind_hours"))] = int(
        DEFAULT_TTL.total_seconds() // 3600
    ),
    lang: Lang = None,
) -> None:
    """``aftersales bind-link --buyer REF | --consignor REF``."""
    settings = load_settings()
    language = choose_language(lang, settings)
    if (buyer is None) == (consignor is None):
        raise say_error(language, "cli.bind.one_party")
    kind, ref = ("buyer", buyer) if buyer is not None else ("consignor", consignor)
    assert ref is not None
    link = run(language, _bind_link(settings, kind, ref, hours))
    console.print(escape(i18n.t(language, "cli.bind.link", kind=kind, ref=ref, hours=hours)))
    # The link alone on its line, unwrapped, so it can be copied or piped.
    print(link)


async def _bind_link(settings: Settings, kind: str, ref: str, hours: int) -> str:
    from datetime import timedelta

    username = await _bot_username(settings)
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        uows = UnitOfWorkFactory(engine)
        async with uows() as uow:
            table = t.Buyer if kind == "buyer" else t.Consignor
            party_id = await uow.session.scalar(select(table.id).where(table.external_ref == ref))
            if party_id is None and ref.isdigit():
                party_id = await uow.session.scalar(select(table.id).where(table.id == int(ref)))
            if party_id is None:
                raise CliFailure(f"cli.bind.no_{kind}", ref=ref)
            token = await mint_binding(
                uow, Env(clock=SystemClock()), SYSTEM, kind, party_id, timedelta(hours=hours)
            )
            await uow.commit()
    finally:
        await engine.dispose()
    return f"https://t.me/{username}?start={token}"


async def _bot_username(settings: Settings) -> str:
    """The bot's @username: from settings, else asked of the Bot API with the token."""
    if settings.bot_username:
        return settings.bot_username.lstrip("@")
    from bot.app import (
        BotTokenMalformed,
        BotTokenMissing,
        BotTokenRejected,
        TelegramUnreachable,
        check_token,
        make_bot,
    )

    try:
        bot = make_bot(settings)
    except BotTokenMissing:
        raise CliFailure("cli.bind.no_username") from None
    except BotTokenMalformed:
        raise CliFailure("cli.run.malformed_token") from None
    try:
        me = await asyncio.wait_for(check_token(bot), timeout=30)
    except BotTokenRejected:
        raise CliFailure("cli.run.rejected", url=settings.telegram_api_url) from None
    except (TelegramUnreachable, TimeoutError) as exc:
        raise CliFailure("cli.run.unreachable", url=settings.telegram_api_url, error=exc) from None
    finally:
        await bot.session.close()
    return me.username or str(me.id)
