"""``aftersales report`` run as a user runs it, and the charts it draws.

The CLI writes the CSV files and one HTML page whose charts are embedded PNGs and which
names no outside address. Charts in Chinese draw every character in the bundled font: a
missing glyph (matplotlib's warning, drawn as a box) fails the test. The PNGs are kept in
``test-artifacts/dashboard/`` to be looked at.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot import i18n, report
from bot.cli import app
from bot.pictures import charts
from storage.engine import make_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.stats import SqlStats
from storage.uow import UnitOfWorkFactory
from tests.workflow.test_stats import History, history
from workflow import stats
from workflow.services.common import Env
from workflow.simulated import ManualClock

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CLI = [sys.executable, "-m", "bot", "report"]
PNG = b"\x89PNG\r\n\x1a\n"
CHART_NAMES = [name for name, _key, _draw in charts.CHARTS]


def run(args: list[str], db: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AFTERSALES_DATABASE_URL": sqlite_url_for(db),
        "AFTERSALES_LANG": lang,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
async def claims_db(tmp_path: Path) -> tuple[Path, History, stats.Dashboard]:
    """A database file holding the story of tests/workflow/test_stats.py, and its numbers."""
    db = tmp_path / "claims.db"
    engine = make_engine(sqlite_url_for(db))
    try:
        await upgrade(engine)
        uows = UnitOfWorkFactory(engine)
        clock = ManualClock()
        h = await history(uows, Env(clock=clock), clock)
        async with uows() as uow:
            d = await stats.collect(SqlStats(uow.session), clock.now(), 7)
    finally:
        await engine.dispose()
    return db, h, d


def invoke(args: list[str], db: Path) -> Result:
    """The same command in this process (quicker, for the cases that fail before any work)."""
    env = {"AFTERSALES_DATABASE_URL": sqlite_url_for(db), "AFTERSALES_LANG": "en"}
    result = CliRunner().invoke(app, ["report", *args], env=env)
    assert isinstance(result.exception, SystemExit), result.exception
    return result


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


async def test_the_report_command_writes_csv_files_and_a_self_contained_page(
    claims_db: tuple[Path, History, stats.Dashboard], tmp_path: Path
) -> None:
    db, h, _ = claims_db
    out = tmp_path / "out" / "dashboard"  # made, parents and all
    done = run(["--out", str(out), "--days", "30"], db)
    assert done.returncode == 0, done.stderr
    assert f"Report written to {out}" in done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{n}.csv" for n in CHART_NAMES] + ["claims.csv", "report.html"])

    claims = _csv(out / "claims.csv")
    assert sorted(int(r["claim_id"]) for r in claims) == sorted(
        [h.closed, h.rejected, h.awaiting_return, h.needs_review, h.withdrawn, h.exchange]
    )
    [closed] = [r for r in claims if int(r["claim_id"]) == h.closed]
    assert (closed["status_label"], closed["refunded_minor"], closed["currency"]) == (
        "Completed",
        "10000",
        "CNY",
    )
    assert closed["closed_at"].endswith("+00:00")
    consignors = {r["consignor_ref"]: r for r in _csv(out / "return_rate_consignors.csv")}
    assert (consignors["C1"]["units_sold"], consignors["C1"]["units_returned"]) == ("6", "3")
    assert consignors["C1"]["return_rate"] == "0.5000"
    reasons = {r["reason"]: r for r in _csv(out / "refund_reasons.csv")}
    assert (
        reasons["no_reason_7_days"]["claims"],
        reasons["no_reason_7_days"]["refunded_minor"],
    ) == (
        "3",
        "10000",
    )
    assert len(_csv(out / "opened_and_resolved.csv")) == 30

    page = (out / "report.html").read_text(encoding="utf-8")
    pngs = _embedded_pngs(page)
    assert len(pngs) == len(CHART_NAMES)
    assert all(p.startswith(PNG) for p in pngs)
    # Self-contained: no outside address, no linked script, style sheet or image.
    text = re.sub(r'"data:image/png;base64,[A-Za-z0-9+/=]+"', '""', page)
    assert not re.search(r"https?:|//[a-z0-9]|<script|<link|url\(|@import", text, re.I)
    assert text.count('src=""') == len(CHART_NAMES)
    assert "src=" not in text.replace('src=""', "")
    assert "Return rate per consignor" in page
    assert "Consignor C1" in page


async def test_the_report_speaks_chinese(
    claims_db: tuple[Path, History, stats.Dashboard], tmp_path: Path
) -> None:
    db, _, _ = claims_db
    out = tmp_path / "zh"
    done = run(["--out", str(out), "--lang", "zh-CN"], db, lang="en")
    assert done.returncode == 0, done.stderr
    assert "报告已写入" in done.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and "售后报告" in page
    labels = {r["status"]: r["status_label"] for r in _csv(out / "claims.csv")}
    assert labels["closed"] == i18n.t("zh-CN", "state.closed") != i18n.t("en", "state.closed")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--days", "0"], "--days must be a whole number from 1 to 366, not 0."),
        (["--lang", "fr"], "“fr” is not a language we have texts for"),
    ],
)
def test_bad_options_get_one_clear_sentence(tmp_path: Path, args: list[str], says: str) -> None:
    result = invoke(["--out", str(tmp_path / "out"), *args], tmp_path / "any.db")
    assert result.exit_code == 2
    assert says in " ".join(result.output.split()), result.output
    assert "pydantic" not in result.output  # one sentence, not the validator's report
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_or_cannot_be_made_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    result = invoke(["--out", str(a_file)], tmp_path / "any.db")
    assert result.exit_code == 2
    assert f"{a_file} is a file, not a folder." in result.output
    below = a_file / "below"  # a folder inside a file cannot be made
    result = invoke(["--out", str(below)], tmp_path / "any.db")
    assert result.exit_code == 2
    assert f"{below} could not be written (Not a directory)" in result.output


def test_a_report_that_cannot_be_written_whole_leaves_the_last_one_as_it_was(
    claims_db: tuple[Path, History, stats.Dashboard], tmp_path: Path
) -> None:
    """A folder where claims.csv goes: the report fails, and the page and tables already in
    the folder are the last report's, not some old and some new."""
    db, _, _ = claims_db
    out = tmp_path / "out"
    (out / "claims.csv").mkdir(parents=True)
    (out / "report.html").write_text("last week's", encoding="utf-8")
    done = run(["--out", str(out)], db)
    assert done.returncode == 2, done.stderr
    assert "could not be written (Is a directory)" in " ".join(done.stderr.split())
    assert sorted(p.name for p in out.iterdir()) == ["claims.csv", "report.html"]
    assert (out / "report.html").read_text(encoding="utf-8") == "last week's"


def test_a_database_without_the_schema_is_explained(tmp_path: Path) -> None:
    done = run(["--out", str(tmp_path / "out")], tmp_path / "empty.db")
    assert done.returncode == 2
    assert "The dashboard could not be read from the database" in done.stderr
    assert "aftersales db upgrade" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the charts ----


def _missing_glyphs(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_chart_is_a_png_with_every_glyph_in_the_font(
    claims_db: tuple[Path, History, stats.Dashboard], lang: str
) -> None:
    _, _, d = claims_db
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = charts.render(d, lang)
    assert _missing_glyphs(caught) == []
    assert [c.name for c in drawn] == CHART_NAMES
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for chart in drawn:
        assert chart.png.startswith(PNG)
        width, height = int.from_bytes(chart.png[16:20]), int.from_bytes(chart.png[20:24])
        assert (width, height) == (990, 550)
        (ARTIFACTS / f"{lang}-{chart.name}.png").write_bytes(chart.png)
    titles = {c.name: c.title for c in drawn}
    assert titles["return_rate_consignors"] == i18n.t(
        lang, "stats.chart.consignors.title", shown=2, total=2
    )


def test_the_bundled_cjk_font_comes_first() -> None:
    families = charts.font_families()
    assert families[-1] == charts.FALLBACK_FAMILY
    if list(charts.FONT_DIR.glob("*.[ot]tf")):
        assert families[0] != charts.FALLBACK_FAMILY


def test_a_character_outside_the_font_would_be_caught() -> None:
    """The check above can fail: a glyph the bundled font lacks is reported."""
    lacking = "\u9f98"  # 龘: in no subset of our texts, and not in DejaVu Sans
    d = stats.Dashboard(
        now=ManualClock().now(),
        days=1,
        stages=(),
        daily=(),
        resolution=(),
        by_consignor=(stats.ReturnRate("X", lacking, 2, 1, 1),),
        by_category=(),
        reasons=(),
        breaches=(),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts.render(d, "en")
    assert _missing_glyphs(caught) != []


async def test_an_empty_dashboard_still_draws_every_chart(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url_for(tmp_path / "empty.db"))
    try:
        await upgrade(engine)
        async with UnitOfWorkFactory(engine)() as uow:
            d = await stats.collect(SqlStats(uow.session), ManualClock().now(), 7)
    finally:
        await engine.dispose()
    drawn = charts.render(d, "zh-CN")
    assert len(drawn) == len(CHART_NAMES)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "zh-CN-empty-open_by_stage.png").write_bytes(drawn[0].png)
    page = report.html_report(d, drawn, report.tables(d, "zh-CN"), "zh-CN")
    assert len(_embedded_pngs(page)) == len(CHART_NAMES)


def test_a_name_a_spreadsheet_would_run_as_a_formula_is_written_as_text() -> None:
    table = report.Table(
        "t",
        (report.Column("name"), report.Column("amount")),
        (('=HYPERLINK("http://x")', -500), ("+1 shop", 0), ("@home", 1), ("Lin", 2)),
    )
    rows = list(csv.reader(io.StringIO(report.csv_text(table))))
    assert rows[1:] == [
        ['\'=HYPERLINK("http://x")', "-500"],
        ["'+1 shop", "0"],
        ["'@home", "1"],
        ["Lin", "2"],
    ]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"AFTERSALES_DATABASE_URL": "nonsense"}, "could not be read from the database"),
        ({"AFTERSALES_DATABASE_URL": "mysql://x@db/shop"}, "could not be read from the database"),
        (
            {"AFTERSALES_ADMINS": "zoe"},
            "The settings are not valid (check the AFTERSALES_ variables and .env): "
            "AFTERSALES_ADMINS: invalid literal for int()",
        ),
    ],
)
def test_a_database_url_or_settings_that_cannot_be_used_is_one_sentence(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    base = {"AFTERSALES_DATABASE_URL": sqlite_url_for(tmp_path / "any.db"), "AFTERSALES_LANG": "en"}
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "out")], env=base | env)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    assert says in result.output
