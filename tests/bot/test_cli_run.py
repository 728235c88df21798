"""``aftersales run``, ``bind-link`` and the chat demo, each as a real process.

``run`` is pointed at a sandbox in this test's event loop: it must answer a user, then stop
cleanly on SIGTERM. Every way it cannot start is one sentence and exit code 2. The chat demo
prints its web chat URL, answers there, and stops on Ctrl-C (SIGINT) with exit code 0.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from sandbox.app import running_sandbox
from sandbox.client import SandboxClient
from storage import tables as t
from storage.engine import make_engine, sqlite_url_for
from tests.bot.test_cli import clean, run

CLI = [sys.executable, "-m", "bot"]
# A process that never says what we wait for fails the test instead of hanging it.
DEADLINE_S = 60


def _env(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env |= {"AFTERSALES_DATABASE_URL": sqlite_url_for(db), "AFTERSALES_LANG": "en"}
    env |= {"COLUMNS": "200", **extra}
    return env


async def _start(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line_with(process: asyncio.subprocess.Process, words: str) -> str:
    """Read the process's output until a line holds ``words``; every line read is kept."""
    assert process.stdout is not None
    seen: list[str] = []

    async def read() -> str:
        while True:
            raw = await process.stdout.readline()  # type: ignore[union-attr]
            if not raw:
                raise AssertionError(f"ended before {words!r}: {seen}")
            line = raw.decode()
            seen.append(line)
            if words in line:
                return line

    return await asyncio.wait_for(read(), DEADLINE_S)


async def _answered(client: SandboxClient, user_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The bot's messages in a private chat, once there are at least ``count``."""
    for _ in range(400):
        await client.wait_idle(quiet_ms=50)
        view = await client.messages(user_id)
        mine = [m for m in view["messages"] if not m["outgoing"]]
        if len(mine) >= count:
            return mine
    raise AssertionError(f"user {user_id} got no answer")


async def _finish(process: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str]:
    process.send_signal(sig)
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    text = out.decode() + err.decode()
    assert "Traceback" not in text, text
    return int(process.returncode or 0), text


async def test_run_answers_users_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    async with running_sandbox() as sandbox:
        env = _env(
            tmp_path / "bot.db",
            AFTERSALES_BOT_TOKEN=sandbox.token,
            AFTERSALES_TELEGRAM_API_URL=sandbox.url,
            AFTERSALES_ADMINS="77",
        )
        process = await _start(["run"], env)
        try:
            line = await _line_with(process, "is running")
            assert re.search(r"@\w+ is running", line)
            await sandbox.client.create_user(id=77, first_name="Ada", language_code="en")
            await sandbox.client.send(77, "/start")
            [welcome, *_] = await _answered(sandbox.client, 77)
            assert welcome["text"]
            code, text = await _finish(process, signal.SIGTERM)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert code == 0, text
        assert "Stopped." in text
        refused = [
            c
            for c in (await sandbox.client.calls(ok=False))["calls"]
            if c["method"] != "getUpdates"
        ]
        assert refused == []


def test_run_without_a_token_is_one_sentence(tmp_path: Path) -> None:
    result = run(["run"], tmp_path / "bot.db")
    assert result.returncode == 2
    assert "No bot token: set AFTERSALES_BOT_TOKEN" in clean(result)
    assert not (tmp_path / "bot.db").exists()  # refused before the database was touched


@pytest.mark.parametrize("args", [["run"], ["bind-link", "--buyer", "B-1"]])
def test_a_token_not_shaped_like_one_is_one_sentence(tmp_path: Path, args: list[str]) -> None:
    os.environ["AFTERSALES_BOT_TOKEN"] = "12345-abc"
    try:
        result = run(args, tmp_path / "bot.db")
    finally:
        os.environ.pop("AFTERSALES_BOT_TOKEN")
    assert result.returncode == 2
    assert "AFTERSALES_BOT_TOKEN is not a bot token" in clean(result)
    assert "Traceback" not in result.stdout + result.stderr


def test_run_against_nothing_listening_is_one_sentence(tmp_path: Path) -> None:
    env = {"AFTERSALES_BOT_TOKEN": "1:x", "AFTERSALES_TELEGRAM_API_URL": "http://127.0.0.1:9"}
    os.environ.update(env)
    try:
        result = run(["run"], tmp_path / "bot.db")
    finally:
        for key in env:
            os.environ.pop(key)
    assert result.returncode == 2
    assert "The Bot API at http://127.0.0.1:9 cannot be reached" in clean(result)


async def test_run_with_a_rejected_token_is_one_sentence(tmp_path: Path) -> None:
    async with running_sandbox() as sandbox:
        env = _env(
            tmp_path / "bot.db",
            AFTERSALES_BOT_TOKEN="123456789:not-the-sandbox-token",
            AFTERSALES_TELEGRAM_API_URL=sandbox.url,
        )
        process = await _start(["run"], env)
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    text = out.decode() + err.decode()
    assert process.returncode == 2, text
    assert "rejected the bot token (401 Unauthorized)" in text
    assert "Traceback" not in text


async def test_bind_link_binds_the_account_it_names(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    assert run(["seed-demo"], db).returncode == 0
    async with running_sandbox() as sandbox:
        env = _env(db, AFTERSALES_BOT_TOKEN=sandbox.token, AFTERSALES_TELEGRAM_API_URL=sandbox.url)
        made = await _start(["bind-link", "--buyer", "B-MEI", "--hours", "2"], env)
        out, err = await asyncio.wait_for(made.communicate(), DEADLINE_S)
        assert made.returncode == 0, err.decode()
        link = out.decode().strip().splitlines()[-1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{sandbox.url}/bot{sandbox.token}/getMe") as answer,
        ):
            me = (await answer.json())["result"]
        match = re.fullmatch(
            rf"https://t\.me/{me['username']}\?start=([A-Za-z0-9_-]{{1,64}})", link
        )
        assert match, link
        bot = await _start(["run"], env)
        try:
            await _line_with(bot, "is running")
            await sandbox.client.create_user(id=1001, first_name="Wang Mei", language_code="en")
            await sandbox.client.send(1001, f"/start {match.group(1)}")
            await _answered(sandbox.client, 1001)
            code, _ = await _finish(bot, signal.SIGTERM)
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
        assert code == 0
    engine = make_engine(sqlite_url_for(db))
    try:
        async with engine.connect() as conn:
            buyer = await conn.scalar(select(t.Buyer.id).where(t.Buyer.external_ref == "B-MEI"))
            bound = await conn.scalar(
                select(t.Identity.external_id).where(
                    t.Identity.party_kind == "buyer", t.Identity.party_id == buyer
                )
            )
    finally:
        await engine.dispose()
    assert bound == 1001


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["bind-link"], "Name exactly one account"),
        (["bind-link", "--buyer", "B-MEI", "--consignor", "C-LIN"], "Name exactly one account"),
        (["bind-link", "--buyer", "B-NOBODY"], "There is no buyer B-NOBODY."),
    ],
)
def test_bind_link_refusals_are_one_sentence(tmp_path: Path, args: list[str], words: str) -> None:
    db = tmp_path / "bot.db"
    assert run(["seed-demo"], db).returncode == 0
    os.environ["AFTERSALES_BOT_USERNAME"] = "demo_bot"
    try:
        result = run(args, db)
    finally:
        os.environ.pop("AFTERSALES_BOT_USERNAME")
    assert result.returncode == 2
    assert words in clean(result)


async def test_the_chat_demo_prints_its_web_chat_answers_there_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    process = await _start(["demo", "--port", "0"], _env(tmp_path / "unused.db"))
    try:
        line = await _line_with(process, "Web chat: ")
        url = line.split("Web chat: ", 1)[1].strip()
        client = SandboxClient(url.rstrip("/"))
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as answer:
                assert answer.status == 200
                assert "<html" in await answer.text()
            names = {
                u["first_name"] for u in (await client.request("GET", "/sandbox/users"))["users"]
            }
            assert {"Wang Mei", "Tom", "Ms Lin", "Park Studio", "Zoe"} <= names
            before = len(await _answered(client, 1001))
            await client.send(1001, "/claims")
            assert len(await _answered(client, 1001, before + 1)) > before
        finally:
            await client.close()
        code, text = await _finish(process, signal.SIGINT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, text
    assert "Demo stopped." in text
    assert not (tmp_path / "unused.db").exists()


def test_the_demo_script_exits_0_and_shows_every_stage(tmp_path: Path) -> None:
    result = run(["demo", "--script"], tmp_path / "unused.db")
    assert result.returncode == 0, result.stderr
    out = clean(result)
    for stage in (
        "approved — please send the item back",
        "Waybill:",
        "the return parcel is on its way",
        "the return has arrived at the warehouse",
        "refund",
        "is complete",
        "Dispute",
        "Your account",
        "The demo script has played to the end.",
    ):
        assert stage in out, stage


@pytest.mark.parametrize(
    ("args", "url"),
    [(["run"], "api.telegram.org"), (["bind-link", "--buyer", "B-1"], "htps://api.telegram.org")],
)
def test_an_api_url_mistyped_does_not_print_the_token(
    tmp_path: Path, args: list[str], url: str
) -> None:
    """The sentence quoted aiohttp's error, which holds the request URL: /bot<TOKEN>/getMe."""
    token = "123456789:AAHsecretSECRETsecretSECRETsecret12"
    env = {"AFTERSALES_BOT_TOKEN": token, "AFTERSALES_TELEGRAM_API_URL": url}
    os.environ.update(env)
    try:
        result = run(args, tmp_path / "bot.db")
    finally:
        for key in env:
            os.environ.pop(key)
    assert result.returncode == 2
    assert f"The Bot API at {url} cannot be reached" in clean(result)
    assert "AAHsecret" not in result.stdout + result.stderr
