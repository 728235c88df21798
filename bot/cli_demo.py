"""``aftersales seed-demo`` and ``aftersales demo``: the demo data, and claims played on it.

``demo`` starts a fresh SQLite database with the demo data, the Bot API sandbox and the bot,
prints the sandbox web chat's URL (play the buyers, consignors and staff there) and runs until
Ctrl-C. ``demo --script`` plays the source article's script and a damaged return through the
same bot and prints what each party saw (``bot.demo_script``); ``demo --services`` plays the
cases of ``bot.demo_cases`` through the services alone (manual clock, simulated payment
gateway and carrier) and prints each claim's timeline, parcels, messages and the consignors'
ledger balances.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bot import i18n
from bot.cli_common import (
    CliFailure,
    Lang,
    choose_language,
    console,
    help_text,
    load_settings,
    print_import_done,
    run,
    say_error,
)
from bot.outbox_screens import money_texts
from storage.engine import make_engine, sqlite_url_for
from storage.importer import ImportReport, import_orders
from storage.migrate import upgrade
from storage.uow import UnitOfWorkFactory
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SystemClock


def register(app: typer.Typer) -> None:
    app.command("seed-demo", help=help_text("seed_demo"))(seed_demo)
    app.command("demo", help=help_text("demo"))(demo)


def seed_demo(lang: Lang = None) -> None:
    """``aftersales seed-demo``: the demo orders, through the import path."""
    from bot.demo_data import demo_orders

    settings = load_settings()
    language = choose_language(lang, settings)

    async def go() -> ImportReport:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            now = SystemClock().now()
            return await import_orders(engine, demo_orders(now), now)
        finally:
            await engine.dispose()

    report = run(language, go())
    print_import_done(language, report)


def demo(
    script: Annotated[bool, typer.Option("--script", help=help_text("demo_script"))] = False,
    services: Annotated[bool, typer.Option("--services", help=help_text("demo_services"))] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help=help_text("demo_port"))] = 8081,
    lang: Lang = None,
) -> None:
    """``aftersales demo``: the bot in the sandbox's web chat, or a scripted playthrough."""
    settings = load_settings()
    language = choose_language(lang, settings)
    if script and services:
        raise say_error(language, "cli.demo.one_mode")
    if services:
        run(language, _demo(language))
    elif script:
        run(language, _script(language))
    else:
        run(language, _chat(language, port))


async def _script(lang: str) -> None:
    from bot.demo_script import play_script

    await play_script(lang, echo=print)  # as is: a transcript is not to be re-wrapped
    console.print(escape(i18n.t(lang, "cli.demo.script_done")))


async def _chat(lang: str, port: int) -> None:
    """Until Ctrl-C (or SIGTERM): the web chat URL printed once the bot answers."""
    import asyncio
    import contextlib
    import signal

    from bot.demo_script import run_demo

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def ready(url: str) -> None:
        console.print(escape(i18n.t(lang, "cli.demo.url", url=url)), highlight=False)
        console.print(escape(i18n.t(lang, "cli.demo.people")), highlight=False)
        console.print(escape(i18n.t(lang, "cli.demo.stop")), highlight=False)

    try:
        await run_demo(lang, port=port, on_ready=ready, stop=stop)
    except OSError as exc:
        raise CliFailure("cli.demo.port_busy", port=port, error=exc) from None
    console.print(escape(i18n.t(lang, "cli.demo.stopped")))


async def _demo(lang: str) -> None:
    from bot.demo_cases import play

    folder = Path(tempfile.mkdtemp(prefix="aftersales-demo-"))
    engine = make_engine(sqlite_url_for(folder / "demo.db"))
    try:
        await upgrade(engine)
        console.print(escape(i18n.t(lang, "cli.demo_db", path=str(folder / "demo.db"))))
        uows = UnitOfWorkFactory(engine)
        clock = ManualClock()
        env = Env(clock=clock)
        carrier = SimulatedCarrier(clock, seed=2026)
        cases = await play(uows, clock, env, carrier)
        for case in cases:
            await _print_case(uows, carrier, lang, case.claim_id, i18n.t(lang, case.title_key))
        await _print_balances(uows, lang, clock, [case.claim_id for case in cases])
    finally:
        await engine.dispose()


async def _print_case(
    uows: UnitOfWorkFactory, carrier: SimulatedCarrier, lang: str, claim_id: int, title: str
) -> None:
    async with uows() as uow:
        claim = await uow.claims.get(claim_id)
        events = await uow.claims.timeline(claim_id)
        shipments = list(await uow.shipments.for_claim(claim_id))
        messages = list(await uow.outbox.messages(claim_id))
    if claim is None:
        raise CliFailure("cli.demo_lost_claim", claim_id=claim_id)
    kind = i18n.t(lang, f"claim_type.{claim.claim_type}")
    table = Table(title=escape(f"#{claim_id} · {title} · {kind}"), title_justify="left")
    for column in ("cli.when", "cli.step", "cli.state", "cli.actor", "cli.why"):
        table.add_column(i18n.t(lang, column))
    for event in events:
        state = i18n.t(lang, f"state.{event.to_status}")
        if event.from_status:
            state = f"{i18n.t(lang, f'state.{event.from_status}')} → {state}"
        table.add_row(
            event.at.strftime("%m-%d %H:%M"),
            escape(i18n.t(lang, f"trigger.{event.trigger}")),
            escape(state),
            escape(event.actor),
            escape(" · ".join(x for x in (event.rule, event.note) if x)),
        )
    console.print(table)
    for shipment in shipments:
        console.print(
            escape(
                i18n.t(
                    lang,
                    f"cli.shipment.{shipment.kind}",
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    qr=shipment.qr_payload,
                )
            )
        )
        for scan in await carrier.tracking(shipment.tracking_number):
            console.print(
                escape(
                    i18n.t(
                        lang,
                        "cli.scan",
                        at=scan.at.strftime("%m-%d %H:%M"),
                        status=i18n.t(lang, f"cli.scan.{scan.status}"),
                    )
                )
            )
    if messages:
        sent = Table(title=i18n.t(lang, "cli.messages"), title_justify="left", show_lines=False)
        sent.add_column(i18n.t(lang, "cli.when"))
        sent.add_column(i18n.t(lang, "cli.to"))
        sent.add_column(i18n.t(lang, "cli.message"))
        # The same words to several parties at once are one row.
        rows: list[tuple[str, list[str], str]] = []
        for row in messages:
            when = row.created_at.strftime("%m-%d %H:%M")
            text = _message_text(lang, row.template, dict(row.payload))
            recipient = i18n.t(lang, f"cli.recipient.{row.recipient_kind}")
            if rows and rows[-1][0] == when and rows[-1][2] == text:
                rows[-1][1].append(recipient)
            else:
                rows.append((when, [recipient], text))
        for when, recipients, text in rows:
            sent.add_row(when, escape(", ".join(recipients)), escape(text))
        console.print(sent)


_TAG = re.compile(r"</?[a-z]+>")


def _message_text(lang: str, template: str, payload: dict[str, Any]) -> str:
    """A party's notification as the chat would show it, without its HTML markup."""
    params: dict[str, Any] = {**payload, **money_texts(payload)}
    return _TAG.sub("", i18n.t(lang, f"notify.{template}", **params))


async def _print_balances(
    uows: UnitOfWorkFactory, lang: str, clock: ManualClock, claim_ids: list[int]
) -> None:
    """The ledger balances of every consignor the demo's claims are about."""
    from workflow.services.queries import consignor_balance

    table = Table(title=i18n.t(lang, "cli.balances"), title_justify="left")
    for column in ("cli.consignor", "cli.available", "cli.pending"):
        table.add_column(i18n.t(lang, column))
    async with uows() as uow:
        consignor_ids = sorted({c for i in claim_ids for c in await uow.claims.consignor_ids(i)})
        for consignor_id in consignor_ids:
            consignor = await uow.parties.consignor(consignor_id)
            balance = await consignor_balance(uow, consignor_id, clock.now(), limit=1)
            table.add_row(
                escape(consignor.name if consignor else str(consignor_id)),
                " · ".join(amount.format() for amount in balance.available),
                " · ".join(amount.format() for amount in balance.pending),
            )
    console.print(table)
