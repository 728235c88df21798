"""The command line, run as a user runs it: a real process per command, a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "bot"]
HEADER = "order_ref,buyer_ref,buyer_name,currency,paid_at,ship_by,shipped_at,delivered_at,sku,title,category,consignor_ref,consignor_name,quantity,unit_price,commission"
ROWS = [
    "SO-1,B1,Ann,CNY,2026-01-01T10:00:00Z,,2026-01-02T10:00:00Z,2026-01-04T10:00:00Z,SKU-1,Bag,bags,C1,Lin,1,680.00,68.00",
    "SO-1,B1,Ann,CNY,2026-01-01T10:00:00Z,,2026-01-02T10:00:00Z,2026-01-04T10:00:00Z,SKU-2,Scarf,apparel,C1,Lin,2,45.5,9.10",
    "SO-2,B2,Bob,CNY,2026-01-01T10:00:00Z,,,,SKU-3,Vase,ceramics,C2,Park,1,12.345,1",
    "SO-3,B2,Bob,CNY,not-a-date,,,,SKU-4,Cup,ceramics,C2,Park,1,10,1",
    "SO-4,B3,Cy,CNY,2026-01-01T10:00:00Z,,,,SKU-5,Plate,ceramics,C2,Park,1,26.00,2.60",
]


def run(args: list[str], db: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AFTERSALES_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "AFTERSALES_LANG": lang,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def count(db: Path, table: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    result = run(["db", "upgrade"], db)
    assert result.returncode == 0, result.stderr
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"revision {head}" in result.stdout
    assert count(db, "claims") == 0


def test_csv_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(tmp_path: Path) -> None:
    db, file = tmp_path / "b.db", tmp_path / "orders.csv"
    file.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    first = run(["import", "orders", str(file)], db)
    assert first.returncode == 1
    assert "Imported 2 orders; 0 were already there; 2 refused." in first.stdout
    assert "│ 4    │ SO-2" in first.stdout and "unit_price is not an amount" in first.stdout
    assert "│ 5    │ SO-3" in first.stdout and "paid_at is not an ISO date-time" in first.stdout
    assert (count(db, "orders"), count(db, "order_lines"), count(db, "ledger_entries")) == (2, 3, 6)
    again = run(["import", "orders", str(file)], db, lang="zh-CN")
    assert "已导入 0 个订单；2 个已存在；2 个被拒绝。" in again.stdout
    assert (count(db, "orders"), count(db, "order_lines"), count(db, "ledger_entries")) == (2, 3, 6)


def test_json_import_of_nested_orders(tmp_path: Path) -> None:
    db, file = tmp_path / "c.db", tmp_path / "orders.json"
    orders = [
        {
            "order_ref": "J-1",
            "buyer_ref": "B9",
            "currency": "CNY",
            "paid_at": "2026-02-01T08:00:00+08:00",
            "lines": [
                {
                    "sku": "J-SKU",
                    "title": "Teapot",
                    "consignor_ref": "C9",
                    "quantity": 1,
                    "unit_price": "99.90",
                    "commission": "9.99",
                }
            ],
        },
        {
            "order_ref": "J-2",
            "buyer_ref": "B9",
            "currency": "XXX",
            "paid_at": "2026-02-01T08:00:00Z",
            "lines": [],
        },
    ]
    file.write_text(json.dumps(orders), encoding="utf-8")
    result = run(["import", "orders", str(file)], db)
    assert result.returncode == 1
    assert "Imported 1 orders" in result.stdout
    assert "lines is missing or empty" in result.stdout
    assert count(db, "orders") == 1


def test_a_missing_or_foreign_file_is_one_clear_sentence(tmp_path: Path) -> None:
    result = run(["import", "orders", str(tmp_path / "nope.csv")], tmp_path / "d.db")
    assert result.returncode == 2
    assert "There is no file at" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    other = tmp_path / "orders.xlsx"
    other.write_bytes(b"PK")
    result = run(["import", "orders", str(other)], tmp_path / "d.db", lang="zh-CN")
    assert "只能导入" in result.stdout


def test_demo_plays_every_stage_and_exits_0(tmp_path: Path) -> None:
    result = run(["demo", "--services"], tmp_path / "e.db")
    assert result.returncode == 0, result.stderr
    for words in (
        "Approved automatically",
        "Return waybill issued",
        "Return received",
        "Refund paid",
        "Propose compensation",
        "Dispute",
        "Resolve compensation",
        "Replacement delivered",
        "Completed",
        "Sent to manual review",
        "Reject",
    ):
        assert words in result.stdout, words
