"""The control side and the Bot API methods beyond plain messages, through raw HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sandbox_testkit import ANN, BOB, call, png

from sandbox.app import RunningSandbox
from sandbox.client import ControlError


async def test_users_and_their_chats_are_listed(sandbox: RunningSandbox) -> None:
    group = await sandbox.client.create_chat(
        type="supergroup", title="Staff", is_forum=True, members=[BOB["id"]]
    )
    users = (await sandbox.client.request("GET", "/sandbox/users"))["users"]
    assert [u["id"] for u in users] == [ANN["id"], BOB["id"]]
    assert users[1]["language_code"] == "zh-hans" and users[1]["blocked"] is False
    chats = await sandbox.client.request("GET", "/sandbox/chats", params={"user_id": BOB["id"]})
    assert [(c["id"], c["type"]) for c in chats["chats"]] == [
        (BOB["id"], "private"),
        (group["id"], "supergroup"),
    ]
    with pytest.raises(ControlError) as caught:
        await sandbox.client.create_user(id=ANN["id"], first_name="Again")
    assert caught.value.status == 409


async def test_forum_topics_from_both_sides(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    group = await sandbox.client.create_chat(
        type="supergroup", title="Staff", is_forum=True, members=[BOB["id"]]
    )
    status, topic = await call(http, sandbox, "createForumTopic", chat_id=group["id"], name="C-7")
    assert status == 200
    thread = topic["result"]["message_thread_id"]
    status, sent = await call(
        http, sandbox, "sendMessage", chat_id=group["id"], message_thread_id=thread, text="new"
    )
    assert sent["result"]["message_thread_id"] == thread and sent["result"]["is_topic_message"]
    status, _ = await call(
        http, sandbox, "closeForumTopic", chat_id=group["id"], message_thread_id=thread
    )
    assert status == 200
    status, body = await call(
        http, sandbox, "closeForumTopic", chat_id=group["id"], message_thread_id=thread
    )
    assert body["description"] == "Bad Request: TOPIC_NOT_MODIFIED"
    view = await sandbox.client.messages(group["id"], thread_id=thread)
    assert [m.get("service", {}).get("type") for m in view["messages"]] == [
        "forum_topic_created",
        None,
        "forum_topic_closed",
    ]
    # A staff member deletes the topic in their client; the bot's next send fails.
    await sandbox.client.delete_topic(group["id"], thread)
    status, body = await call(
        http, sandbox, "sendMessage", chat_id=group["id"], message_thread_id=thread, text="?"
    )
    assert (status, body["description"]) == (400, "Bad Request: message thread not found")
    # A user's own topic reaches the bot as a service message.
    made = await sandbox.client.create_topic(group["id"], BOB["id"], "Bob's question")
    _, updates = await call(http, sandbox, "getUpdates")
    created = updates["result"][-1]["message"]
    assert created["forum_topic_created"]["name"] == "Bob's question"
    assert created["message_thread_id"] == made["message_thread_id"]
    status, body = await call(http, sandbox, "createForumTopic", chat_id=ANN["id"], name="x")
    assert body["description"] == "Bad Request: the chat is not a forum"


async def test_faults_5xx_latency_and_dropped_connections(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await sandbox.client.fault(kind="5xx", status=502, method="sendMessage", count=1)
    status, body = await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="a")
    assert (status, body["description"]) == (502, "Bad Gateway")
    await sandbox.client.fault(kind="drop", method="sendMessage", when="after", count=1)
    with pytest.raises(aiohttp.ClientError):
        await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="lost answer")
    await sandbox.client.fault(kind="drop", method="sendMessage", count=1)
    with pytest.raises(aiohttp.ClientError):
        await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="never sent")
    await sandbox.client.fault(kind="latency", delay_ms=30, method="*", count=1)
    status, _ = await call(http, sandbox, "getMe")
    assert status == 200
    # Dropped *after* the call took effect: the user got the message, the bot never knew.
    texts = [m["text"] for m in (await sandbox.client.messages(ANN["id"]))["messages"]]
    assert texts == ["lost answer"]
    calls = (await sandbox.client.calls())["calls"]
    assert [c["status"] for c in calls] == [502, 0, 0, 200]
    assert calls[-1]["duration_ms"] >= 30
    assert (await sandbox.client.request("GET", "/sandbox/faults"))["faults"] == []


async def test_a_400_fault_refuses_the_call_with_its_description_and_sends_nothing(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await sandbox.client.fault(
        kind="400", method="sendMessage", description="wrong file identifier", count=1
    )
    status, body = await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="refused")
    assert (status, body["description"]) == (400, "Bad Request: wrong file identifier")
    status, _ = await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="taken")
    assert status == 200
    texts = [m["text"] for m in (await sandbox.client.messages(ANN["id"]))["messages"]]
    assert texts == ["taken"]
    with pytest.raises(ControlError) as caught:
        await sandbox.client.fault(kind="404")
    assert caught.value.status == 400


async def test_probabilistic_faults_are_reproducible_with_a_seed(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    outcomes = []
    for _ in range(2):
        await sandbox.client.clear_faults()
        await sandbox.client.fault(kind="5xx", method="getMe", probability=0.5, seed=7)
        outcomes.append([(await call(http, sandbox, "getMe"))[0] for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert {200, 500} == set(outcomes[0])


async def test_wait_idle_times_out_while_an_update_is_pending(sandbox: RunningSandbox) -> None:
    await sandbox.client.send(ANN["id"], "nobody reads this")
    with pytest.raises(ControlError) as caught:
        await sandbox.client.wait_idle(quiet_ms=10, timeout_ms=50)
    assert caught.value.status == 408
    assert caught.value.body["pending"] == 1


async def test_wait_calls_returns_once_enough_calls_match_and_times_out_otherwise(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(
        sandbox.client.wait_calls(
            method="sendMessage", ok=True, text_contains="hello", count=2, distinct=True
        )
    )
    await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="hello 1")
    await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="hello 1")  # same text
    await call(http, sandbox, "getMe")
    assert not waiting.done()  # two calls, but one distinct text: still waiting
    await call(http, sandbox, "sendMessage", chat_id=BOB["id"], text="hello 2")
    found = await waiting
    assert [c["params"]["text"] for c in found] == ["hello 1", "hello 1", "hello 2"]
    with pytest.raises(ControlError) as caught:
        await sandbox.client.wait_calls(timeout_ms=50, method="sendMessage", count=4)
    assert caught.value.status == 408
    assert len(caught.value.body["calls"]) == 3
    by_chat = await sandbox.client.wait_calls(method="sendMessage", params={"chat_id": BOB["id"]})
    assert [c["params"]["text"] for c in by_chat] == ["hello 2"]
    with pytest.raises(ControlError):
        await sandbox.client.wait_calls(timeout_ms=50, params={"chat_id": 1, "text": "hello 2"})


async def test_reply_keyboard_contact_and_press_by_text(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    keyboard = {"keyboard": [[{"text": "Share phone", "request_contact": True}]]}
    await call(
        http, sandbox, "sendMessage", chat_id=ANN["id"], text="phone?", reply_markup=keyboard
    )
    view = await sandbox.client.messages(ANN["id"])
    assert view["reply_keyboard"]["keyboard"][0][0]["text"] == "Share phone"
    await sandbox.client.request(
        "POST",
        "/sandbox/messages",
        json={"user_id": ANN["id"], "contact": {"phone_number": "+8613800000000"}},
    )
    _, updates = await call(http, sandbox, "getUpdates")
    assert updates["result"][0]["message"]["contact"]["phone_number"] == "+8613800000000"
    removal = {"remove_keyboard": True}
    await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="thanks", reply_markup=removal)
    assert (await sandbox.client.messages(ANN["id"]))["reply_keyboard"] is None
    with pytest.raises(ControlError) as caught:
        await sandbox.client.press(ANN["id"], 1, text="No such button")
    assert caught.value.status == 404


async def test_media_group_copy_and_file_errors(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN["id"]))
    form.add_field(
        "media",
        '[{"type":"photo","media":"attach://a","caption":"first"},'
        '{"type":"photo","media":"attach://b"}]',
    )
    form.add_field("a", png(), filename="a.png", content_type="image/png")
    form.add_field("b", png(2, 2), filename="b.png", content_type="image/png")
    async with http.post(f"{sandbox.bot_url}/sendMediaGroup", data=form) as response:
        album = (await response.json())["result"]
    assert len(album) == 2 and album[0]["media_group_id"] == album[1]["media_group_id"]
    status, copied = await call(
        http,
        sandbox,
        "copyMessage",
        chat_id=BOB["id"],
        from_chat_id=ANN["id"],
        message_id=album[0]["message_id"],
    )
    assert status == 200
    bob_view = await sandbox.client.messages(BOB["id"])
    assert bob_view["messages"][0]["message_id"] == copied["result"]["message_id"]
    assert bob_view["messages"][0]["caption"] == "first"
    status, body = await call(
        http, sandbox, "sendPhoto", chat_id=ANN["id"], photo="https://example.com/cat.jpg"
    )
    assert body["description"] == "Bad Request: failed to get HTTP URL content"
    status, body = await call(http, sandbox, "sendDocument", chat_id=ANN["id"], document="nope")
    assert body["description"] == "Bad Request: wrong file identifier/HTTP URL specified"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN["id"]))
    form.add_field("photo", b"not an image", filename="x.jpg")
    async with http.post(f"{sandbox.bot_url}/sendPhoto", data=form) as response:
        assert (await response.json())["description"] == "Bad Request: IMAGE_PROCESS_FAILED"


async def test_commands_are_kept_per_scope_and_language(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    staff = {"type": "chat", "chat_id": BOB["id"]}
    await call(
        http, sandbox, "setMyCommands", commands=[{"command": "start", "description": "Begin"}]
    )
    await call(
        http,
        sandbox,
        "setMyCommands",
        commands=[{"command": "queue", "description": "待审核"}],
        scope=staff,
        language_code="zh",
    )
    _, default = await call(http, sandbox, "getMyCommands")
    _, chat = await call(http, sandbox, "getMyCommands", scope=staff, language_code="zh")
    _, other = await call(http, sandbox, "getMyCommands", scope=staff)
    assert [c["command"] for c in default["result"]] == ["start"]
    assert [c["command"] for c in chat["result"]] == ["queue"]
    assert other["result"] == []
    status, body = await call(
        http, sandbox, "setMyCommands", commands=[{"command": "Bad-Name", "description": "x"}]
    )
    assert (status, body["description"]) == (400, "Bad Request: BOT_COMMAND_INVALID")


async def test_edits_report_not_modified_and_missing_messages(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    _, sent = await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text="same")
    message_id = sent["result"]["message_id"]
    status, body = await call(
        http, sandbox, "editMessageText", chat_id=ANN["id"], message_id=message_id, text="same"
    )
    assert status == 400 and body["description"].startswith("Bad Request: message is not modified")
    status, _ = await call(http, sandbox, "deleteMessage", chat_id=ANN["id"], message_id=message_id)
    assert status == 200
    status, body = await call(
        http, sandbox, "editMessageText", chat_id=ANN["id"], message_id=message_id, text="new"
    )
    assert body["description"] == "Bad Request: message to edit not found"
    status, body = await call(http, sandbox, "sendMessage", chat_id=999, text="hello?")
    assert body["description"] == "Bad Request: chat not found"


async def test_reset_forgets_everything_but_the_bot(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await sandbox.client.send(ANN["id"], "before")
    await sandbox.client.reset()
    assert (await sandbox.client.request("GET", "/sandbox/users"))["users"] == []
    status, body = await call(http, sandbox, "getMe")
    assert status == 200 and body["result"]["username"] == "sandbox_bot"
    _, updates = await call(http, sandbox, "getUpdates")
    assert updates["result"] == []
