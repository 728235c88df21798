"""The dashboard as files: CSV files and one self-contained ``report.html``.

The same :class:`~workflow.stats.Dashboard` feeds the charts, the CSV files (the numbers
behind each chart, plus every claim) and the HTML report, so the three never disagree. The
report embeds its charts as ``data:`` URIs and its styles inline: it opens from a mail
attachment or a chat download with no network and no other file.

CSV headers are stable machine names (scripts read them); label columns and the HTML are in
the viewer's language. Amounts are integer minor units beside their currency. Files are
UTF-8 with a byte-order mark, so spreadsheet programs read Chinese correctly.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import errno
import html
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot import i18n
from bot.pictures import charts
from workflow import stats
from workflow.claims import ClaimType
from workflow.ports import StatsRepository
from workflow.stats import ClaimRow

ENCODING = "utf-8-sig"
HTML_NAME = "report.html"
CLAIMS_NAME = "claims.csv"


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the CSV header
    header: str | None = None  # text key of the HTML header; None: CSV only


@dataclass(frozen=True, slots=True)
class Table:
    """The numbers behind one chart: ``name`` is the chart's (and the CSV file's) name."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[object, ...], ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds")


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.4f}"


def tables(d: stats.Dashboard, lang: str) -> list[Table]:
    def t(key: str) -> str:
        return i18n.t(lang, key)

    counts = {(c.state, c.claim_type): c.claims for c in d.stages}
    stage_rows = tuple(
        (s, t(f"state.{s}"), ct.value, t(f"claim_type.{ct.value}"), counts.get((s, ct.value), 0))
        for s in stats.OPEN_STAGES
        for ct in ClaimType
    )
    resolution_rows = tuple(
        (
            r.claim_type or "all",
            t(f"claim_type.{r.claim_type}") if r.claim_type else t("stats.chart.resolution.all"),
            r.claims,
            _hours(r.median_hours),
        )
        for r in d.resolution
    )
    reason_rows: list[tuple[object, ...]] = []
    for r in d.reasons:
        for currency, amount in r.refunded or (("", 0),):
            reason_rows.append((r.reason, t(f"reason.{r.reason}"), r.claims, currency, amount))
    rate_columns = (
        Column("units_sold", "stats.column.units_sold"),
        Column("units_returned", "stats.column.units_returned"),
        Column("return_claims", "stats.column.claims"),
        Column("return_rate", "stats.column.rate"),
    )

    def rate_rows(rates: Sequence[stats.ReturnRate], with_name: bool) -> tuple[Any, ...]:
        ranked = stats.highest_rates(rates, len(rates))
        return tuple(
            (
                *((r.key, r.name) if with_name else (r.key,)),
                r.units_sold,
                r.units_returned,
                r.claims,
                _rate(r.rate),
            )
            for r in ranked
        )

    return [
        Table(
            "open_by_stage",
            (
                Column("state"),
                Column("state_label", "stats.column.stage"),
                Column("claim_type"),
                Column("claim_type_label", "stats.column.claim_type"),
                Column("claims", "stats.column.claims"),
            ),
            stage_rows,
        ),
        Table(
            "opened_and_resolved",
            (
                Column("day", "stats.column.day"),
                Column("opened", "stats.chart.daily.opened"),
                Column("resolved", "stats.chart.daily.resolved"),
            ),
            tuple((x.day.isoformat(), x.opened, x.resolved) for x in d.daily),
        ),
        Table(
            "time_to_resolution",
            (
                Column("claim_type"),
                Column("claim_type_label", "stats.column.claim_type"),
                Column("resolved_claims", "stats.column.claims"),
                Column("median_hours", "stats.column.median_hours"),
            ),
            resolution_rows,
        ),
        Table(
            "return_rate_consignors",
            (
                Column("consignor_ref"),
                Column("consignor_name", "stats.column.consignor"),
                *rate_columns,
            ),
            rate_rows(d.by_consignor, with_name=True),
        ),
        Table(
            "return_rate_categories",
            (Column("category", "stats.column.category"), *rate_columns),
            rate_rows(d.by_category, with_name=False),
        ),
        Table(
            "refund_reasons",
            (
                Column("reason"),
                Column("reason_label", "stats.column.reason"),
                Column("claims", "stats.column.claims"),
                Column("currency"),
                Column("refunded_minor", "stats.column.refunded"),
            ),
            tuple(reason_rows),
        ),
        Table(
            "sla_breaches",
            (
                Column("kind"),
                Column("kind_label", "stats.column.breach"),
                Column("count", "stats.column.count"),
            ),
            tuple((b.kind, t(f"stats.breach.{b.kind}"), b.count) for b in d.breaches),
        ),
    ]


# A spreadsheet runs a cell that starts with one of these as a formula: a consignor named
# "=HYPERLINK(…)" must open as that text, not as a link (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(cell: object) -> object:
    """A text cell a spreadsheet would take for a formula gets a leading apostrophe (shown
    by no spreadsheet); numbers, negative ones too, stay numbers."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in table.columns])
    writer.writerows(tuple(_as_text(cell) for cell in row) for row in table.rows)
    return buffer.getvalue()


CLAIM_COLUMNS = (
    "claim_id",
    "status",
    "status_label",
    "claim_type",
    "claim_type_label",
    "reason",
    "reason_label",
    "source",
    "liability",
    "currency",
    "claimed_minor",
    "refund_minor",
    "compensation_minor",
    "refunded_minor",
    "created_at",
    "updated_at",
    "closed_at",
)


async def write_claims(rows: AsyncIterator[ClaimRow], lang: str, handle: TextIO) -> int:
    """Every claim, one CSV row each, as the rows stream in; returns how many."""

    def t(key: str) -> str:
        return i18n.t(lang, key)

    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CLAIM_COLUMNS)
    written = 0
    async for r in rows:
        writer.writerow(
            (
                r.id,
                r.status,
                t(f"state.{r.status}"),
                r.claim_type,
                t(f"claim_type.{r.claim_type}"),
                r.reason,
                t(f"reason.{r.reason}"),
                r.source,
                r.liability or "",
                r.currency,
                r.claimed_amount,
                "" if r.refund_amount is None else r.refund_amount,
                "" if r.compensation_amount is None else r.compensation_amount,
                r.refunded,
                when(r.created_at),
                when(r.updated_at),
                when(r.closed_at),
            )
        )
        written += 1
    return written


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC",
  "Microsoft YaHei", sans-serif; margin: 0; background: #f5f7f9; color: #1c2833; }
main { max-width: 1040px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px; } .meta { color: #5d6d7e; margin: 0 0 16px; }
.summary { background: #fff; border-radius: 8px; padding: 12px 16px; line-height: 1.6; }
section { background: #fff; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
section h2 { font-size: 1.1em; margin: 4px 0 8px; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin-top: 8px; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e5e8e8; padding: 4px 10px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
details summary { cursor: pointer; color: #1f4e79; margin-top: 6px; }
"""


def summary(d: stats.Dashboard, lang: str) -> str:
    """The dashboard in a few lines (Telegram's HTML subset: safe inside a page too)."""
    return i18n.t(
        lang,
        "stats.summary",
        now=d.now.strftime("%Y-%m-%d %H:%M"),
        open=d.open_claims,
        days=d.days,
        opened=d.opened,
        resolved=d.resolved,
        rate=f"{d.return_rate * 100:.1f}%",
        returned=d.units_returned,
        sold=d.units_sold,
        breaches=d.breached,
    )


def _cell(value: object) -> str:
    numeric = isinstance(value, int | float) or (
        isinstance(value, str) and value.replace(".", "", 1).isdigit()
    )
    return (
        f'<td class="n">{html.escape(str(value))}</td>'
        if numeric
        else (f"<td>{html.escape(str(value))}</td>")
    )


def _html_table(table: Table, lang: str) -> str:
    shown = [i for i, c in enumerate(table.columns) if c.header is not None]
    head = "".join(
        f"<th>{html.escape(i18n.t(lang, table.columns[i].header or ''))}</th>" for i in shown
    )
    body = "".join("<tr>" + "".join(_cell(row[i]) for i in shown) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(
    d: stats.Dashboard, pictures: Sequence[charts.Chart], numbers: Sequence[Table], lang: str
) -> str:
    def t(key: str, **params: Any) -> str:
        return html.escape(i18n.t(lang, key, **params))

    by_name = {table.name: table for table in numbers}
    sections = []
    for chart in pictures:
        data = base64.b64encode(chart.png).decode("ascii")
        table = by_name.get(chart.name)
        details = (
            f"<details><summary>{t('stats.html.numbers')}</summary>"
            f"{_html_table(table, lang)}</details>"
            if table is not None
            else ""
        )
        sections.append(
            f'<section id="{chart.name}"><h2>{html.escape(chart.title)}</h2>'
            f'<img alt="{html.escape(chart.title)}" src="data:image/png;base64,{data}">'
            f"{details}</section>"
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{t('stats.html.title')}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{t('stats.html.title')}</h1>"
        f'<p class="meta">{t("stats.html.generated", now=d.now.strftime("%Y-%m-%d %H:%M"), days=d.days)}</p>'
        f'<div class="summary">{summary(d, lang).replace(chr(10), "<br>")}</div>'
        + "".join(sections)
        + f'<p class="meta">{t("stats.html.files")}</p></main></body></html>\n'
    )


async def render_charts(d: stats.Dashboard, lang: str) -> list[charts.Chart]:
    """The charts, drawn in a worker thread so a running bot keeps answering meanwhile."""
    return await asyncio.to_thread(charts.render, d, lang)


async def write_report(
    out: Path,
    repo: StatsRepository,
    d: stats.Dashboard,
    lang: str,
    pictures: Sequence[charts.Chart] | None = None,
) -> list[Path]:
    """Write every CSV file and ``report.html`` into ``out`` (made if missing): all of them or
    none. They are written into a folder of their own inside ``out`` first and moved into
    place once all are written, so a failure half-way (a full disk, a folder where a file
    goes) leaves the last report as it was, never old and new files mixed.

    ``pictures``: the charts, if drawn already (drawing them outside the transaction keeps
    SQLite's write lock short).
    """
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a local folder, once)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        numbers = tables(d, lang)
        written = []
        for table in numbers:
            path = staging / table.filename
            path.write_text(csv_text(table), encoding=ENCODING)
            written.append(path)
        path = staging / CLAIMS_NAME
        with path.open("w", encoding=ENCODING, newline="") as handle:
            await write_claims(repo.claim_rows(), lang, handle)
        written.append(path)
        path = staging / HTML_NAME
        if pictures is None:
            pictures = await render_charts(d, lang)
        path.write_text(html_report(d, pictures, numbers, lang), encoding="utf-8")
        written.append(path)
        for path in written:  # what would stop a move, before anything is moved
            if (out / path.name).is_dir():
                raise IsADirectoryError(
                    errno.EISDIR, os.strerror(errno.EISDIR), str(out / path.name)
                )
        for path in written:
            os.replace(path, out / path.name)
        return [out / path.name for path in written]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def claims_csv(repo: StatsRepository, lang: str) -> str:
    """Every claim as CSV text: the part of an export that reads the database."""
    text = io.StringIO()
    await write_claims(repo.claim_rows(), lang, text)
    return text.getvalue()


async def export_files(
    d: stats.Dashboard, claims: str, lang: str
) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """For a chat: (html file name, bytes) and (zip of every CSV file name, bytes), from the
    dashboard and :func:`claims_csv` read before; needs no database, so a bot calls it after
    the update's transaction (drawing the charts takes seconds)."""
    stamp = d.now.strftime("%Y%m%d-%H%M")
    numbers = tables(d, lang)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for table in numbers:
            z.writestr(table.filename, csv_text(table).encode(ENCODING))
        z.writestr(CLAIMS_NAME, claims.encode(ENCODING))
    page = html_report(d, await render_charts(d, lang), numbers, lang).encode("utf-8")
    return (f"aftersales-report-{stamp}.html", page), (
        f"aftersales-report-{stamp}-csv.zip",
        archive.getvalue(),
    )
