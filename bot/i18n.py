"""Every user-visible text, in zh-CN and en.

Texts live in ``bot/locales/<lang>.json`` and ``bot/locales/<lang>.<area>.json`` (one area
per part of the product, merged at load). Keys are dotted (``bind.unbound``); parameters use
``str.format`` names. A missing key falls back to English and is logged, never shown raw.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh-CN")
DEFAULT = "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    folder = resources.files("bot") / "locales"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name
        if not name.endswith(".json"):
            continue
        stem = name[: -len(".json")]
        if stem == lang or stem.startswith(f"{lang}."):
            texts = json.loads(entry.read_text(encoding="utf-8"))
            clash = merged.keys() & texts.keys()
            if clash:
                raise ValueError(f"{name} repeats keys {sorted(clash)}")
            merged.update(texts)
    return merged


def t(lang: str, key: str, **params: Any) -> str:
    texts = catalog(lang if lang in LANGUAGES else DEFAULT)
    template = texts.get(key)
    if template is None:
        log.error("missing text %s for %s", key, lang)
        template = catalog(DEFAULT).get(key, key)
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        log.error("text %s for %s needs other parameters than %s", key, lang, sorted(params))
        return template


def exists(lang: str, key: str) -> bool:
    return key in catalog(lang if lang in LANGUAGES else DEFAULT)


def refusal_key(lang: str, key: str, params: dict[str, Any]) -> str:
    """``error.<key>.<reason>`` when a refusal carries a reason we have words for."""
    reason = params.get("reason")
    specific = f"error.{key}.{reason}"
    return specific if reason is not None and exists(lang, specific) else f"error.{key}"
