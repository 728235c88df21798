"""The spec file decides what a valid call is: walk it, and check the limits at their edges."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sandbox_testkit import ANN, call, png

from sandbox.app import RunningSandbox
from sandbox.botapi import IMPLEMENTED
from sandbox.spec import Spec, load_spec

SPEC = load_spec()


def sample(spec: Spec, type_name: str, field: str = "") -> Any:
    """A plausible, well-typed value for a parameter of ``type_name``."""
    if type_name.startswith("Array of "):
        return [sample(spec, type_name.removeprefix("Array of "), field)]
    if type_name == "Integer":
        return ANN["id"] if field.endswith(("chat_id", "user_id")) else 1
    if type_name in ("Float",):
        return 1.5
    if type_name in ("Boolean", "True"):
        return True
    if type_name in ("String", "InputFile"):
        return "x"
    definition = spec.types[type_name]
    if definition.get("subtypes"):
        return sample(spec, definition["subtypes"][0], field)
    value: dict[str, Any] = {}
    for f in definition.get("fields", []):
        if f["required"]:
            value[f["name"]] = sample(spec, f["types"][0], f["name"])
    if "type" in value:
        value["type"] = spec.discriminator(type_name) or value["type"]
    return value


def full_call(method: str) -> dict[str, Any]:
    return {
        f.name: sample(SPEC, f.types[0], f.name) for f in SPEC.methods[method].fields if f.required
    }


CASES = [
    (method, field) for method in sorted(IMPLEMENTED) for field in SPEC.methods[method].required
]


def test_every_implemented_method_is_in_the_spec() -> None:
    assert set(SPEC.methods) >= IMPLEMENTED
    assert {"sendMessage", "getUpdates", "createForumTopic", "copyMessages"} <= IMPLEMENTED
    assert len(CASES) >= 40  # the walk really covers the required parameters


@pytest.mark.parametrize("method", sorted(IMPLEMENTED))
async def test_a_call_missing_each_required_parameter_is_refused(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, method: str
) -> None:
    await sandbox.client.send(ANN["id"], "a message to refer to")
    complete = full_call(method)
    status_full, body_full = await call(http, sandbox, method, **complete)
    for field in SPEC.methods[method].required:
        params = {k: v for k, v in complete.items() if k != field}
        status, body = await call(http, sandbox, method, **params)
        assert status == 400, (method, field, body)
        assert body["ok"] is False and body["error_code"] == 400
        assert body["description"].startswith("Bad Request: ")
        # The refusal is caused by the missing parameter, not by the dummy values.
        assert (status_full, body_full.get("description")) != (status, body["description"]), (
            method,
            field,
        )


async def test_a_wrongly_typed_parameter_is_refused(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sandbox, "sendMessage", chat_id=ANN["id"], text=["a list"])
    assert status == 400
    assert body["description"] == 'Bad Request: field "text" must be of type String'
    status, body = await call(
        http, sandbox, "sendMessage", chat_id=ANN["id"], text="hi", reply_markup="{not json"
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: can't parse reply keyboard markup JSON object",
    )


async def test_unknown_method_is_not_found(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sandbox, "sendTelepathy", chat_id=ANN["id"])
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


async def test_method_names_are_case_insensitive_as_in_telegram(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sandbox, "SENDMESSAGE", chat_id=ANN["id"], text="hi")
    assert status == 200 and body["result"]["text"] == "hi"


@pytest.mark.parametrize(
    ("text", "parse_mode", "expected"),
    [
        ("a" * 4096, None, 200),
        ("a" * 4097, None, "Bad Request: message is too long"),
        ("<b>" + "a" * 4096 + "</b>", "HTML", 200),  # counted after entity parsing
        ("<b>" + "a" * 4097 + "</b>", "HTML", "Bad Request: message is too long"),
        ("ё" * 4096, None, 200),  # characters, not bytes
        ("*" + "a" * 4096 + "*", "MarkdownV2", 200),
        ("", None, "Bad Request: message text is empty"),
        ("<b> </b>", "HTML", "Bad Request: message text is empty"),
    ],
)
async def test_text_length_limit_at_its_edge(
    sandbox: RunningSandbox,
    http: aiohttp.ClientSession,
    text: str,
    parse_mode: str | None,
    expected: int | str,
) -> None:
    params: dict[str, Any] = {"chat_id": ANN["id"], "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    status, body = await call(http, sandbox, "sendMessage", **params)
    if expected == 200:
        assert status == 200, body
    else:
        assert (status, body["description"]) == (400, expected)


@pytest.mark.parametrize(
    ("data", "ok"),
    [("d" * 64, True), ("d" * 65, False), ("é" * 32, True), ("é" * 32 + "d", False), ("", False)],
)
async def test_callback_data_limit_is_in_bytes(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, data: str, ok: bool
) -> None:
    markup = {"inline_keyboard": [[{"text": "Press", "callback_data": data}]]}
    status, body = await call(
        http, sandbox, "sendMessage", chat_id=ANN["id"], text="choose", reply_markup=markup
    )
    if ok:
        assert status == 200, body
    else:
        assert (status, body["description"]) == (400, "Bad Request: BUTTON_DATA_INVALID")


@pytest.mark.parametrize(("length", "ok"), [(1024, True), (1025, False)])
async def test_caption_limit_at_its_edge(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, length: int, ok: bool
) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN["id"]))
    form.add_field("caption", "c" * length)
    form.add_field("photo", png(), filename="p.png", content_type="image/png")
    async with http.post(f"{sandbox.bot_url}/sendPhoto", data=form) as response:
        body = await response.json()
    if ok:
        assert response.status == 200, body
        assert len(body["result"]["caption"]) == 1024
    else:
        assert (response.status, body["description"]) == (
            400,
            "Bad Request: message caption is too long",
        )


@pytest.mark.parametrize(("length", "ok"), [(200, True), (201, False)])
async def test_callback_answer_text_limit(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, length: int, ok: bool
) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    _, sent = await call(
        http, sandbox, "sendMessage", chat_id=ANN["id"], text="q", reply_markup=markup
    )
    pressed = await sandbox.client.press(ANN["id"], sent["result"]["message_id"], text="Go")
    status, body = await call(
        http,
        sandbox,
        "answerCallbackQuery",
        callback_query_id=pressed["callback_query_id"],
        text="t" * length,
    )
    assert (status == 200) is ok, body
