"""Staff ask for the dashboard in chat: /stats sends the charts, /export the files.

End to end: the aiogram bot polls the sandbox over HTTP, the claims were made through the
real services, and the pictures and files are downloaded back from the sandbox as the staff
member's Telegram client would. The PNGs are kept in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.pictures import charts
from tests.bot.conversations.conftest import World
from tests.bot.conversations.kit import probing
from tests.factories import order, place
from tests.workflow.test_stats import history
from workflow.claims import SYSTEM, Role
from workflow.services.accounts import grant_role

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
STAFF_ID, LIN_ID, OUTSIDER_ID = 931, 932, 933
PNG = b"\x89PNG\r\n\x1a\n"


async def _ask(world: World, user_id: int, text: str, answers: int) -> list[dict[str, Any]]:
    """Like ``world.say``, with room for drawing (matplotlib keeps the bot quiet towards the
    sandbox for a second or two, longer than ``say`` waits): returns once ``answers`` more
    messages to the user are logged, waiting up to 30 s for them."""
    before = {m["message_id"] for m in (await world.client.messages(user_id))["messages"]}
    earlier = await world.client.calls()
    to_user = sum(
        1 for c in earlier["calls"] if c["ok"] and str(c["params"].get("chat_id")) == str(user_id)
    )
    await world.client.send(user_id, text)
    await world.client.wait_calls(
        timeout_ms=30_000, ok=True, params={"chat_id": user_id}, count=to_user + answers
    )
    await world.client.wait_idle(quiet_ms=100)
    after = (await world.client.messages(user_id))["messages"]
    return [m for m in after if m["outgoing"] and m["message_id"] not in before]


async def _download(world: World, view: dict[str, Any]) -> bytes:
    async with world.client.session.get(world.client.url + view["url"]) as response:
        assert response.status == 200
        return await response.read()


async def _staff(world: World, user_id: int, name: str, lang: str) -> None:
    await world.user(user_id, name, lang)
    async with world.uows() as uow:
        await grant_role(uow, world.env, SYSTEM, "telegram", user_id, Role.AGENT, name)
        await uow.commit()


async def test_staff_get_the_summary_and_every_chart(world: World) -> None:
    clock = world.env.clock
    await history(world.uows, world.env, clock)
    await _staff(world, STAFF_ID, "Zoe", "en")

    answer = await _ask(world, STAFF_ID, "/stats 7", answers=8)
    summary, *pictures = answer
    assert summary["text"].startswith("After-sales dashboard")
    assert "Open claims: 3" in summary["text"]
    assert "Last 7 days: 6 opened, 3 resolved" in summary["text"]
    assert "Return rate: 36.4% (4 of 11 units sold)" in summary["text"]
    assert "SLA breaches now: 2" in summary["text"]
    assert [p["caption"] for p in pictures] == [
        "Open claims by stage",
        "Claims opened and resolved per day (last 7 days, UTC)",
        "Median time from filing to resolution",
        "Return rate per consignor (highest 2 of 2)",
        "Return rate per item category (highest 3 of 3)",
        "Claims per reason, and amounts refunded",
        "SLA breaches now",
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, picture in enumerate(pictures):
        png = await _download(world, picture["photo"])
        assert png.startswith(PNG)
        (ARTIFACTS / f"chat-en-{n + 1}.png").write_bytes(png)


async def test_a_chinese_speaking_agent_gets_chinese_charts(world: World) -> None:
    await history(world.uows, world.env, world.env.clock)
    await _staff(world, LIN_ID, "Lin", "zh-hans")
    summary, *pictures = await _ask(world, LIN_ID, "/stats", answers=8)
    assert summary["text"].startswith("售后数据看板")
    assert len(pictures) == 7
    assert pictures[0]["caption"] == "每个阶段的未结售后单"
    png = await _download(world, pictures[0]["photo"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "chat-zh-CN-1.png").write_bytes(png)


async def test_export_sends_the_html_report_and_the_csv_files(world: World) -> None:
    await history(world.uows, world.env, world.env.clock)
    await _staff(world, STAFF_ID, "Zoe", "en")
    page, archive = await _ask(world, STAFF_ID, "/export 30", answers=2)
    assert page["document"]["file_name"].endswith(".html")
    assert "After-sales report, last 30 days" in page["caption"]
    html = (await _download(world, page["document"])).decode("utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == 7
    assert all(base64.b64decode(e).startswith(PNG) for e in embedded)

    assert archive["document"]["file_name"].endswith("-csv.zip")
    with zipfile.ZipFile(io.BytesIO(await _download(world, archive["document"]))) as z:
        names = set(z.namelist())
        claims = z.read("claims.csv").decode("utf-8-sig").splitlines()
    assert {"claims.csv", "open_by_stage.csv", "sla_breaches.csv"} <= names
    assert len(names) == 8
    assert claims[0].startswith("claim_id,status,status_label,")
    assert len(claims) == 1 + 6


async def test_export_draws_its_charts_after_the_updates_transaction(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claims are read inside the update's transaction; the charts (seconds to draw) are
    drawn after it, so meanwhile another unit of work can write the row the /export update
    locked (the asker's chat user)."""
    await history(world.uows, world.env, world.env.clock)
    await _staff(world, STAFF_ID, "Zoe", "en")
    probes: list[str] = []
    monkeypatch.setattr(charts, "render", probing(world, STAFF_ID, charts.render, probes))
    page, archive = await _ask(world, STAFF_ID, "/export 30", answers=2)
    assert page["document"]["file_name"].endswith(".html")
    assert archive["document"]["file_name"].endswith("-csv.zip")
    assert probes == ["free"]


async def test_people_not_on_staff_are_refused_and_bad_days_explained(world: World) -> None:
    await _staff(world, STAFF_ID, "Zoe", "en")
    await world.user(OUTSIDER_ID, "Eve")
    # a bound buyer (not staff): the commands exist, but not for them
    now = world.env.clock.now()
    [p] = await place(world.uows, now, order("DB-1", now))
    await world.say(OUTSIDER_ID, f"/start {await world.token('buyer', p.buyer_id)}")
    for command in ("/stats", "/export"):
        [refused] = await world.say(OUTSIDER_ID, command)
        name = command[1:]
        assert refused["text"] == (
            f"/{name} is not available to you. Send /help to see what you can do."
        )
        assert "photo" not in refused and "document" not in refused
    [usage] = await world.say(STAFF_ID, "/stats yesterday")
    assert usage["text"].startswith("Usage: /stats DAYS or /export DAYS")
    [usage] = await world.say(STAFF_ID, "/export 999")
    assert "from 1 to 366" in usage["text"]
