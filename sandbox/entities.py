"""Formatted text the way Telegram parses it: HTML, MarkdownV2 and legacy Markdown.

A bot that sends malformed markup gets ``400 Bad Request: can't parse entities: ...`` from
Telegram, and the 4096-character limit counts the text *after* the markup is stripped; both
are reproduced here so a bot that passes in the sandbox passes in production. Entity offsets
and lengths are in UTF-16 code units, as the Bot API reports them; byte offsets in error
messages are UTF-8, as Telegram's are.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.spec import ApiError, bad_request


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _parse_error(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


@dataclass
class _Builder:
    """Accumulates plain text and entities while a parser walks the markup."""

    parts: list[str] = field(default_factory=list)
    length16: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length16 += utf16_len(text)

    def close(self, start16: int, entity: dict[str, Any]) -> None:
        if self.length16 > start16:
            entity.update(offset=start16, length=self.length16 - start16)
            self.entities.append(entity)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


# ---------------------------------------------------------------------------------- HTML

_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_HTML_TAGS = {*_HTML_SIMPLE, "a", "span", "tg-emoji", "tg-time"}
_ATTR_RE = re.compile(r"""\s*([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")
_ENTITY_RE = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    stack: list[tuple[str, int, dict[str, Any]]] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "&":
            match = _ENTITY_RE.match(source, i)
            if match:
                out.add(html.unescape(match.group(0)))
                i = match.end()
            else:
                out.add("&")
                i += 1
            continue
        if ch != "<":
            j = i
            while j < n and source[j] not in "<&":
                j += 1
            out.add(source[i:j])
            i = j
            continue
        end = source.find(">", i)
        if end == -1:
            raise _parse_error(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        body = source[i + 1 : end]
        if body.startswith("/"):
            name = body[1:].strip().lower()
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {_byte_offset(source, i)}")
            open_name, start16, entity = stack.pop()
            if name and name != open_name:
                raise _parse_error(
                    f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            out.close(start16, entity)
        else:
            name_match = re.match(r"[a-zA-Z][a-zA-Z0-9-]*", body)
            name = name_match.group(0).lower() if name_match else ""
            if name not in _HTML_TAGS:
                raise _parse_error(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}'
                )
            attrs = {
                m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                for m in _ATTR_RE.finditer(body[len(name) :].rstrip("/"))
                if m.group(1)
            }
            stack.append((name, out.length16, _html_entity(name, attrs, stack)))
        i = end + 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    text, entities = out.result()
    # <pre><code class="language-x"> is one pre entity with a language, not two entities.
    return text, _merge_pre_code(entities)


def _html_entity(
    name: str, attrs: dict[str, str], stack: list[tuple[str, int, dict[str, Any]]]
) -> dict[str, Any]:
    if name == "a":
        href = attrs.get("href", "")
        if href.startswith("tg://user?id="):
            return {"type": "text_mention", "user": {"id": int(href.split("=", 1)[1] or 0)}}
        return {"type": "text_link", "url": href}
    if name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise _parse_error('Tag "span" must have class "tg-spoiler"')
        return {"type": "spoiler"}
    if name == "tg-emoji":
        return {"type": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id", "")}
    if name == "tg-time":
        return {"type": "date_time", "unix_time": int(attrs.get("unix", "0") or 0)}
    if name == "code" and stack and stack[-1][0] == "pre" and "class" in attrs:
        return {"type": "code", "language": attrs["class"].removeprefix("language-")}
    if name == "blockquote" and "expandable" in attrs:
        return {"type": "expandable_blockquote"}
    return {"type": _HTML_SIMPLE[name]}


def _merge_pre_code(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pre_spans = {(e["offset"], e["length"]): e for e in entities if e["type"] == "pre"}
    merged: list[dict[str, Any]] = []
    for entity in entities:
        pre = pre_spans.get((entity["offset"], entity["length"]))
        if entity["type"] == "code" and pre is not None:
            if "language" in entity:
                pre["language"] = entity["language"]
            continue
        merged.append(entity)
    return merged


# ---------------------------------------------------------------------------- MarkdownV2

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKS = [
    ("```", "pre", "Pre"),
    ("||", "spoiler", "Spoiler"),
    ("__", "underline", "Underline"),
    ("*", "bold", "Bold"),
    ("_", "italic", "Italic"),
    ("~", "strikethrough", "Strikethrough"),
    ("`", "code", "Code"),
]


def parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    # Open entities: (marker, start16, entity, byte offset of the marker).
    stack: list[tuple[str, int, dict[str, Any], int]] = []
    i, n = 0, len(source)
    line_start = True
    quote_start: int | None = None
    while i < n:
        ch = source[i]
        in_code = bool(stack) and stack[-1][0] in ("`", "```")
        if ch == "\\" and i + 1 < n and 0 < ord(source[i + 1]) < 127:
            out.add(source[i + 1])
            i += 2
            line_start = False
            continue
        if in_code:
            marker = stack[-1][0]
            if source.startswith(marker, i):
                _, start16, entity, _ = stack.pop()
                out.close(start16, entity)
                i += len(marker)
            else:
                out.add(ch)
                i += 1
            continue
        if line_start and ch == ">":
            if quote_start is None:
                quote_start = out.length16
            i += 1
            line_start = False
            continue
        if ch == "\n":
            if quote_start is not None and not source.startswith(">", i + 1):
                out.close(quote_start, {"type": "blockquote"})
                quote_start = None
            out.add(ch)
            i += 1
            line_start = True
            continue
        line_start = False
        if ch == "[" or (ch == "!" and source.startswith("![", i)):
            i = _markdown_v2_link(source, i, out)
            continue
        for marker, kind, label in _MDV2_MARKS:
            if source.startswith(marker, i):
                if stack and stack[-1][0] == marker:
                    _, start16, entity, _ = stack.pop()
                    out.close(start16, entity)
                elif any(m == marker for m, *_ in stack):
                    raise _parse_error(
                        f"Can't find end of {label} entity at byte offset "
                        f"{next(b for m, _, _, b in stack if m == marker)}"
                    )
                else:
                    opened: dict[str, Any] = {"type": kind}
                    skip = 0
                    if marker == "```":
                        newline = source.find("\n", i + 3)
                        language = source[i + 3 : newline] if newline != -1 else ""
                        if newline != -1 and re.fullmatch(r"[\w+#.-]*", language):
                            skip = len(language) + 1
                            if language:
                                opened["language"] = language
                    stack.append((marker, out.length16, opened, _byte_offset(source, i)))
                    i += skip
                i += len(marker)
                break
        else:
            if ch in _MDV2_RESERVED:
                raise _parse_error(
                    f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
                )
            out.add(ch)
            i += 1
    if stack:
        marker, _, _, byte = stack[-1]
        label = next(lbl for m, _, lbl in _MDV2_MARKS if m == marker)
        raise _parse_error(f"Can't find end of {label} entity at byte offset {byte}")
    if quote_start is not None:
        out.close(quote_start, {"type": "blockquote"})
    return out.result()


def _markdown_v2_link(source: str, i: int, out: _Builder) -> int:
    """Parse ``[text](url)`` or ``![emoji](tg://emoji?id=...)`` starting at ``i``."""
    start_byte = _byte_offset(source, i)
    i += 2 if source[i] == "!" else 1
    close = i
    depth = 0
    while close < len(source):
        if source[close] == "\\":
            close += 2
            continue
        if source[close] == "[":
            depth += 1
        elif source[close] == "]":
            if depth == 0:
                break
            depth -= 1
        close += 1
    if close >= len(source) or not source.startswith("(", close + 1):
        raise _parse_error(f"Can't find end of TextUrl entity at byte offset {start_byte}")
    url_end = close + 2
    url_chars: list[str] = []
    while url_end < len(source) and source[url_end] != ")":
        if source[url_end] == "\\" and url_end + 1 < len(source):
            url_end += 1
        url_chars.append(source[url_end])
        url_end += 1
    if url_end >= len(source):
        raise _parse_error(f"Can't find end of a URL at byte offset {start_byte}")
    inner_text, inner_entities = parse_markdown_v2(source[i:close])
    start16 = out.length16
    for entity in inner_entities:
        entity["offset"] += start16
        out.entities.append(entity)
    out.add(inner_text)
    url = "".join(url_chars)
    if url.startswith("tg://emoji?id="):
        out.close(start16, {"type": "custom_emoji", "custom_emoji_id": url.split("=", 1)[1]})
    elif url.startswith("tg://user?id="):
        out.close(start16, {"type": "text_mention", "user": {"id": int(url.split("=", 1)[1])}})
    else:
        out.close(start16, {"type": "text_link", "url": url})
    return url_end + 1


# ------------------------------------------------------------------------ legacy Markdown

_MD_MARKS = {"*": "bold", "_": "italic", "`": "code"}


def parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
        elif source.startswith("```", i) or ch in _MD_MARKS:
            marker = "```" if source.startswith("```", i) else ch
            end = source.find(marker, i + len(marker))
            if end == -1:
                raise _parse_error(
                    "Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(source, i)}"
                )
            start16 = out.length16
            out.add(source[i + len(marker) : end])
            out.close(start16, {"type": "pre" if marker == "```" else _MD_MARKS[marker]})
            i = end + len(marker)
        elif ch == "[":
            match = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(source, i)
            if not match:
                raise _parse_error(
                    "Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(source, i)}"
                )
            start16 = out.length16
            out.add(match.group(1))
            out.close(start16, {"type": "text_link", "url": match.group(2)})
            i = match.end()
        else:
            out.add(ch)
            i += 1
    return out.result()


# ----------------------------------------------------------------------------- entry points

_PARSERS = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown}
_COMMAND_RE = re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(@[a-zA-Z0-9_]{5,32})?")


def parse_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities for ``text`` under ``parse_mode`` (or explicit ``entities``)."""
    if parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise bad_request("unsupported parse_mode")
        return parser(text)
    return text, list(entities or [])


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entities a Telegram client attaches to a user's text."""
    found = []
    for match in _COMMAND_RE.finditer(text):
        found.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group(0)),
            }
        )
    return found


_HTML_OUT = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "spoiler": ('<span class="tg-spoiler">', "</span>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
}


def to_html(text: str, entities: list[dict[str, Any]]) -> str:
    """Safe HTML for a message as a client renders it (for the web chat and for humans)."""
    units = text.encode("utf-16-le")
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for entity in sorted(entities, key=lambda e: (e["offset"], -e["length"])):
        kind = entity.get("type", "")
        if kind == "text_link":
            tags = (f'<a href="{html.escape(str(entity.get("url", "")))}">', "</a>")
        else:
            tags = _HTML_OUT.get(kind, ("", ""))
        start, end = entity["offset"], entity["offset"] + entity["length"]
        opens.setdefault(start, []).append(tags[0])
        closes.setdefault(end, []).insert(0, tags[1])
    pieces: list[str] = []
    boundaries = sorted({0, len(units) // 2, *opens, *closes})
    for k, pos in enumerate(boundaries):
        pieces.extend(closes.get(pos, []))
        pieces.extend(opens.get(pos, []))
        if k + 1 < len(boundaries):
            chunk = units[pos * 2 : boundaries[k + 1] * 2].decode("utf-16-le", errors="replace")
            pieces.append(html.escape(chunk, quote=False))
    return "".join(pieces)
