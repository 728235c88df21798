"""The command line: ``aftersales`` (Typer + rich). Every failure is one clear sentence.

The commands parse input, call storage/ and workflow/ APIs and render the result; the texts
are in ``bot/locales/*.cli.json`` in both languages.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
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

from bot import cli_demo, cli_diagram, cli_report, cli_run, i18n
from bot.cli_common import (
    EXIT_SOME_REFUSED,
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
from bot.json_stream import JsonSyntaxError, json_documents
from bot.settings import Settings
from storage.engine import make_engine
from storage.importer import ImportReport, import_orders
from storage.migrate import current, upgrade
from workflow.orders import (
    EXTRA_CELLS,
    OrderImport,
    RowError,
    group_rows,
    orders_from_documents,
)
from workflow.simulated import SystemClock

app = typer.Typer(help=help_text("app"), no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help=help_text("db"), no_args_is_help=True)
import_app = typer.Typer(help=help_text("import"), no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")

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


@db_app.command("upgrade", help=help_text("db_upgrade"))
def db_upgrade(lang: Lang = None) -> None:
    """``aftersales db upgrade``: Alembic to head; prints the revision."""
    settings = load_settings()
    language = choose_language(lang, settings)

    async def go() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await current(engine)
        finally:
            await engine.dispose()

    revision = run(language, go())
    console.print(escape(i18n.t(language, "cli.db_upgraded", revision=revision)))


# ---- import orders ----


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _csv_rows(path: Path, tick: Any) -> Iterator[tuple[int, Mapping[str, object]]]:
    """The file's rows with the line number each starts on; read as the import goes."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, restkey=EXTRA_CELLS)
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


def _json_documents(path: Path, tick: Any) -> Iterator[tuple[int, Mapping[str, object]]]:
    for line, document in json_documents(path, tick):
        yield line, _as_object(document)


def _first_bad_line(path: Path) -> int:
    """The number of the first line that is not UTF-8 (the decoder's own position is within
    whatever piece of the file it was given, which tells the reader nothing)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _total(path: Path) -> int:
    """How far the progress bar runs: rows (CSV), lines (JSON Lines) or bytes (JSON)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return max(_count_lines(path) - 1, 0)
    if suffix in (".jsonl", ".ndjson"):
        return _count_lines(path)
    return path.stat().st_size


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


@import_app.command("orders", help=help_text("import_orders"))
def import_orders_command(
    file: Annotated[Path, typer.Argument(help=help_text("file"), metavar="FILE")],
    lang: Lang = None,
) -> None:
    """``aftersales import orders FILE``; exit code 0 all good, 1 some rows refused, 2 failed."""
    settings = load_settings()
    language = choose_language(lang, settings)
    if not file.is_file():
        raise say_error(language, "cli.no_file", path=str(file))
    if file.suffix.lower() not in (".csv", *JSON_SUFFIXES):
        raise say_error(language, "cli.bad_format", path=str(file))

    done = ImportReport()  # what committed, even if the file breaks partway

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
                    engine, parse_file(file, settings, tick), SystemClock().now(), report=done
                )
                progress.update(task, completed=total)
            return report
        except UnicodeDecodeError as exc:
            _print_partway(language, done)
            raise CliFailure("cli.not_utf8", path=str(file), line=_first_bad_line(file)) from exc
        except (json.JSONDecodeError, JsonSyntaxError, csv.Error) as exc:
            _print_partway(language, done)
            raise CliFailure("cli.unreadable", path=str(file), error=str(exc)) from exc
        finally:
            await engine.dispose()

    report = run(language, go())
    print_import_done(language, report)
    if report.errors:
        _print_errors(language, report.errors)
        raise typer.Exit(EXIT_SOME_REFUSED)


def _print_partway(lang: str, report: ImportReport) -> None:
    """Before the sentence saying why the file stopped: what was imported up to there (whole
    orders, kept; importing the mended file again adds only the rest)."""
    if report.imported or report.unchanged or report.errors:
        print_import_done(lang, report)
        if report.errors:
            _print_errors(lang, sorted(report.errors, key=lambda e: e.line_no))


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


cli_run.register(app)
cli_demo.register(app)
cli_diagram.register(app)
cli_report.register(app)


def main() -> None:
    app()
