"""``aftersales diagram``, run as a user runs it: a real process, a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import i18n
from storage.engine import make_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.uow import UnitOfWorkFactory
from tests.factories import no_reason_return, order, place
from tests.workflow.test_diagram import lit_states
from workflow import lifecycle
from workflow.services.backoffice import run_until_quiet
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway

CLI = [sys.executable, "-m", "bot", "diagram"]


def run(args: list[str], db: Path, lang: str = "en") -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "AFTERSALES_DATABASE_URL": sqlite_url_for(db),
        "AFTERSALES_LANG": lang,
        "COLUMNS": "200",
    }
    return subprocess.run([*CLI, *args], capture_output=True, env=env, timeout=120, check=False)


@pytest.fixture
async def claim_db(tmp_path: Path) -> tuple[Path, int, str]:
    """A database with one return claim, approved automatically and waiting for the parcel."""
    db = tmp_path / "claims.db"
    engine = make_engine(sqlite_url_for(db))
    try:
        await upgrade(engine)
        uows = UnitOfWorkFactory(engine)
        clock = ManualClock()
        env = Env(clock=clock)
        [placed] = await place(uows, clock.now(), order("D-1", clock.now()))
        claim = await no_reason_return(uows, env, placed)
        await run_until_quiet(
            uows, env, SimulatedPaymentGateway(clock, seed=3), SimulatedCarrier(clock, seed=3)
        )
        async with uows() as uow:
            row = await uow.claims.get(claim.id)
            assert row is not None
            return db, claim.id, row.status
    finally:
        await engine.dispose()


def test_whole_lifecycle_goes_to_stdout_as_png_or_mermaid(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    png = run([], db)
    assert png.returncode == 0, png.stderr
    assert png.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    mermaid = run(["--format", "mermaid", "--lang", "zh-CN"], db)
    assert mermaid.returncode == 0, mermaid.stderr
    text = mermaid.stdout.decode()
    assert "stateDiagram-v2" in text and i18n.t("zh-CN", "diagram.title") in text
    for state in lifecycle.STATES:
        assert f'state "{i18n.t("zh-CN", f"state.{state}")}" as {state}' in text


def test_a_claims_flowchart_lights_its_current_state(
    claim_db: tuple[Path, int, str], tmp_path: Path
) -> None:
    db, claim_id, status = claim_db
    out = tmp_path / "claim.svg"
    result = run(["--claim", str(claim_id), "--format", "svg", "--out", str(out)], db, "zh-CN")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert i18n.t("zh-CN", "diagram.written", path=str(out)) in result.stderr.decode()
    svg = out.read_bytes()
    assert lit_states(svg) == [status]
    assert f"#{claim_id}" in svg.decode() and i18n.t("zh-CN", "claim_type.return_refund") in (
        svg.decode()
    )
    mermaid = run(["--claim", str(claim_id), "--format", "mermaid"], db)
    assert f"    class {status} current\n" in mermaid.stdout.decode()


def test_every_mistake_is_one_clear_sentence(
    claim_db: tuple[Path, int, str], tmp_path: Path
) -> None:
    db, claim_id, _ = claim_db
    cases = [
        (["--claim", "999"], "zh-CN", i18n.t("zh-CN", "diagram.no_claim", claim_id=999)),
        (["--format", "gif"], "en", i18n.t("en", "diagram.bad_format", format="gif")),
        (["--lang", "fr"], "en", i18n.t("en", "diagram.bad_lang", language="fr")),
    ]
    for args, lang, sentence in cases:
        result = run(args, db, lang)
        assert result.returncode == 2, args
        assert result.stdout == b"", args
        assert sentence in result.stderr.decode(), (args, result.stderr)
    blocked = tmp_path / "no-such-folder" / "x.png"
    result = run(["--claim", str(claim_id), "--out", str(blocked)], db)
    assert result.returncode == 2
    assert f"{blocked} could not be written (No such file or directory)" in result.stderr.decode()
    empty = run(["--claim", "1"], tmp_path / "not-migrated.db")
    assert empty.returncode == 2
    assert "could not be read from the database" in empty.stderr.decode()


def test_a_database_url_settings_or_claim_number_that_cannot_be_used_is_one_sentence(
    claim_db: tuple[Path, int, str],
) -> None:
    db, _, _ = claim_db
    too_big = str(2**64)
    result = run(["--claim", too_big], db, "zh-CN")
    assert result.returncode == 2
    assert i18n.t("zh-CN", "diagram.no_claim", claim_id=too_big) in result.stderr.decode()
    assert b"Traceback" not in result.stderr
    for env, says in (
        ({"AFTERSALES_DATABASE_URL": "nonsense"}, "could not be read from the database"),
        ({"AFTERSALES_DATABASE_URL": "mysql://x@db/shop"}, "could not be read from the database"),
        ({"AFTERSALES_ADMINS": "zoe"}, "AFTERSALES_ADMINS: invalid literal for int()"),
    ):
        done = subprocess.run(
            [*CLI, "--claim", "1"],
            capture_output=True,
            env={
                **os.environ,
                "AFTERSALES_LANG": "en",
                "AFTERSALES_DATABASE_URL": sqlite_url_for(db),
                **env,
            },
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, env
        assert says in " ".join(done.stderr.decode().split()), done.stderr
        assert b"pydantic" not in done.stderr
        assert b"Traceback" not in done.stderr
