"""The bot's copy of Telegram's limits agrees with the Bot API spec the sandbox enforces."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from bot import limits


def _field(spec: dict, kind: str, name: str, field: str) -> str:
    [found] = [f for f in spec[kind][name]["fields"] if f["name"] == field]
    return str(found["description"])


@pytest.mark.parametrize("constant", sorted(limits.SPEC_FIELDS))
def test_each_limit_is_the_one_the_spec_states(constant: str) -> None:
    spec = json.loads(files("sandbox").joinpath("data/bot-api-spec.json").read_text("utf-8"))
    for kind, name, field in limits.SPEC_FIELDS[constant]:
        prose = _field(spec, kind, name, field)
        stated = re.search(r"\d+-(\d+) (?:characters|bytes)|[Aa]t most (\d+)", prose)
        assert stated, prose
        assert int(stated.group(1) or stated.group(2)) == getattr(limits, constant), prose


def test_visible_length_counts_text_after_the_markup_is_parsed() -> None:
    assert limits.visible_length("<b>x</b> &amp; &lt;3") == len("x & <3")
    assert limits.visible_length("⭐ 中文 😀") == 7  # the emoji is two UTF-16 units


def test_clip_ends_with_an_ellipsis_only_where_it_cut() -> None:
    assert limits.clip("short", 10) == "short"
    assert limits.clip("a & b & c & d", 6) == "a & b…"
