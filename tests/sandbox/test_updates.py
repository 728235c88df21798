"""getUpdates keeps Telegram's contract: offsets confirm, long polls wait, one consumer wins."""

from __future__ import annotations

import asyncio

import aiohttp
from sandbox_testkit import ANN, BOB, call

from sandbox.app import RunningSandbox

TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


async def test_updates_stay_until_a_higher_offset_confirms_them(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    first = await sandbox.client.send(ANN["id"], "one")
    second = await sandbox.client.send(BOB["id"], "two")
    _, body = await call(http, sandbox, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == [first["update_id"], second["update_id"]]
    _, again = await call(http, sandbox, "getUpdates")  # nothing confirmed: same updates
    assert again["result"] == body["result"]
    _, rest = await call(http, sandbox, "getUpdates", offset=first["update_id"] + 1)
    assert [u["update_id"] for u in rest["result"]] == [second["update_id"]]
    _, limited = await call(http, sandbox, "getUpdates", offset=0, limit=1)
    assert [u["update_id"] for u in limited["result"]] == [second["update_id"]]
    _, empty = await call(http, sandbox, "getUpdates", offset=second["update_id"] + 1)
    assert empty["result"] == []


async def test_negative_offset_keeps_only_the_last_updates(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    for n in range(3):
        await sandbox.client.send(ANN["id"], f"m{n}")
    _, body = await call(http, sandbox, "getUpdates", offset=-1)
    assert [u["message"]["text"] for u in body["result"]] == ["m2"]


async def test_a_long_poll_returns_as_soon_as_an_update_arrives(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    poll = asyncio.create_task(call(http, sandbox, "getUpdates", timeout=30))
    while sandbox.world.poll_generation == 0:  # the poll has reached the sandbox
        await sandbox.world.wait_changed(1)
    assert not poll.done()
    sent = await sandbox.client.send(ANN["id"], "wake up")
    status, body = await asyncio.wait_for(poll, 5)
    assert status == 200
    assert [u["update_id"] for u in body["result"]] == [sent["update_id"]]


async def test_a_second_consumer_terminates_the_waiting_one_with_409(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(call(http, sandbox, "getUpdates", timeout=30))
    while sandbox.world.poll_generation == 0:
        await sandbox.world.wait_changed(1)
    newer = asyncio.create_task(call(http, sandbox, "getUpdates", timeout=30))
    status, body = await asyncio.wait_for(waiting, 5)
    assert (status, body["description"]) == (409, TERMINATED)
    await sandbox.client.send(ANN["id"], "for the survivor")
    status, body = await asyncio.wait_for(newer, 5)
    assert status == 200 and body["result"][0]["message"]["text"] == "for the survivor"


async def test_get_updates_is_refused_while_a_webhook_is_set(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, sandbox, "setWebhook", url="http://127.0.0.1:9/hook")
    assert status == 200
    status, body = await call(http, sandbox, "getUpdates")
    assert status == 409
    assert body["description"] == (
        "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first"
    )
    await call(http, sandbox, "deleteWebhook")
    status, _ = await call(http, sandbox, "getUpdates")
    assert status == 200


async def test_a_webhook_outside_loopback_is_refused(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sandbox, "setWebhook", url="https://example.com/hook")
    assert status == 400
    assert body["description"].startswith("Bad Request: bad webhook: Failed to resolve host")


async def test_allowed_updates_filters_what_is_delivered(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    _, sent = await call(
        http,
        sandbox,
        "sendMessage",
        chat_id=ANN["id"],
        text="pick",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
    )
    await sandbox.client.send(ANN["id"], "a message")
    await sandbox.client.press(ANN["id"], sent["result"]["message_id"], callback_data="a")
    _, body = await call(http, sandbox, "getUpdates", allowed_updates=["callback_query"])
    assert [next(k for k in u if k != "update_id") for u in body["result"]] == ["callback_query"]


async def test_form_encoded_and_query_string_calls_work_like_json(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{sandbox.bot_url}/sendMessage",
        data={"chat_id": str(ANN["id"]), "text": "form", "disable_notification": "true"},
    ) as response:
        assert (await response.json())["result"]["text"] == "form"
    async with http.get(
        f"{sandbox.bot_url}/sendMessage", params={"chat_id": "@ann", "text": "query"}
    ) as response:
        assert (await response.json())["result"]["chat"]["id"] == ANN["id"]
    async with http.post(f"{sandbox.url}/bot1:wrong/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
