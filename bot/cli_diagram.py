"""``aftersales diagram``: the lifecycle flowchart, whole or lit for one claim.

PNG and SVG bytes, or Mermaid text, to a file or to stdout (so it pipes: ``aftersales
diagram --claim 7 > claim7.png``). Messages go to stderr so they never mix with the picture.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from bot import i18n
from bot.settings import Settings, settings_problem
from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
from workflow import diagram

console = Console(stderr=True)
# Claim ids are 64-bit integers: a larger --claim names no claim (and SQLite cannot take it).
MAX_CLAIM_ID = 2**63 - 1


def _fail(lang: str, key: str, /, **params: Any) -> typer.Exit:
    console.print(
        i18n.t(lang, key, **params), style="red", markup=False, highlight=False, soft_wrap=True
    )
    return typer.Exit(code=2)


async def _read_claim(database_url: str, claim_id: int) -> tuple[diagram.Trace, int] | None:
    engine = make_engine(database_url)
    try:
        async with UnitOfWorkFactory(engine)() as uow:
            claim = await uow.claims.get(claim_id)
            if claim is None:
                return None
            events = await uow.claims.timeline(claim_id)
            return diagram.Trace.of(claim.claim_type, claim.status, events), claim.id
    finally:
        await engine.dispose()


def diagram_command(
    claim: Annotated[
        int | None, typer.Option("--claim", help="Light up this claim's state and path")
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="en or zh-CN (default: AFTERSALES_LANG or en)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="png, svg or mermaid")] = "png",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: stdout)")
    ] = None,
) -> None:
    """Draw the claim lifecycle from the transition table; with --claim, light up one case."""
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise _fail(
            lang if lang in i18n.LANGUAGES else "en",
            "cli.bad_settings",
            error=settings_problem(exc),
        ) from exc
    language = lang or settings.lang
    if language not in i18n.LANGUAGES:
        raise _fail("en", "diagram.bad_lang", language=language)
    if fmt not in diagram.FORMATS:
        raise _fail(language, "diagram.bad_format", format=fmt)

    def label(kind: str, name: str) -> str:
        return i18n.t(language, f"{kind}.{name}")

    trace = None
    title = i18n.t(language, "diagram.title")
    if claim is not None:
        if not 1 <= claim <= MAX_CLAIM_ID:  # no such claim, and more than a database holds
            raise _fail(language, "diagram.no_claim", claim_id=claim)
        try:
            found = asyncio.run(_read_claim(settings.database_url, claim))
        except (OSError, SQLAlchemyError, ModuleNotFoundError) as exc:
            raise _fail(
                language,
                "diagram.db_error",
                error=(str(exc).splitlines() or [type(exc).__name__])[0],
            ) from exc
        if found is None:
            raise _fail(language, "diagram.no_claim", claim_id=claim)
        trace, claim_id = found
        title = i18n.t(
            language,
            "diagram.title_claim",
            claim_id=claim_id,
            claim_type=label("claim_type", trace.claim_type.value),
            state=label("state", trace.current),
        )

    data = (
        diagram.mermaid(label, trace, title).encode("utf-8")
        if fmt == "mermaid"
        else diagram.render(label, "png" if fmt == "png" else "svg", trace, title)
    )
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise _fail(
            language, "diagram.unwritable", path=str(out), error=exc.strerror or str(exc)
        ) from exc
    console.print(i18n.t(language, "diagram.written", path=str(out)), markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("diagram")(diagram_command)
