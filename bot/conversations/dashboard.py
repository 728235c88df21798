"""Staff's dashboard in chat: ``/stats`` sends the charts, ``/export`` the files.

``/stats [days]`` answers with a few lines of totals and one picture per chart;
``/export [days]`` with the self-contained HTML report and a zip of the CSV files (the numbers
behind every chart, and every claim). Both are for staff only; the numbers come from
:mod:`workflow.stats` over aggregate queries, the pictures from :mod:`bot.pictures.charts`.
"""

from __future__ import annotations

import html

from bot import report
from bot.conversations.context import Ctx
from bot.conversations.model import Attachment, Later, Outcome, Output, Screen
from bot.conversations.routes import ROUTES, STAFF
from storage.stats import SqlStats
from workflow import stats


def _days(args: str) -> int | None:
    """The window in days: default when not given, None when it is not a whole number in range."""
    text = args.strip()
    if not text:
        return stats.DEFAULT_DAYS
    if not (text.isascii() and text.isdigit()):
        return None
    days = int(text)
    return days if 1 <= days <= stats.MAX_DAYS else None


def _usage(ctx: Ctx) -> Outcome:
    return ctx.usage("stats.usage", max=stats.MAX_DAYS, default=stats.DEFAULT_DAYS)


async def _dashboard(ctx: Ctx, days: int) -> stats.Dashboard:
    return await stats.collect(SqlStats(ctx.uow.session), ctx.env.clock.now(), days)


@ROUTES.command("stats", STAFF)
async def show_stats(ctx: Ctx, args: str) -> Outcome:
    days = _days(args)
    if days is None:
        return _usage(ctx)
    d = await _dashboard(ctx, days)
    lang = ctx.lang

    async def charts() -> list[Output]:  # drawn after the transaction (seconds for seven)
        pictures = await report.render_charts(d, lang)
        return [Screen(html.escape(chart.title), photo=chart.png) for chart in pictures]

    return Outcome([Screen(report.summary(d, lang)), Later(charts)])


@ROUTES.command("export", STAFF)
async def export(ctx: Ctx, args: str) -> Outcome:
    days = _days(args)
    if days is None:
        return _usage(ctx)
    d = await _dashboard(ctx, days)
    claims = await report.claims_csv(SqlStats(ctx.uow.session), ctx.lang)
    lang, caption = ctx.lang, ctx.t("stats.export.caption_html", days=days, now=_minute(d))
    caption_csv = ctx.t("stats.export.caption_csv")

    async def files() -> list[Output]:  # the charts drawn after the transaction
        (page_name, page), (zip_name, archive) = await report.export_files(d, claims, lang)
        return [Attachment(page_name, page, caption), Attachment(zip_name, archive, caption_csv)]

    return Outcome([Later(files)])


def _minute(d: stats.Dashboard) -> str:
    return d.now.strftime("%Y-%m-%d %H:%M")
