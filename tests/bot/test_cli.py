"""The command line, run as a user runs it: a real process per command, a real database.

The import tests run on SQLite and, when AFTERSALES_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bot.cli import app
from storage import tables as t
from storage.engine import make_engine, sqlite_url_for

CLI = [sys.executable, "-m", "bot"]
HEADER = "order_ref,buyer_ref,buyer_name,currency,paid_at,ship_by,shipped_at,delivered_at,sku,title,category,consignor_ref,consignor_name,quantity,unit_price,commission"
ROWS = [
    "SO-1,B1,Ann,CNY,2026-01-01T10:00:00Z,,2026-01-02T10:00:00Z,2026-01-04T10:00:00Z,SKU-1,Bag,bags,C1,Lin,1,680.00,68.00",
    "SO-1,B1,Ann,CNY,2026-01-01T10:00:00Z,,2026-01-02T10:00:00Z,2026-01-04T10:00:00Z,SKU-2,Scarf,apparel,C1,Lin,2,45.5,9.10",
    "SO-2,B2,Bob,CNY,2026-01-01T10:00:00Z,,,,SKU-3,Vase,ceramics,C2,Park,1,12.345,1",
    "SO-3,B2,Bob,CNY,not-a-date,,,,SKU-4,Cup,ceramics,C2,Park,1,10,1",
    "SO-4,B3,Cy,CNY,2026-01-01T10:00:00Z,,,,SKU-5,Plate,ceramics,C2,Park,1,26.00,2.60",
]
COUNTED = (t.Buyer, t.Consignor, t.Item, t.Order, t.OrderLine, t.LedgerEntry)


def run(
    args: list[str], db: Path | str, lang: str | None = "en"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AFTERSALES_DATABASE_URL": db if isinstance(db, str) else sqlite_url_for(db),
        "COLUMNS": "200",
    }
    env.pop("AFTERSALES_LANG", None)
    if lang is not None:
        env["AFTERSALES_LANG"] = lang
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def invoke(args: list[str], db: Path | str, lang: str = "en") -> Result:
    """The same command in this process (quicker, for the cases that fail before any work)."""
    env = {
        "AFTERSALES_DATABASE_URL": db if isinstance(db, str) else sqlite_url_for(db),
        "AFTERSALES_LANG": lang,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def counts(url: str) -> dict[str, int]:
    """Rows per table, read straight from the database the CLI wrote to."""

    async def go() -> dict[str, int]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return {
                    model.__tablename__: int(
                        (await conn.execute(select(func.count()).select_from(model))).scalar_one()
                    )
                    for model in COUNTED
                }
        finally:
            await engine.dispose()

    return asyncio.run(go())


def refused(output: str) -> dict[int, tuple[str, str]]:
    """The refused-rows table of an import: line number → (order, reason)."""
    out = {}
    for row in output.splitlines():
        cells = [" ".join(c.split()) for c in row.strip().strip("│").split("│")]
        if len(cells) == 3 and cells[0].isdigit():
            out[int(cells[0])] = (cells[1], cells[2])
    return out


def import_orders(file: Path, db_url: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``aftersales import orders FILE``: its result and its output, cleaned."""
    result = run(["import", "orders", str(file)], db_url)
    return result, clean(result)


def clean(result: subprocess.CompletedProcess[str] | Result) -> str:
    """All the output, asserting it holds no traceback and no missing text."""
    both = result.stdout + (
        result.stderr if isinstance(result, subprocess.CompletedProcess) else ""
    )
    assert "Traceback" not in both
    assert "missing text" not in both
    return result.stdout


def test_db_upgrade_creates_the_schema_on_a_fresh_file(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    db = tmp_path / "nested" / "a.db"
    result = run(["db", "upgrade"], db)
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"Database is at revision {head}." in clean(result)
    assert counts(sqlite_url_for(db))["orders"] == 0
    again = run(["db", "upgrade", "--lang", "zh-CN"], db)
    assert f"数据库当前版本为 {head}。" in clean(again)


def test_csv_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(
    tmp_path: Path, db_url: str
) -> None:
    file = tmp_path / "orders.csv"
    file.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    before = counts(db_url)
    first = run(["import", "orders", str(file)], db_url)
    assert first.returncode == 1, first.stdout + first.stderr
    out = clean(first)
    assert "Imported 2 orders; 0 were already there; 2 refused." in out
    assert refused(out) == {
        4: ("SO-2", "unit_price is not an amount: '12.345'"),
        5: ("SO-3", "paid_at is not an ISO date-time: 'not-a-date'"),
    }
    imported = counts(db_url)
    # SO-1 (two lines) and SO-4 are kept whole; each line posts a sale credit and a commission.
    assert {k: imported[k] - before[k] for k in imported} == {
        "buyers": 2,
        "consignors": 2,
        "items": 3,
        "orders": 2,
        "order_lines": 3,
        "ledger_entries": 6,
    }

    again = run(["import", "orders", str(file)], db_url, lang="zh-CN")
    assert again.returncode == 1
    assert "已导入 0 个订单；2 个已存在；2 个被拒绝。" in clean(again)
    assert counts(db_url) == imported


def test_json_import_reports_each_bad_order_at_the_line_it_starts(
    tmp_path: Path, db_url: str
) -> None:
    def line(sku: str, price: str = "99.90") -> dict[str, object]:
        return {
            "sku": sku,
            "title": "Teapot",
            "consignor_ref": "C9",
            "quantity": 1,
            "unit_price": price,
            "commission": "9.99",
        }

    def order(ref: str, currency: str = "CNY", lines: list[object] | None = None) -> object:
        return {
            "order_ref": ref,
            "buyer_ref": "B9",
            "currency": currency,
            "paid_at": "2026-02-01T08:00:00+08:00",
            "lines": [line(f"{ref}-A")] if lines is None else lines,
        }

    orders = [
        order("J-1"),
        order("J-2", lines=[]),
        order("J-3", currency="XXX"),
        order("J-4", lines=[line("J-4-A"), line("J-4-B", price="free")]),
        order("J-5"),
    ]
    text = json.dumps(orders, indent=2)
    file = tmp_path / "orders.json"
    file.write_text(text, encoding="utf-8")
    starts = [n for n, raw in enumerate(text.splitlines(), start=1) if raw == "  {"]
    assert len(starts) == 5
    j4_b = next(n for n, raw in enumerate(text.splitlines(), start=1) if '"sku": "J-4-B"' in raw)
    before = counts(db_url)

    result = run(["import", "orders", str(file)], db_url)
    assert result.returncode == 1
    out = clean(result)
    assert "Imported 2 orders; 0 were already there; 3 refused." in out
    # A bad order is reported at the line its object starts on.
    assert refused(out) == {
        starts[1]: ("J-2", "lines is missing or empty"),
        starts[2]: ("J-3", "unknown currency 'XXX'"),
        starts[3]: ("J-4", "unit_price is not an amount: 'free'"),
    }
    assert j4_b > starts[3]
    after = counts(db_url)
    assert after["orders"] - before["orders"] == 2
    assert after["order_lines"] - before["order_lines"] == 2

    again = run(["import", "orders", str(file)], db_url)
    assert "Imported 0 orders; 2 were already there; 3 refused." in clean(again)
    assert counts(db_url) == after


def test_json_lines_and_wrapped_orders_import_too(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    base = {
        "buyer_ref": "B1",
        "currency": "CNY",
        "paid_at": "2026-02-01T08:00:00Z",
        "lines": [
            {"sku": "S", "title": "Cup", "consignor_ref": "C1", "quantity": 2}
            | {"unit_price": "10.00", "commission": "1.00"}
        ],
    }
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_text(
        "\n".join([json.dumps(base | {"order_ref": "L-1"}), "", json.dumps({"order_ref": "L-2"})])
        + "\n",
        encoding="utf-8",
    )
    result = run(["import", "orders", str(jsonl)], db)
    assert result.returncode == 1
    out = clean(result)
    assert "Imported 1 orders" in out
    assert refused(out) == {3: ("L-2", "lines is missing or empty")}

    wrapped = tmp_path / "export.json"
    wrapped.write_text(json.dumps({"orders": [base | {"order_ref": "W-1"}]}), encoding="utf-8")
    result = run(["import", "orders", str(wrapped)], db)
    assert result.returncode == 0, result.stdout
    assert "Imported 1 orders; 0 were already there; 0 refused." in clean(result)
    assert counts(sqlite_url_for(db))["orders"] == 2


def test_a_file_that_cannot_be_used_is_one_clear_sentence(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    result = invoke(["import", "orders", str(tmp_path / "nope.csv")], db)
    assert result.exit_code == 2
    assert "There is no file at" in clean(result)

    other = tmp_path / "orders.xlsx"
    other.write_bytes(b"PK")
    result = invoke(["import", "orders", str(other)], db, lang="zh-CN")
    assert result.exit_code == 2
    assert "只能导入" in clean(result)

    headless = tmp_path / "headless.csv"
    headless.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    result = invoke(["import", "orders", str(headless)], db)
    assert result.exit_code == 2
    assert "lacks the columns" in clean(result)

    broken = tmp_path / "broken.json"
    broken.write_text('[{"order_ref": "X"},\n {"order_ref": ', encoding="utf-8")
    result = invoke(["import", "orders", str(broken)], db)
    assert result.exit_code == 2
    assert "could not be read" in clean(result)
    assert "line 2" in result.stdout


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nonsense", "cannot be used"),
        ("postgresql+asyncpg://nobody@127.0.0.1:9/none", "cannot be reached"),
    ],
)
def test_a_database_that_cannot_be_used_is_one_clear_sentence(url: str, words: str) -> None:
    result = invoke(["db", "upgrade"], url)
    assert result.exit_code == 2
    assert words in clean(result)


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "Exit code 0: every order"), ("zh-CN", "退出码 0：所有订单")],
)
def test_the_help_says_what_the_exit_codes_mean(tmp_path: Path, lang: str, words: str) -> None:
    result = run(["import", "orders", "--help"], tmp_path / "g.db", lang=lang)
    assert result.returncode == 0
    assert words in " ".join(clean(result).split())


def test_an_unknown_language_is_refused_in_words(tmp_path: Path) -> None:
    result = invoke(["db", "upgrade", "--lang", "fr"], tmp_path / "e.db")
    assert result.exit_code == 2
    assert "There is no language “fr”" in clean(result)


def test_seed_demo_twice_imports_once(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    first = run(["seed-demo"], db)
    assert first.returncode == 0, first.stderr
    assert "Imported 6 orders; 0 were already there; 0 refused." in clean(first)
    seeded = counts(sqlite_url_for(db))
    assert seeded["buyers"] == 3 and seeded["consignors"] == 3
    again = run(["seed-demo"], db)
    assert "Imported 0 orders; 6 were already there; 0 refused." in clean(again)
    assert counts(sqlite_url_for(db)) == seeded


DEMO_STAGES = {
    "en": (
        # the article's script
        "Approved automatically",
        "no_reason_window",
        "Return waybill issued",
        "Return waybill SX",
        "QR code: https://track.example/",
        "picked up, on its way",
        "I have sent it back",
        "Return received",
        "Refund (intact)",
        "Refund paid",
        "has been settled: your account changes by -612.00 CNY",
        "Completed",
        # damage, dispute, resolution
        "Propose compensation",
        "Dispute",
        "Resolve compensation",
        # never shipped
        "overdue_shipment",
        "Refund started",
        # manual review, rejected
        "Sent to manual review",
        "high_value",
        "Wear matches the listing photos",
        # exchange
        "Replacement shipped",
        "Replacement delivered → Settled",
        # the ledger
        "Consignor balances",
    ),
    "zh-CN": ("自动通过", "已生成退货运单", "二维码", "质检", "有异议", "裁定赔偿", "换货已签收"),
}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_demo_plays_every_stage_and_exits_0(tmp_path: Path, lang: str) -> None:
    result = run(["demo", "--services", "--lang", lang], tmp_path / "unused.db", lang=None)
    assert result.returncode == 0, result.stderr
    out = clean(result)
    for words in DEMO_STAGES[lang]:
        assert words in out, words
    where = re.search(r"(?:Demo database|演示数据库)[:：] ?(\S+)", out)
    assert where is not None
    assert Path(where.group(1)).is_file()
    assert not (tmp_path / "unused.db").exists()


def test_amounts_and_quantities_too_big_to_store_are_refused_rows(
    tmp_path: Path, db_url: str
) -> None:
    """Not a traceback (SQLite) or 'the database cannot be reached' for the whole chunk."""
    row = "{ref},B1,Ann,CNY,2026-01-01T10:00:00Z,,,,{sku},Bag,bags,C1,Lin,{qty},{price},0"
    file = tmp_path / "orders.csv"
    file.write_text(
        "\n".join(
            [
                HEADER,
                row.format(ref="BIG-1", sku="BIG-A", qty=1, price="10.00"),
                row.format(ref="BIG-2", sku="BIG-B", qty=1, price="9" * 20),
                row.format(ref="BIG-3", sku="BIG-C", qty=3_000_000_000, price="0.01"),
                row.format(ref="BIG-4", sku="BIG-D", qty=4_000_000, price="9" * 14),
                # each line fits; the two together do not
                row.format(ref="BIG-5", sku="BIG-E", qty=1, price="5" + "0" * 16),
                row.format(ref="BIG-5", sku="BIG-F", qty=1, price="5" + "0" * 16),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    before = counts(db_url)
    result, out = import_orders(file, db_url)
    assert result.returncode == 1, out + result.stderr
    assert "Imported 1 orders; 0 were already there; 4 refused." in out
    assert {line: ref for line, (ref, _) in refused(out).items()} == {
        3: "BIG-2",
        4: "BIG-3",
        5: "BIG-4",
        6: "BIG-5",
    }
    assert counts(db_url)["orders"] - before["orders"] == 1


def test_a_csv_row_with_more_cells_than_the_header_is_refused_not_misread(
    tmp_path: Path, db_url: str
) -> None:
    """An unquoted '1,299.00' splits into two cells: it was read as a commission of 1.00."""
    file = tmp_path / "orders.csv"
    file.write_text(
        "\n".join(
            [
                HEADER,
                "CEL-1,B1,Ann,CNY,2026-01-01T10:00:00Z,,,,CEL-A,Bag,bags,C1,Lin,1,2500.00,1,299.00",
                'CEL-2,B1,Ann,CNY,2026-01-01T10:00:00Z,,,,CEL-B,Bag,bags,C1,Lin,1,2500.00,"1,299.00"',
                # a trailing comma misreads nothing
                "CEL-3,B1,Ann,CNY,2026-01-01T10:00:00Z,,,,CEL-C,Bag,bags,C1,Lin,1,2500.00,1299.00,",
                # one currency, written in two cases on two rows of one order
                "CEL-3,B1,Ann,cny,2026-01-01T10:00:00Z,,,,CEL-D,Bag,bags,C1,Lin,1,2500.00,1299.00",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    before = counts(db_url)
    result, out = import_orders(file, db_url)
    assert result.returncode == 1, out + result.stderr
    assert "Imported 2 orders; 0 were already there; 1 refused." in out
    assert list(refused(out)) == [2]
    assert refused(out)[2][0] == "CEL-1"
    assert "more cells" in refused(out)[2][1]
    after = counts(db_url)
    assert after["orders"] - before["orders"] == 2
    assert after["ledger_entries"] - before["ledger_entries"] == 6


def test_a_database_upgraded_by_a_newer_version_is_one_clear_sentence(tmp_path: Path) -> None:
    """After rolling the code back, its schema revision is one this version does not know."""
    import sqlite3

    db = tmp_path / "newer.db"
    assert run(["db", "upgrade"], db).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    orders = tmp_path / "orders.csv"
    orders.write_text("\n".join([HEADER, ROWS[0]]) + "\n", encoding="utf-8")

    for args, lang, words in (
        (["db", "upgrade"], "en", "The database is at revision 9999, made by a newer version"),
        (["db", "upgrade"], "zh-CN", "数据库的版本是 9999"),
        (["import", "orders", str(orders)], "en", "made by a newer version of aftersales"),
    ):
        result = invoke(args, db, lang=lang)
        assert result.exit_code == 2, result.stdout
        assert words in " ".join(clean(result).split())
    assert counts(sqlite_url_for(db))["orders"] == 0


def test_a_json_zero_is_zero_not_missing(tmp_path: Path, db_url: str) -> None:
    """JSON numbers as the platform writes them: ``"commission": 0`` was 'commission is missing'."""

    def order(ref: str, **line: object) -> dict[str, object]:
        base = {"sku": f"{ref}-A", "title": "Cup", "consignor_ref": "C1", "quantity": 1}
        return {
            "order_ref": ref,
            "buyer_ref": "B1",
            "currency": "JPY",
            "paid_at": "2026-02-01T08:00:00Z",
            "lines": [base | {"unit_price": 1200, "commission": 120} | line],
        }

    file = tmp_path / "orders.jsonl"
    file.write_text(
        "\n".join(
            json.dumps(o)
            for o in (
                order("Z-1", commission=0),
                order("Z-2", unit_price=0, commission=0),
                order("Z-3", quantity=0),
            )
        )
        + "\n",
        encoding="utf-8",
    )
    before = counts(db_url)
    result, out = import_orders(file, db_url)
    assert result.returncode == 1, out + result.stderr
    assert "Imported 2 orders; 0 were already there; 1 refused." in out
    assert refused(out) == {3: ("Z-3", "quantity must be a positive whole number, not '0'")}
    assert counts(db_url)["orders"] - before["orders"] == 2


def test_two_json_exports_run_together_are_refused_not_half_read(tmp_path: Path) -> None:
    """``cat monday.json tuesday.json``: Tuesday's orders were skipped without a word."""
    db = tmp_path / "two.db"

    def export(ref: str) -> str:
        line = {"sku": ref, "title": "Cup", "consignor_ref": "C1", "quantity": 1}
        line |= {"unit_price": "10.00", "commission": "1.00"}
        order = {"order_ref": ref, "buyer_ref": "B1", "currency": "CNY"}
        order |= {"paid_at": "2026-02-01T08:00:00Z", "lines": [line]}
        return json.dumps([order], indent=2) + "\n"

    file = tmp_path / "week.json"
    file.write_text(export("MON-1") + export("TUE-1"), encoding="utf-8")
    result = invoke(["import", "orders", str(file)], db)
    assert result.exit_code == 2, result.stdout
    out = " ".join(clean(result).split())
    tuesday = len(export("MON-1").splitlines()) + 1
    assert f"{file} could not be read: Extra data: line {tuesday} column 1" in out
    assert counts(sqlite_url_for(db))["orders"] == 0


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_file_saved_as_gbk_names_its_first_bad_line_and_the_fix(
    tmp_path: Path, suffix: str
) -> None:
    """Excel's Chinese 'CSV' is GBK: the operator was told of a byte 'in position 5914'."""
    db = tmp_path / "gbk.db"
    good = "B1,Ann,CNY,2026-01-01T10:00:00Z,,,,{sku},Bag,bags,C1,Lin,1,10,1"
    rows = [f"G-{n}," + good.format(sku=f"G-{n}") for n in range(300)]
    rows.append("G-X,B1,王梅,CNY,2026-01-01T10:00:00Z,,,,G-X,包,bags,C1,林女士,1,10,1")
    if suffix == ".jsonl":
        names = HEADER.split(",")
        rows = [
            json.dumps(
                dict(zip(names, row.split(","), strict=True)) | {"lines": []},
                ensure_ascii=False,
            )
            for row in rows
        ]
        body = "\n".join(rows[:-1]).encode() + b"\n"
    else:
        body = "\n".join([HEADER, *rows[:-1]]).encode() + b"\n"
    file = tmp_path / f"excel{suffix}"
    file.write_bytes(body + (rows[-1] + "\n").encode("gbk"))
    bad_line = len(body.splitlines()) + 1
    for lang, words in (
        ("en", f"{file} is not UTF-8 text (line {bad_line}): save it as UTF-8"),
        ("zh-CN", f"{file} 不是 UTF-8 编码的文本（第 {bad_line} 行）"),
    ):
        result = invoke(["import", "orders", str(file)], db, lang=lang)
        assert result.exit_code == 2, result.stdout
        assert words in " ".join(clean(result).split())


def test_a_file_that_breaks_partway_says_what_was_imported_before(tmp_path: Path) -> None:
    """Exit 2 'could not be read' said nothing of the 1,000 orders already imported."""
    db = tmp_path / "partway.db"
    good = "B1,Ann,CNY,2026-01-01T10:00:00Z,,,,{ref},Bag,bags,C1,Lin,1,10,1"
    rows = [f"P-{n}," + good.format(ref=f"P-{n}") for n in range(1200)]
    file = tmp_path / "orders.csv"
    body = "\n".join([HEADER, *rows]).encode() + b"\n"
    file.write_bytes(
        body + "P-X,B1,王梅,CNY,2026-01-01T10:00:00Z,,,,P-X,包,bags,C1,林,1,10,1\n".encode("gbk")
    )

    result = invoke(["import", "orders", str(file)], db)
    assert result.exit_code == 2
    out = " ".join(clean(result).split())
    imported = counts(sqlite_url_for(db))["orders"]
    assert 0 < imported < 1200  # whole chunks, each whole orders
    assert f"Imported {imported} orders; 0 were already there; 0 refused." in out
    assert "is not UTF-8 text (line 1202)" in out

    file.write_bytes(body)
    again = invoke(["import", "orders", str(file)], db, lang="zh-CN")
    assert again.exit_code == 0
    assert f"已导入 {1200 - imported} 个订单；{imported} 个已存在；0 个被拒绝。" in clean(again)
