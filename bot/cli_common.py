"""What every ``aftersales`` command shares: the language, settings, and one clear sentence.

A command reads its settings and language with ``load_settings`` / ``choose_language`` and
runs its async work through ``run``, which turns every expected failure (a domain refusal, a
database that cannot be reached or named, a ``CliFailure``) into one sentence in the user's
language and exit code 2 — never a traceback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from bot import i18n
from bot.settings import Settings, settings_problem
from storage.importer import ImportReport
from storage.migrate import UnknownRevision
from workflow.errors import DomainError

T = TypeVar("T")
EXIT_SOME_REFUSED = 1
EXIT_FAILED = 2
console = Console()


def _help_language() -> str:
    """The language of ``--help``: it is drawn before any option is read."""
    chosen = os.environ.get("AFTERSALES_LANG", i18n.DEFAULT)
    return chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT


HELP_LANG = _help_language()


def help_text(key: str) -> str:
    return i18n.t(HELP_LANG, f"cli.help.{key}")


Lang = Annotated[
    str | None,
    typer.Option("--lang", help=help_text("lang"), metavar="LANG"),
]


class CliFailure(Exception):
    """A sentence for the user (a message key and its parameters), then exit code 2."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def say_error(lang: str, key: str, **params: Any) -> typer.Exit:
    """Print one sentence in red; the caller raises the returned exit (code 2)."""
    console.print(f"[red]{escape(i18n.t(lang, key, **params))}[/red]")
    return typer.Exit(EXIT_FAILED)


def choose_language(option: str | None, settings: Settings) -> str:
    chosen = option or settings.lang
    if chosen not in i18n.LANGUAGES:
        raise say_error(i18n.DEFAULT, "cli.unknown_language", language=chosen)
    return chosen


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise say_error(i18n.DEFAULT, "cli.bad_settings", error=settings_problem(exc)) from exc


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def run(lang: str, work: Coroutine[Any, Any, T]) -> T:
    """Run one command's work; every expected failure becomes one sentence and exit code 2."""
    try:
        return asyncio.run(work)
    except CliFailure as exc:
        key, params = exc.key, exc.params
    except DomainError as exc:
        key, params = i18n.refusal_key(lang, exc.key, exc.params), exc.params
    except UnknownRevision as exc:
        key, params = "cli.db_newer", {"revision": exc.revision}
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        key, params = "cli.bad_database_url", {"error": _first_line(exc)}
    except (OSError, DBAPIError) as exc:
        key, params = "cli.db_unreachable", {"error": _first_line(exc)}
    raise say_error(lang, key, **params)


def print_import_done(lang: str, report: ImportReport) -> None:
    """The one-line summary of an import, shared by ``import orders`` and ``seed-demo``."""
    console.print(
        escape(
            i18n.t(
                lang,
                "cli.import_done",
                imported=report.imported,
                unchanged=report.unchanged,
                refused=len(report.errors),
            )
        )
    )
