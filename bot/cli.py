"""The command line: ``aftersales`` (Typer + rich). Every failure is one clear sentence.

The commands parse input, call storage/ and workflow/ APIs and render the result; the texts
are in ``bot/locales/*.cli.json`` in both languages.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import tempfile
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from bot import cli_diagram, cli_report, i18n
from bot.settings import Settings
from storage.engine import make_engine, sqlite_url_for
from storage.importer import ImportReport, import_orders
from storage.migrate import current, upgrade
from storage.uow import UnitOfWorkFactory
from workflow.errors import DomainError
from workflow.money import Money
from workflow.orders import OrderImport, RowError, group_rows, orders_from_documents
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SystemClock

T = TypeVar("T")


def _help_language() -> str:
    """The language of ``--help``: it is drawn before any option is read."""
    chosen = os.environ.get("AFTERSALES_LANG", i18n.DEFAULT)
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT


HELP_LANG = _help_language()


def _help(key: str) -> str:
    return i18n.t(HELP_LANG, f"cli.help.{key}")


app = typer.Typer(help=_help("app"), no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help=_help("db"), no_args_is_help=True)
import_app = typer.Typer(help=_help("import"), no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
console = Console()

# The CSV format of ``import orders``: one row per order line.
CSV_COLUMNS = (
    "order_ref",
    "buyer_ref",
    "buyer_name",
    "currency",
    "paid_at",
    "ship_by",
    "shipped_at",
    "delivered_at",
    "sku",
    "title",
    "category",
    "consignor_ref",
    "consignor_name",
    "quantity",
    "unit_price",
    "commission",
)
OPTIONAL_COLUMNS = frozenset(
    {"buyer_name", "ship_by", "shipped_at", "delivered_at", "category", "consignor_name"}
)
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
# More bad rows than this are counted, not listed.
MAX_LISTED_ERRORS = 200
EXIT_SOME_REFUSED = 1
EXIT_FAILED = 2

Lang = Annotated[
    str | None,
    typer.Option("--lang", help=_help("lang"), metavar="LANG"),
]


class CliFailure(Exception):
    """A sentence for the user (a message key and its parameters), then exit code 2."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def _lang(option: str | None, settings: Settings) -> str:
    chosen = option or settings.lang
    if chosen not in i18n.LANGUAGES:
        console.print(
            f"[red]{escape(i18n.t(i18n.DEFAULT, 'cli.unknown_language', language=chosen))}[/red]"
        )
        raise typer.Exit(EXIT_FAILED)
    return chosen


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        console.print(f"[red]{escape(i18n.t(i18n.DEFAULT, 'cli.bad_settings', error=exc))}[/red]")
        raise typer.Exit(EXIT_FAILED) from exc


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _run(lang: str, work: Coroutine[Any, Any, T]) -> T:
    """Run one command's work; every expected failure becomes one sentence and exit code 2."""
    try:
        return asyncio.run(work)
    except CliFailure as exc:
        message = i18n.t(lang, exc.key, **exc.params)
    except DomainError as exc:
        message = i18n.t(lang, i18n.refusal_key(lang, exc.key, exc.params), **exc.params)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        message = i18n.t(lang, "cli.bad_database_url", error=_first_line(exc))
    except (OSError, DBAPIError) as exc:
        message = i18n.t(lang, "cli.db_unreachable", error=_first_line(exc))
    console.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(EXIT_FAILED)


@db_app.command("upgrade", help=_help("db_upgrade"))
def db_upgrade(lang: Lang = None) -> None:
    """``aftersales db upgrade``: Alembic to head; prints the revision."""
    settings = _settings()
    language = _lang(lang, settings)

    async def go() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await current(engine)
        finally:
            await engine.dispose()

    revision = _run(language, go())
    console.print(escape(i18n.t(language, "cli.db_upgraded", revision=revision)))


# ---- import orders ----


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _csv_rows(path: Path, tick: Any) -> Iterator[tuple[int, Mapping[str, object]]]:
    """The file's rows with the line number each starts on; read as the import goes."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(
            set(CSV_COLUMNS)
            - OPTIONAL_COLUMNS
            - {(name or "").strip() for name in reader.fieldnames or ()}
        )
        if missing:
            raise CliFailure("cli.missing_columns", path=str(path), columns=", ".join(missing))
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            tick(1)
            start = reader.line_num + 1


def _as_object(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _jsonl_documents(path: Path, tick: Any) -> Iterator[tuple[int, Mapping[str, object]]]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, raw in enumerate(handle, start=1):
            tick(1)
            if raw.strip():
                yield number, _as_object(json.loads(raw))


_ORDERS_ARRAY = re.compile(r'\s*\{\s*"orders"\s*:\s*\[')
_JSON_BLANK = " \t\r\n"


def _skip_blank(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_BLANK:
        pos += 1
    return pos


def _json_documents(path: Path, tick: Any) -> Iterator[tuple[int, Mapping[str, object]]]:
    """The orders of a JSON array (or ``{"orders": [...]}``), each with the line it starts on.

    Decoded one element at a time, so a bad order is reported at its own line.
    """
    text = path.read_text(encoding="utf-8-sig")
    wrapped = _ORDERS_ARRAY.match(text)
    pos = wrapped.end() if wrapped else _skip_blank(text, 0)
    if not wrapped:
        if text[pos : pos + 1] != "[":
            yield 1, _as_object(json.loads(text))  # a single order, or an error where it is
            return
        pos += 1
    decoder = json.JSONDecoder()
    line, counted, first = 1, 0, True
    while True:
        pos = _skip_blank(text, pos)
        if text[pos : pos + 1] == "]":
            break
        if not first:
            if text[pos : pos + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip_blank(text, pos + 1)
        value, end = decoder.raw_decode(text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        tick(end - pos)
        yield line, _as_object(value)
        pos, first = end, False


def _total(path: Path) -> int:
    """How far the progress bar runs: rows (CSV), lines (JSON Lines) or characters (JSON)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return max(_count_lines(path) - 1, 0)
    if suffix in (".jsonl", ".ndjson"):
        return _count_lines(path)
    return len(path.read_text(encoding="utf-8-sig"))


def parse_file(
    path: Path, settings: Settings, tick: Any = lambda n: None
) -> Iterator[OrderImport | RowError]:
    """Orders (or the reasons rows were refused) from a CSV, JSON or JSON Lines file, lazily."""
    sla = settings.policy().shipping_sla
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return group_rows(_csv_rows(path, tick), sla)
    if suffix in (".jsonl", ".ndjson"):
        return orders_from_documents(_jsonl_documents(path, tick), sla)
    return orders_from_documents(_json_documents(path, tick), sla)


@import_app.command("orders", help=_help("import_orders"))
def import_orders_command(
    file: Annotated[Path, typer.Argument(help=_help("file"), metavar="FILE")],
    lang: Lang = None,
) -> None:
    """``aftersales import orders FILE``; exit code 0 all good, 1 some rows refused, 2 failed."""
    settings = _settings()
    language = _lang(lang, settings)
    if not file.is_file():
        raise _fail(language, "cli.no_file", path=str(file))
    if file.suffix.lower() not in (".csv", *JSON_SUFFIXES):
        raise _fail(language, "cli.bad_format", path=str(file))

    async def go() -> ImportReport:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            ) as progress:
                total = _total(file)
                task = progress.add_task(i18n.t(language, "cli.importing"), total=total)
                pending = 0

                def tick(n: int) -> None:
                    nonlocal pending
                    pending += n
                    if pending >= 1000:
                        progress.advance(task, pending)
                        pending = 0

                report = await import_orders(
                    engine, parse_file(file, settings, tick), SystemClock().now()
                )
                progress.update(task, completed=total)
            return report
        except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
            raise CliFailure("cli.unreadable", path=str(file), error=str(exc)) from exc
        finally:
            await engine.dispose()

    report = _run(language, go())
    console.print(
        escape(
            i18n.t(
                language,
                "cli.import_done",
                imported=report.imported,
                unchanged=report.unchanged,
                refused=len(report.errors),
            )
        )
    )
    if report.errors:
        _print_errors(language, report.errors)
        raise typer.Exit(EXIT_SOME_REFUSED)


def _print_errors(lang: str, errors: list[RowError]) -> None:
    table = Table(
        i18n.t(lang, "cli.line"),
        i18n.t(lang, "cli.order"),
        i18n.t(lang, "cli.reason"),
        title=i18n.t(lang, "cli.refused_rows"),
    )
    for error in errors[:MAX_LISTED_ERRORS]:
        table.add_row(str(error.line_no), escape(error.order_ref or "—"), escape(error.reason))
    console.print(table)
    if len(errors) > MAX_LISTED_ERRORS:
        console.print(
            escape(i18n.t(lang, "cli.more_refused", count=len(errors) - MAX_LISTED_ERRORS))
        )


def _fail(lang: str, key: str, **params: Any) -> typer.Exit:
    console.print(f"[red]{escape(i18n.t(lang, key, **params))}[/red]")
    return typer.Exit(EXIT_FAILED)


# ---- demo data and the demo ----


@app.command("seed-demo", help=_help("seed_demo"))
def seed_demo(lang: Lang = None) -> None:
    """``aftersales seed-demo``: the demo orders, through the import path."""
    from bot.demo_data import demo_orders

    settings = _settings()
    language = _lang(lang, settings)

    async def go() -> ImportReport:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            now = SystemClock().now()
            return await import_orders(engine, demo_orders(now), now)
        finally:
            await engine.dispose()

    report = _run(language, go())
    console.print(
        escape(
            i18n.t(
                language,
                "cli.import_done",
                imported=report.imported,
                unchanged=report.unchanged,
                refused=len(report.errors),
            )
        )
    )


@app.command("demo", help=_help("demo"))
def demo(
    _services: Annotated[bool, typer.Option("--services", hidden=True)] = True,
    lang: Lang = None,
) -> None:
    """``aftersales demo``: until the Telegram bot exists, the cases played through services."""
    settings = _settings()
    language = _lang(lang, settings)
    _run(language, _demo(language))


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
    params: dict[str, Any] = dict(payload)
    currency = str(payload.get("currency") or "CNY")
    for key in ("amount", "counter_offer", "consignor_total"):
        value = payload.get(key)
        if isinstance(value, int):
            params[f"{key}_text"] = Money(value, currency).format()
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
                Money(balance.available, balance.currency).format(),
                Money(balance.pending, balance.currency).format(),
            )
    console.print(table)


cli_diagram.register(app)
cli_report.register(app)


def main() -> None:
    app()
