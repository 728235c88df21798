"""Formatted text is parsed as Telegram parses it, errors worded as Telegram words them."""

from __future__ import annotations

import pytest

from sandbox.entities import command_entities, parse_html, parse_markdown_v2, to_html
from sandbox.spec import ApiError


def test_html_gives_plain_text_and_utf16_entities() -> None:
    text, entities = parse_html(
        '😀 <b>bold <i>both</i></b> &lt;x&gt; <a href="https://t.me">link</a>'
    )
    assert text == "😀 bold both <x> link"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
        {"type": "text_link", "url": "https://t.me", "offset": 17, "length": 4},
    ]


def test_pre_with_code_language_is_one_entity() -> None:
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert text == "x = 1"
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("a <b", "Unclosed start tag at byte offset 2"),
    ],
)
def test_broken_html_is_refused(source: str, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_html(source)
    assert caught.value.description == f"Bad Request: can't parse entities: {reason}"


def test_markdown_v2_entities_and_escapes() -> None:
    text, entities = parse_markdown_v2(r"*bold* _it_ __u__ ~s~ ||sp|| `c` [l](http://a\.b) 1\.5")
    assert text == "bold it u s sp c l 1.5"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    assert entities[-1]["url"] == "http://a.b"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1.5", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("ok _x", "Can't find end of Italic entity at byte offset 3"),
    ],
)
def test_broken_markdown_v2_is_refused(source: str, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_markdown_v2(source)
    assert caught.value.description == f"Bad Request: can't parse entities: {reason}"


def test_round_trip_to_safe_html() -> None:
    text, entities = parse_html("<b>a &lt;script&gt;</b> <i>b</i>")
    assert to_html(text, entities) == "<b>a &lt;script&gt;</b> <i>b</i>"


def test_commands_in_user_text_get_bot_command_entities() -> None:
    assert command_entities("/start@sandbox_bot go") == [
        {"type": "bot_command", "offset": 0, "length": 18}
    ]
    assert command_entities("no/command here") == []
