"""Every text exists in both languages; lifecycle labels follow the table exactly."""

from __future__ import annotations

import re
import string

from bot import i18n
from workflow import lifecycle
from workflow.claims import (
    ClaimType,
    Liability,
    OrderEventKind,
    OverdueOutcome,
    Reason,
    ShipmentKind,
    ShipmentStatus,
)
from workflow.services.filing import FILE_TRIGGER


def test_both_languages_have_the_same_keys() -> None:
    assert set(i18n.catalog("en")) == set(i18n.catalog("zh-CN"))


def test_both_languages_use_the_same_parameters() -> None:
    def names(text: str) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field}

    en, zh = i18n.catalog("en"), i18n.catalog("zh-CN")
    assert {k: names(v) for k, v in en.items()} == {k: names(v) for k, v in zh.items()}


# Texts that are fragments spliced into others, whose edge spaces are part of the layout.
_FRAGMENTS = {"cli.scan", "consignor.balance.for_claim"}
_CJK = "\u4e00-\u9fff"
# ASCII punctuation touching Chinese on both sides, or ending a Chinese sentence.
_ASCII_PUNCTUATION_IN_CHINESE = re.compile(
    rf"[{_CJK}][,.:;?!(][{_CJK}]|[{_CJK}][,.:;?!)]$|\)[{_CJK}]"
)
# Texts read by staff or the operator running the demo (addressed as 你), by key.
_COLLEAGUES = ("staff.", "cli.")
_TO_STAFF = {"dialog.open_elsewhere", "dialog.cancel_in_its_topic"}  # staff prompts in topics
# One word per thing in zh-CN: claim 售后单, consignor 寄售人, staff 客服, compensation 赔偿,
# carrier 物流公司, tracking number 运单号, withdraw 撤回. These are the words we do not use.
_NOT_OUR_WORDS = (
    "工单",
    "案件",
    "货主",
    "工作人员",
    "员工",
    "补偿",
    "承运商",
    "物流单号",
    "快递单号",
    "撤销",
)


def test_texts_are_typeset_cleanly_and_zh_cn_keeps_to_one_word_per_thing() -> None:
    untidy = [
        (lang, key)
        for lang in i18n.LANGUAGES
        for key, text in i18n.catalog(lang).items()
        if key not in _FRAGMENTS
        and (
            text != text.strip()
            or any(line != line.rstrip() or "  " in line.lstrip(" ") for line in text.split("\n"))
        )
    ]
    assert untidy == [], "leading/trailing whitespace or a double space"
    zh = i18n.catalog("zh-CN")
    half_width = [key for key, text in zh.items() if _ASCII_PUNCTUATION_IN_CHINESE.search(text)]
    assert half_width == [], "zh-CN uses full-width punctuation in Chinese text"
    other_words = {key: w for key, text in zh.items() for w in _NOT_OUR_WORDS if w in text}
    assert other_words == {}, "zh-CN uses another word for a thing that already has one"
    # Buyers and consignors are addressed as 您; colleagues (staff, the demo's operator) as 你.
    familiar = [
        key
        for key, text in zh.items()
        if "你" in text and not key.startswith(_COLLEAGUES) and key not in _TO_STAFF
    ]
    assert familiar == [], "buyers and consignors are addressed as 您"


def test_lifecycle_labels_are_exactly_the_tables_states_and_steps() -> None:
    keys = i18n.catalog("en").keys()
    assert {k.removeprefix("state.") for k in keys if k.startswith("state.")} == set(
        lifecycle.STATES
    )
    assert {k.removeprefix("trigger.") for k in keys if k.startswith("trigger.")} == {
        *lifecycle.TRIGGERS,
        FILE_TRIGGER,
    }
    assert {k.removeprefix("claim_type.") for k in keys if k.startswith("claim_type.")} == {
        c.value for c in ClaimType
    }
    assert {k.removeprefix("reason.") for k in keys if k.startswith("reason.")} == {
        r.value for r in Reason
    }
    assert {k.removeprefix("liability.") for k in keys if k.startswith("liability.")} == {
        x.value for x in Liability
    }


def test_the_cli_names_every_kind_of_shipment_and_scan() -> None:
    keys = i18n.catalog("en").keys()
    assert {k.removeprefix("cli.shipment.") for k in keys if k.startswith("cli.shipment.")} == {
        k.value for k in ShipmentKind
    }
    assert {k.removeprefix("cli.scan.") for k in keys if k.startswith("cli.scan.")} == {
        s.value for s in ShipmentStatus
    }


def test_staff_read_every_kind_of_order_event_and_its_outcome() -> None:
    keys = i18n.catalog("en").keys()
    for prefix, values in (
        ("staff.order_event.", OrderEventKind),
        ("staff.overdue_outcome.", OverdueOutcome),
    ):
        assert {k.removeprefix(prefix) for k in keys if k.startswith(prefix)} == {
            v.value for v in values
        }


def test_every_domain_refusal_has_words() -> None:
    from workflow import errors
    from workflow.services.accounts import BindingRefused

    refusals: list[type[errors.DomainError]] = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.DomainError)
    ]
    refusals.append(BindingRefused)
    for cls in refusals:
        assert i18n.exists("en", f"error.{cls.key}"), cls
