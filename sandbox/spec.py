"""The Bot API spec as data: which methods exist and what their parameters must look like.

Every parameter check the sandbox makes (required parameters, types, the shape of nested
JSON objects) is derived from ``data/bot-api-spec.json`` (PaulSonOfLars/telegram-bot-api-spec,
MIT, see ``data/NOTICE``), so the sandbox is only as lenient or strict as the published API.
Requests arrive as JSON (native types), as form fields or as multipart parts (everything a
string, nested objects JSON-serialized); :meth:`Spec.validate` coerces all three the way
Telegram does and answers wrong input with Telegram's wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any


class ApiError(Exception):
    """A Bot API failure: becomes {"ok": false, "error_code", "description", "parameters"}."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[str, ...]
    required: bool
    description: str


@dataclass(frozen=True)
class Method:
    name: str
    fields: tuple[Field, ...]
    returns: tuple[str, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


# Telegram's own wording for a missing required parameter; the rest get "<name> is empty".
_MISSING_WORDING = {
    "text": "message text is empty",
    "message_id": "message identifier is not specified",
    "photo": "there is no photo in the request",
    "document": "there is no document in the request",
    "media": "there are no media in the request",
    "from_chat_id": "from_chat_id is empty",
    "message_ids": "message identifiers are not specified",
    "commands": "commands are empty",
}

# Telegram's wording when a nested JSON object does not parse.
_OBJECT_WORDING = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "entities": "can't parse entities JSON object",
    "caption_entities": "can't parse entities JSON object",
}

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MUST_BE_RE = re.compile(r"must be ([\w-]+)")


class _Mismatch(Exception):
    """A value that does not fit a type; turned into an ApiError by the caller."""


class Spec:
    """The loaded spec: ``methods`` by name, ``types`` as in the JSON file."""

    def __init__(self, raw: dict[str, Any]):
        self.version: str = raw["version"]
        self.types: dict[str, dict[str, Any]] = raw["types"]
        self.methods: dict[str, Method] = {
            name: Method(
                name=name,
                fields=tuple(
                    Field(
                        name=f["name"],
                        types=tuple(f["types"]),
                        required=bool(f["required"]),
                        description=f.get("description", ""),
                    )
                    for f in m.get("fields", [])
                ),
                returns=tuple(m.get("returns", [])),
            )
            for name, m in raw["methods"].items()
        }
        self._by_lower = {name.lower(): name for name in self.methods}

    def canonical(self, method: str) -> str | None:
        """Telegram matches method names case-insensitively."""
        return self._by_lower.get(method.lower())

    def validate(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check and coerce ``params`` for ``method``; unknown parameters are dropped."""
        spec = self.methods[method]
        out: dict[str, Any] = {}
        for field in spec.fields:
            value = params.get(field.name)
            if value is None or (isinstance(value, str) and value == "" and field.required):
                if field.required:
                    raise bad_request(_MISSING_WORDING.get(field.name, f"{field.name} is empty"))
                continue
            try:
                out[field.name] = self._coerce(value, field.types)
            except _Mismatch as exc:
                if field.name in _OBJECT_WORDING:
                    raise bad_request(_OBJECT_WORDING[field.name]) from None
                detail = str(exc)
                if detail:
                    raise bad_request(f"can't parse {field.name}: {detail}") from None
                raise bad_request(
                    f'field "{field.name}" must be of type {" or ".join(field.types)}'
                ) from None
        return out

    # --- coercion -----------------------------------------------------------------------

    def _coerce(self, value: Any, types: tuple[str, ...]) -> Any:
        last: _Mismatch | None = None
        for type_name in types:
            try:
                return self._coerce_one(value, type_name)
            except _Mismatch as exc:
                if str(exc) and last is None:
                    last = exc
        raise last or _Mismatch("")

    def _coerce_one(self, value: Any, type_name: str) -> Any:
        if type_name.startswith("Array of "):
            value = _json_if_string(value)
            if not isinstance(value, list):
                raise _Mismatch("")
            item_type = type_name.removeprefix("Array of ")
            return [self._coerce_one(item, item_type) for item in value]
        scalar = _SCALARS.get(type_name)
        if scalar is not None:
            return scalar(value)
        if type_name == "InputFile":
            if isinstance(value, Upload):
                return value
            raise _Mismatch("")
        definition = self.types.get(type_name)
        if definition is None:
            raise _Mismatch("")
        value = _json_if_string(value)
        if not isinstance(value, dict):
            raise _Mismatch("")
        return self._coerce_object(value, type_name, definition)

    def _coerce_object(
        self, value: dict[str, Any], type_name: str, definition: dict[str, Any]
    ) -> dict[str, Any]:
        subtypes = definition.get("subtypes")
        if subtypes:
            kind = value.get("type", value.get("source"))
            for sub in subtypes:
                if self.discriminator(sub) in (kind, None):
                    try:
                        return self._coerce_object(value, sub, self.types[sub])
                    except _Mismatch:
                        continue
            raise _Mismatch(f"unsupported {type_name} type {kind!r}")
        out: dict[str, Any] = dict(value)
        for field in definition.get("fields", []):
            name = field["name"]
            if name not in value or value[name] is None:
                if field["required"]:
                    raise _Mismatch(f'field "{name}" of {type_name} is missing')
                continue
            try:
                out[name] = self._coerce(value[name], tuple(field["types"]))
            except _Mismatch:
                raise _Mismatch(
                    f'field "{name}" of {type_name} must be of type {" or ".join(field["types"])}'
                ) from None
        discriminator = self.discriminator(type_name)
        if discriminator is not None and out.get("type", discriminator) != discriminator:
            raise _Mismatch(f"{type_name} type must be {discriminator}")
        return out

    def discriminator(self, type_name: str) -> str | None:
        """The value of ``type`` a subtype demands ("Scope type, must be chat" → "chat")."""
        for field in self.types.get(type_name, {}).get("fields", []):
            if field["name"] == "type":
                match = _MUST_BE_RE.search(field.get("description", ""))
                return match.group(1) if match else None
        return None


def _json_if_string(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _Mismatch("") from None
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _Mismatch("")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value)
    raise _Mismatch("")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Mismatch("")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
        return float(value)
    raise _Mismatch("")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise _Mismatch("")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Mismatch("")


_SCALARS: dict[str, Any] = {
    "Integer": _integer,
    "Float": _float,
    "Boolean": _boolean,
    "String": _string,
    "True": _boolean,
}


@cache
def load_spec() -> Spec:
    """The spec shipped inside the package (read once per process)."""
    text = files("sandbox").joinpath("data/bot-api-spec.json").read_text(encoding="utf-8")
    return Spec(json.loads(text))
