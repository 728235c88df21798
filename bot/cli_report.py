"""``aftersales report --out DIR``: the dashboard as CSV files and one self-contained HTML page.

Every failure is one sentence on stderr in the chosen language, with exit code 2: a bad
language or day count, an --out that is a file or cannot be written, a database that cannot
be read.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from bot import i18n
from bot.settings import Settings, settings_problem
from workflow import stats

console = Console(stderr=True)


def _help_language() -> str:
    chosen = os.environ.get("AFTERSALES_LANG", i18n.DEFAULT)
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT


def _help(key: str) -> str:
    return i18n.t(_help_language(), f"stats.cli.{key}")


def _fail(lang: str, key: str, /, **params: Any) -> typer.Exit:
    console.print(
        i18n.t(lang, key, **params), style="red", markup=False, highlight=False, soft_wrap=True
    )
    return typer.Exit(code=2)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class _DatabaseError(Exception):
    pass


async def _run(database_url: str, out: Path, days: int, lang: str) -> list[Path]:
    """Read the numbers, draw, then write the files; a database failure at any step says so.

    Two short transactions: the charts are drawn between them, outside any lock. Imported
    here, not at the top: matplotlib would slow every other command's start.
    """
    from bot import report
    from storage.engine import make_engine
    from storage.stats import SqlStats
    from storage.uow import UnitOfWorkFactory
    from workflow.simulated import SystemClock

    try:
        uows = UnitOfWorkFactory(make_engine(database_url))
    except (SQLAlchemyError, ModuleNotFoundError) as exc:  # a URL we cannot use
        raise _DatabaseError(_first_line(exc)) from exc
    try:
        try:
            async with uows() as uow:
                d = await stats.collect(SqlStats(uow.session), SystemClock().now(), days)
        except (OSError, SQLAlchemyError) as exc:
            raise _DatabaseError(_first_line(exc)) from exc
        pictures = await report.render_charts(d, lang)
        try:
            async with uows() as uow:
                return await report.write_report(out, SqlStats(uow.session), d, lang, pictures)
        except SQLAlchemyError as exc:
            raise _DatabaseError(_first_line(exc)) from exc
    finally:
        await uows.engine.dispose()


def report_command(
    out: Annotated[Path, typer.Option("--out", help=_help("help_out"))],
    lang: Annotated[str | None, typer.Option("--lang", help=_help("help_lang"))] = None,
    days: Annotated[int, typer.Option("--days", help=_help("help_days"))] = stats.DEFAULT_DAYS,
) -> None:
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise _fail(
            lang if lang in i18n.LANGUAGES else i18n.DEFAULT,
            "cli.bad_settings",
            error=settings_problem(exc),
        ) from exc
    language = lang or settings.lang
    if language not in i18n.LANGUAGES:
        raise _fail(i18n.DEFAULT, "stats.cli.bad_lang", language=language)
    if not 1 <= days <= stats.MAX_DAYS:
        raise _fail(language, "stats.cli.bad_days", days=days, max=stats.MAX_DAYS)
    if out.exists() and not out.is_dir():
        raise _fail(language, "stats.cli.not_a_folder", path=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".aftersales-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _fail(
            language, "stats.cli.unwritable", path=str(out), error=exc.strerror or str(exc)
        ) from exc
    try:
        written = asyncio.run(_run(settings.database_url, out, days, language))
    except _DatabaseError as exc:
        raise _fail(language, "stats.cli.db_error", error=str(exc)) from exc
    except OSError as exc:
        raise _fail(
            language, "stats.cli.unwritable", path=str(out), error=exc.strerror or str(exc)
        ) from exc
    console.print(
        i18n.t(language, "stats.cli.written", path=str(out), files=len(written)),
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("report", help=_help("help"))(report_command)
