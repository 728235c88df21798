"""The command line: ``aftersales`` (Typer + rich). Every failure is one clear sentence."""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot import i18n
from bot.settings import Settings
from storage.engine import make_engine, sqlite_url_for
from storage.importer import ImportReport, import_orders
from storage.migrate import current, upgrade
from storage.uow import UnitOfWorkFactory
from workflow.errors import DomainError
from workflow.money import Money
from workflow.orders import OrderImport, RowError, group_rows, orders_from_documents
from workflow.services.common import Env
from workflow.simulated import ManualClock, SystemClock

app = typer.Typer(help="After-sales (售后) desk of a consignment platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import data from the platform.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
console = Console()

Lang = Annotated[
    str | None, typer.Option("--lang", help="en or zh-CN (default: AFTERSALES_LANG or en)")
]


def _lang(option: str | None, settings: Settings) -> str:
    chosen = option or settings.lang
    return chosen if chosen in i18n.LANGUAGES else "en"


def _fail(lang: str, key: str, **params: Any) -> typer.Exit:
    console.print(f"[red]{i18n.t(lang, key, **params)}[/red]")
    return typer.Exit(code=2)


@db_app.command("upgrade")
def db_upgrade(lang: Lang = None) -> None:
    """Create the schema or bring it to the newest revision (Alembic)."""
    settings = Settings()
    language = _lang(lang, settings)

    async def go() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await current(engine)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(go())
    except OSError as exc:
        raise _fail(language, "cli.db_unreachable", error=str(exc)) from exc
    console.print(i18n.t(language, "cli.db_upgraded", revision=revision))


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def _json_documents(path: Path) -> Iterator[tuple[int, Mapping[str, object]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, raw in enumerate(text.splitlines(), start=1):
            if raw.strip():
                value = json.loads(raw)
                yield number, value if isinstance(value, dict) else {}
        return
    data = json.loads(text)
    documents = data.get("orders", []) if isinstance(data, dict) else data
    for number, value in enumerate(documents, start=1):
        yield number, value if isinstance(value, dict) else {}


def parse_file(path: Path, settings: Settings) -> Iterator[OrderImport | RowError]:
    sla = settings.policy().shipping_sla
    if path.suffix.lower() == ".csv":
        return group_rows(_csv_rows(path), sla)
    return orders_from_documents(_json_documents(path), sla)


@import_app.command("orders")
def import_orders_command(
    file: Annotated[
        Path,
        typer.Argument(help="CSV (a row per order line) or JSON / JSON Lines (orders with lines)"),
    ],
    lang: Lang = None,
) -> None:
    """Import paid orders. Bad rows are listed with their line numbers; good rows are kept.

    Importing the same file again changes nothing. Exit code 0: all rows imported or
    unchanged; 1: some rows were refused (see the table); 2: the file could not be read.
    """
    settings = Settings()
    language = _lang(lang, settings)
    if not file.is_file():
        raise _fail(language, "cli.no_file", path=str(file))
    if file.suffix.lower() not in (".csv", ".json", ".jsonl", ".ndjson"):
        raise _fail(language, "cli.bad_format", path=str(file))

    async def go(progress: Progress) -> ImportReport:
        engine = make_engine(settings.database_url)
        task = progress.add_task(i18n.t(language, "cli.importing"), total=None)
        try:
            await upgrade(engine)
            return await import_orders(
                engine,
                parse_file(file, settings),
                SystemClock().now(),
                progress=lambda n: progress.advance(task, n),
            )
        finally:
            await engine.dispose()

    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} orders"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            report = asyncio.run(go(progress))
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(language, "cli.unreadable", path=str(file), error=str(exc)) from exc
    console.print(
        i18n.t(
            language,
            "cli.import_done",
            imported=report.imported,
            unchanged=report.unchanged,
            refused=len(report.errors),
        )
    )
    if report.errors:
        table = Table(
            i18n.t(language, "cli.line"),
            i18n.t(language, "cli.order"),
            i18n.t(language, "cli.reason"),
        )
        for error in report.errors:
            table.add_row(str(error.line_no), error.order_ref or "—", error.reason)
        console.print(table)
        raise typer.Exit(code=1)


@app.command("seed-demo")
def seed_demo(lang: Lang = None) -> None:
    """Import a small demo data set (buyers, consignors, delivered and undelivered orders)."""
    from bot.demo_data import demo_orders

    settings = Settings()
    language = _lang(lang, settings)

    async def go() -> ImportReport:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            now = SystemClock().now()
            return await import_orders(engine, demo_orders(now), now)
        finally:
            await engine.dispose()

    report = asyncio.run(go())
    console.print(
        i18n.t(
            language,
            "cli.import_done",
            imported=report.imported,
            unchanged=report.unchanged,
            refused=len(report.errors),
        )
    )


@app.command("demo")
def demo(
    services_only: Annotated[
        bool,
        typer.Option(
            "--services", help="Play the demo cases through the services and print their timelines"
        ),
    ] = True,
    lang: Lang = None,
) -> None:
    """Play the demo cases and print each claim's timeline."""
    settings = Settings()
    language = _lang(lang, settings)
    asyncio.run(_demo_services(language))


async def _demo_services(lang: str) -> None:
    from bot.demo_cases import play

    folder = Path(tempfile.mkdtemp(prefix="aftersales-demo-"))
    engine = make_engine(sqlite_url_for(folder / "demo.db"))
    try:
        await upgrade(engine)
        uows = UnitOfWorkFactory(engine)
        clock = ManualClock()
        env = Env(clock=clock)
        cases = await play(uows, clock, env)
        console.print(i18n.t(lang, "cli.demo_db", path=str(folder / "demo.db")))
        for case in cases:
            await _print_timeline(uows, lang, case.claim_id, i18n.t(lang, case.title_key))
        await _print_balances(uows, lang, clock)
    except DomainError as exc:
        raise _fail(lang, i18n.refusal_key(lang, exc.key, exc.params), **exc.params) from exc
    finally:
        await engine.dispose()


async def _print_timeline(uows: UnitOfWorkFactory, lang: str, claim_id: int, title: str) -> None:
    async with uows() as uow:
        claim = await uow.claims.get(claim_id)
        events = await uow.claims.timeline(claim_id)
    assert claim is not None
    table = Table(title=f"#{claim_id} · {title} · {i18n.t(lang, f'claim_type.{claim.claim_type}')}")
    for column in ("cli.when", "cli.step", "cli.state", "cli.actor", "cli.why"):
        table.add_column(i18n.t(lang, column))
    for event in events:
        table.add_row(
            event.at.strftime("%m-%d %H:%M"),
            i18n.t(lang, f"trigger.{event.trigger}"),
            (i18n.t(lang, f"state.{event.from_status}") + " → " if event.from_status else "")
            + i18n.t(lang, f"state.{event.to_status}"),
            event.actor,
            " · ".join(x for x in (event.rule, event.note) if x),
        )
    console.print(table)


async def _print_balances(uows: UnitOfWorkFactory, lang: str, clock: ManualClock) -> None:
    from sqlalchemy import select

    from storage import tables as t

    table = Table(title=i18n.t(lang, "cli.balances"))
    for column in ("cli.consignor", "cli.available", "cli.pending"):
        table.add_column(i18n.t(lang, column))
    async with uows() as uow:
        consignors = (await uow.session.scalars(select(t.Consignor).order_by(t.Consignor.id))).all()
        for consignor in consignors:
            available, pending = await uow.money.balance(consignor.id, clock.now())
            table.add_row(
                consignor.name, Money(available, "CNY").format(), Money(pending, "CNY").format()
            )
    console.print(table)


def main() -> None:
    app()
