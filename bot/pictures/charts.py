"""The dashboard's charts: one PNG per chart, drawn by matplotlib's Agg renderer.

No pyplot and no global backend: each chart is a bare :class:`~matplotlib.figure.Figure`
saved to bytes, so charts can be drawn in a worker thread of a running bot. Labels are in
the viewer's language (states, reasons and claim types use the lifecycle's own texts), and
the text font is the CJK font bundled under ``workflow/fonts`` (see :func:`font_families`),
so a fresh machine draws Chinese, not boxes. Claim types keep the flowchart's colours.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

import workflow
from bot import i18n
from workflow import stats
from workflow.claims import ClaimType
from workflow.diagram import TYPE_COLOURS
from workflow.money import Money

FONT_DIR = Path(workflow.__file__).resolve().parent / "fonts"
FALLBACK_FAMILY = "DejaVu Sans"  # ships with matplotlib: Latin only
TOP = 12  # bars in a return-rate chart
SIZE = (9.0, 5.0)  # inches
DPI = 110
NEUTRAL, GOOD, BAD, QUIET = "#546e7a", "#2e7d32", "#c62828", "#b0bec5"
OPENED, RESOLVED = "#1f4e79", "#7cb342"

# rcParams are process-wide: one chart at a time, whatever thread draws it.
_DRAWING = threading.Lock()


@cache
def font_families() -> tuple[str, ...]:
    """The font families chart text is drawn in, best first.

    Every ``*.ttf`` / ``*.otf`` under ``workflow/fonts`` is registered with matplotlib and
    comes first; DejaVu Sans (bundled with matplotlib) is last, so without a bundled font
    Latin text still renders. Matplotlib falls back glyph by glyph along this list.
    """
    families: list[str] = []
    for path in sorted(FONT_DIR.glob("*.[ot]tf")):
        font_manager.fontManager.addfont(str(path))
        families.append(font_manager.FontProperties(fname=str(path)).get_name())
    return (*dict.fromkeys(families), FALLBACK_FAMILY)


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # a file stem: open_by_stage, ...
    title: str
    png: bytes


Text = Callable[..., str]


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white", metadata={"Software": None})
    return buffer.getvalue()


def _empty(axes: Axes, t: Text) -> None:
    axes.set_axis_off()
    axes.text(
        0.5, 0.5, t("stats.chart.empty"), ha="center", va="center", fontsize=16, color=NEUTRAL
    )


def _bar_labels(axes: Axes, bars: Any, labels: Sequence[str]) -> None:
    axes.bar_label(bars, labels=list(labels), padding=4, fontsize=9, color="#333333")
    low, high = axes.get_xlim()
    axes.set_xlim(low, high + (high - low) * 0.35)  # room for the labels


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def open_by_stage(d: stats.Dashboard, t: Text) -> Figure:
    """Open claims per state, in the order a case moves, stacked by claim type."""
    figure, axes = _figure()
    axes.set_title(t("stats.chart.stages.title"), loc="left", fontsize=13)
    if d.open_claims == 0:
        _empty(axes, t)
        return figure
    states = [s for s, _ in d.stage_totals()]
    labels = [t(f"state.{s}") for s in states]
    left = [0] * len(states)
    counts = {(c.state, c.claim_type): c.claims for c in d.stages}
    for ctype in ClaimType:
        widths = [counts.get((s, ctype.value), 0) for s in states]
        axes.barh(
            labels,
            widths,
            left=left,
            color=TYPE_COLOURS.get(ctype, NEUTRAL),
            label=t(f"claim_type.{ctype.value}"),
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, total in enumerate(left):
        if total:
            axes.text(total, y, f" {total}", va="center", fontsize=9)
    axes.set_xlim(0, max(left) * 1.08)
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(t("stats.chart.claims"))
    axes.legend(loc="lower right", frameon=False)
    return figure


def opened_and_resolved(d: stats.Dashboard, t: Text) -> Figure:
    figure, axes = _figure()
    axes.set_title(t("stats.chart.daily.title", days=d.days), loc="left", fontsize=13)
    if d.opened == 0 and d.resolved == 0:
        _empty(axes, t)
        return figure
    x = list(range(len(d.daily)))
    width = 0.4
    axes.bar(
        [i - width / 2 for i in x],
        [day.opened for day in d.daily],
        width,
        color=OPENED,
        label=t("stats.chart.daily.opened"),
    )
    axes.bar(
        [i + width / 2 for i in x],
        [day.resolved for day in d.daily],
        width,
        color=RESOLVED,
        label=t("stats.chart.daily.resolved"),
    )
    step = max(1, len(x) // 14)
    axes.set_xticks(x[::step], [day.day.strftime("%m-%d") for day in d.daily][::step])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(t("stats.chart.claims"))
    axes.legend(loc="upper left", frameon=False)
    return figure


def time_to_resolution(d: stats.Dashboard, t: Text) -> Figure:
    figure, axes = _figure()
    axes.set_title(t("stats.chart.resolution.title"), loc="left", fontsize=13)
    if not any(r.claims for r in d.resolution):
        _empty(axes, t)
        return figure
    labels, hours, colours, notes = [], [], [], []
    for r in d.resolution:
        if r.claim_type is None:
            labels.append(t("stats.chart.resolution.all"))
            colours.append(NEUTRAL)
        else:
            labels.append(t(f"claim_type.{r.claim_type}"))
            colours.append(TYPE_COLOURS.get(ClaimType(r.claim_type), NEUTRAL))
        hours.append(r.median_hours or 0.0)
        notes.append(
            t("stats.chart.resolution.none")
            if r.median_hours is None
            else t("stats.chart.resolution.bar", hours=f"{r.median_hours:.1f}", claims=r.claims)
        )
    bars = axes.barh(labels, hours, color=colours)
    axes.invert_yaxis()
    axes.set_xlabel(t("stats.chart.resolution.axis"))
    if max(hours) == 0:
        axes.set_xlim(0, 1)
    _bar_labels(axes, bars, notes)
    return figure


def _rates(rates: Sequence[stats.ReturnRate], t: Text, title_key: str, colour: str) -> Figure:
    figure, axes = _figure()
    shown = stats.highest_rates(rates, TOP)
    axes.set_title(t(title_key, shown=len(shown), total=len(rates)), loc="left", fontsize=13)
    if not shown:
        _empty(axes, t)
        return figure
    bars = axes.barh([r.name for r in shown], [r.rate for r in shown], color=colour, height=0.6)
    axes.invert_yaxis()
    axes.set_xlim(0, max(0.05, max(r.rate for r in shown) * 1.1))
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    axes.set_xlabel(t("stats.chart.rate.axis"))
    _bar_labels(
        axes,
        bars,
        [
            t(
                "stats.chart.rate.bar",
                rate=_percent(r.rate),
                returned=r.units_returned,
                sold=r.units_sold,
            )
            for r in shown
        ],
    )
    return figure


def return_rate_consignors(d: stats.Dashboard, t: Text) -> Figure:
    return _rates(d.by_consignor, t, "stats.chart.consignors.title", "#e65100")


def return_rate_categories(d: stats.Dashboard, t: Text) -> Figure:
    return _rates(d.by_category, t, "stats.chart.categories.title", "#6d4c41")


def refunded_text(refunded: Sequence[tuple[str, int]]) -> str:
    return " + ".join(Money(amount, currency).format() for currency, amount in refunded)


def refund_reasons(d: stats.Dashboard, t: Text) -> Figure:
    figure, axes = _figure()
    axes.set_title(t("stats.chart.reasons.title"), loc="left", fontsize=13)
    if not any(r.claims for r in d.reasons):
        _empty(axes, t)
        return figure
    bars = axes.barh(
        [t(f"reason.{r.reason}") for r in d.reasons],
        [r.claims for r in d.reasons],
        color=[NEUTRAL if r.claims else QUIET for r in d.reasons],
    )
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(t("stats.chart.claims"))
    _bar_labels(
        axes,
        bars,
        [
            f"{r.claims} · {refunded_text(r.refunded)}" if r.refunded else str(r.claims)
            for r in d.reasons
        ],
    )
    return figure


def sla_breaches(d: stats.Dashboard, t: Text) -> Figure:
    figure, axes = _figure()
    axes.set_title(t("stats.chart.breaches.title"), loc="left", fontsize=13)
    counts = [b.count for b in d.breaches]
    bars = axes.barh(
        [t(f"stats.breach.{b.kind}") for b in d.breaches],
        counts,
        color=[BAD if n else GOOD for n in counts],
    )
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{int(v)}"))
    if not any(counts):
        axes.set_xlim(0, 1)
    axes.set_xlabel(t("stats.chart.breaches.axis"))
    _bar_labels(axes, bars, [str(n) for n in counts])
    return figure


CHARTS: tuple[tuple[str, str, Callable[[stats.Dashboard, Text], Figure]], ...] = (
    ("open_by_stage", "stats.chart.stages.title", open_by_stage),
    ("opened_and_resolved", "stats.chart.daily.title", opened_and_resolved),
    ("time_to_resolution", "stats.chart.resolution.title", time_to_resolution),
    ("return_rate_consignors", "stats.chart.consignors.title", return_rate_consignors),
    ("return_rate_categories", "stats.chart.categories.title", return_rate_categories),
    ("refund_reasons", "stats.chart.reasons.title", refund_reasons),
    ("sla_breaches", "stats.chart.breaches.title", sla_breaches),
)


def _title(d: stats.Dashboard, t: Text, key: str, name: str) -> str:
    rates = {"return_rate_consignors": d.by_consignor, "return_rate_categories": d.by_category}
    if name in rates:
        every = rates[name]
        return t(key, shown=min(TOP, len(every)), total=len(every))
    return t(key, days=d.days)


def render(d: stats.Dashboard, lang: str) -> list[Chart]:
    """Every chart of the dashboard, as PNG bytes, with its title in ``lang``."""

    def t(key: str, **params: Any) -> str:
        return i18n.t(lang, key, **params)

    rc: dict[str, Any] = {"font.family": list(font_families()), "font.size": 10}
    charts = []
    with _DRAWING, matplotlib.rc_context(rc):  # type: ignore[arg-type]
        for name, key, draw in CHARTS:
            charts.append(Chart(name, _title(d, t, key, name), _png(draw(d, t))))
    return charts
