"""Keep aiogram's parsed-answer models alive for the Bot API methods the bot calls.

aiogram parses every answer with ``Response[method.__returning__]``. pydantic caches such
parametrised generic models only weakly, so whenever the garbage collector frees one it is
built again on the next call — about 7 ms of CPU each time, on a quarter of the answers in
the filing benchmark (``benchmarks/bench_bot_filing.py``). Holding them here keeps them built.
"""

from __future__ import annotations

from typing import Any

from aiogram import methods

USED = (
    methods.GetMe,
    methods.GetUpdates,
    methods.SendMessage,
    methods.SendPhoto,
    methods.SendDocument,
    methods.SendMediaGroup,
    methods.EditMessageText,
    methods.EditMessageCaption,
    methods.EditMessageReplyMarkup,
    methods.AnswerCallbackQuery,
    methods.SetMyCommands,
    methods.GetMyCommands,
    methods.CreateForumTopic,
    methods.EditForumTopic,
    methods.CloseForumTopic,
    methods.GetFile,
)

PINNED: list[Any] = [methods.Response[m.__returning__] for m in USED]  # type: ignore[name-defined]
