"""The orders of a JSON file, read a piece at a time: a 1 GB export never sits in memory whole.

The file is a list of orders (``[...]``), an export wrapping the list (``{"orders": [...]}``)
or one order. Each element is decoded on its own as the file is read, with the line it starts
on, so a bad order is reported at its own line and only the order being decoded is held.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

_PIECE = 1 << 20
# An error this close to the end of what was read may be a value cut off there (a \uXXXX
# escape is six characters); a number or literal is read this far ahead before decoding.
_LOOKAHEAD = 64
# How much is read before looking for an ``{"orders": [`` wrapper.
_HEAD = 4096
_BLANK = re.compile(r"[ \t\r\n]*")
_ORDERS_ARRAY = re.compile(r'[ \t\r\n]*\{[ \t\r\n]*"orders"[ \t\r\n]*:[ \t\r\n]*\[')


class JsonSyntaxError(ValueError):
    """Where the file stops being JSON, in the words of ``json`` and at the file's line."""

    def __init__(self, msg: str, line: int, column: int, char: int) -> None:
        super().__init__(f"{msg}: line {line} column {column} (char {char})")


class _Reader:
    """The text read so far and not yet used (``buf[pos:]``), and where it is in the file."""

    def __init__(self, path: Path, tick: Callable[[int], None]) -> None:
        self._handle = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._tick = tick
        self.buf, self.pos, self.eof = "", 0, False
        # line number at buf[counted]; column (0-based) and character index of buf[0]
        self._line, self._counted, self._col0, self._char0 = 1, 0, 0, 0

    def close(self) -> None:
        self._handle.close()

    def more(self) -> bool:
        """Drop what was used and read on (at least as much again as is held, so decoding
        one large order costs linear time); False at the end of the file."""
        if self.eof:
            return False
        self._trim()
        raw = self._handle.read(max(_PIECE, len(self.buf)))
        self._tick(len(raw))
        self.buf += self._decoder.decode(raw, final=not raw)
        self.eof = not raw
        return True

    def _trim(self) -> None:
        pos, buf = self.pos, self.buf
        self._line += buf.count("\n", self._counted, pos)
        newline = buf.rfind("\n", 0, pos)
        self._col0 = pos - newline - 1 if newline >= 0 else self._col0 + pos
        self._char0 += pos
        self.buf, self.pos, self._counted = buf[pos:], 0, 0

    def line_here(self) -> int:
        """The line number at ``pos`` (``pos`` only moves forward)."""
        self._line += self.buf.count("\n", self._counted, self.pos)
        self._counted = self.pos
        return self._line

    def error(self, msg: str, at: int) -> JsonSyntaxError:
        line = self.line_here() + self.buf.count("\n", self.pos, at)
        newline = self.buf.rfind("\n", 0, at)
        column = at - newline if newline >= 0 else self._col0 + at + 1
        return JsonSyntaxError(msg, line, column, self._char0 + at)

    def skip_blank(self) -> str:
        """Move past white space; the next character, or "" at the end of the file."""
        while True:
            self.pos = _BLANK.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def value(self, decoder: json.JSONDecoder) -> object:
        """The JSON value at ``pos``, reading on while it is cut off by the end of what was
        read; an error anywhere else is the file's, and is raised without reading on."""
        while True:
            if len(self.buf) - self.pos < _LOOKAHEAD and self.more():
                continue  # a number or a literal whole before it is decoded
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.buf) - _LOOKAHEAD or exc.msg.startswith(
                    "Unterminated string"
                )
                if cut and self.more():
                    continue
                raise self.error(exc.msg, exc.pos) from None
            if end >= len(self.buf) - 1 and self.more():
                continue  # a number may go on in the next piece
            self.pos = end
            return value


def json_documents(path: Path, tick: Callable[[int], None]) -> Iterator[tuple[int, object]]:
    """Each order of the file as decoded JSON, with the line it starts on.

    ``tick(n)`` is called with the number of bytes read. Raises ``JsonSyntaxError`` (where the
    file stops being JSON, or goes on after its list) and ``UnicodeDecodeError``.
    """
    reader = _Reader(path, tick)
    decoder = json.JSONDecoder()
    try:
        while len(reader.buf) < _HEAD and reader.more():
            pass
        wrapped = _ORDERS_ARRAY.match(reader.buf)
        if wrapped:
            reader.pos = wrapped.end()
        elif reader.skip_blank() == "[":
            reader.pos += 1
        else:  # one order (or an error where it is)
            line = reader.line_here()
            document = reader.value(decoder)
            _end(reader)
            yield line, document
            return
        first = True
        while (next_char := reader.skip_blank()) != "]":
            if not first:
                if next_char != ",":
                    raise reader.error("Expecting ',' delimiter", reader.pos)
                reader.pos += 1
                reader.skip_blank()
            line = reader.line_here()
            yield line, reader.value(decoder)
            first = False
        reader.pos += 1
        if wrapped:
            _end_of_wrapper(reader, decoder)
        else:
            _end(reader)
    finally:
        reader.close()


_WRAPPER_HEAD = '{"orders":[]'


def _end_of_wrapper(reader: _Reader, decoder: json.JSONDecoder) -> None:
    """The rest of a wrapping object (its other keys, its closing brace) must be JSON, and
    nothing but white space may follow it: two wrapped exports run together are not one.
    What follows the list is read whole; it is the object's tail, not its orders."""
    while reader.more():
        pass
    text = _WRAPPER_HEAD + reader.buf[reader.pos :]
    offset = reader.pos - len(_WRAPPER_HEAD)  # ``text`` index → ``reader.buf`` index
    try:
        _value, end = decoder.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise reader.error(exc.msg, exc.pos + offset) from None
    after = _BLANK.match(text, end).end()  # type: ignore[union-attr]
    if after < len(text):
        raise reader.error("Extra data", after + offset)


def _end(reader: _Reader) -> None:
    """Nothing but white space may follow: two exports run together are not one."""
    if reader.skip_blank():
        raise reader.error("Extra data", reader.pos)
