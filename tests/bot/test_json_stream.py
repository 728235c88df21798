"""The JSON export read a piece at a time gives what ``json`` gives for the whole file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import json_stream
from bot.json_stream import JsonSyntaxError, json_documents

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),  # any characters: escapes, CJK, astral emoji
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_ORDERS = st.lists(st.dictionaries(st.text(max_size=8), _VALUES, max_size=5), max_size=6)


def _read(path: Path) -> list[object]:
    return [document for _line, document in json_documents(path, lambda n: None)]


@settings(max_examples=150, deadline=None)
@given(
    orders=_ORDERS,
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    piece=st.integers(1, 9),
    wrapped=st.booleans(),
)
def test_pieces_of_any_size_read_what_json_reads_whole(
    orders: list[dict[str, object]],
    indent: int | None,
    ascii_only: bool,
    piece: int,
    wrapped: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    document: object = {"orders": orders} if wrapped else orders
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    path = tmp_path_factory.mktemp("export") / "orders.json"
    path.write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_stream, "_PIECE", piece)
        patch.setattr(json_stream, "_HEAD", 32)  # room for the head of an {"orders": [ wrapper
        assert _read(path) == json.loads(text)["orders" if wrapped else slice(None)]


def test_orders_come_out_before_the_file_is_read_to_its_end(tmp_path: Path) -> None:
    """A large export never sits in memory whole: the first order is handed on when only the
    first pieces of the file have been read."""
    path = tmp_path / "orders.json"
    orders = [{"order_ref": f"O-{n}", "note": "x" * 1000} for n in range(200)]
    path.write_text(json.dumps(orders), encoding="utf-8")
    read = [0]

    def tick(count: int) -> None:
        read[0] += count

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_stream, "_PIECE", 4096)
        patch.setattr(json_stream, "_HEAD", 4096)
        documents = json_documents(path, tick)
        line, first = next(documents)
        assert (line, first) == (1, orders[0])
        assert read[0] < path.stat().st_size // 10, read[0]
        assert [d for _, d in documents] == orders[1:]
    assert read[0] == path.stat().st_size


@pytest.mark.parametrize(
    "text",
    [
        '[\n  {"a": 1},\n  {"b": tru}\n]\n',
        '[{"a": 1}]\n[{"b": 2}]\n',  # two exports run together
        '{"orders": [{"a": 1}]}\n{"orders": [{"b": 2}]}\n',  # two wrapped ones
        '{"orders": [{"a": 1}], "count": 1',  # a wrapper never closed
        '{"orders": [{"a": 1}]] nonsense',
    ],
)
def test_a_syntax_error_is_placed_at_the_files_own_line_and_column(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "orders.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(json.JSONDecodeError) as whole:
        json.loads(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(json_stream, "_PIECE", 3)
        patch.setattr(json_stream, "_HEAD", 32)
        with pytest.raises(JsonSyntaxError) as pieces:
            _read(path)
    assert str(pieces.value) == str(whole.value)
