"""One update in, outputs out: one transaction per update, duplicates ignored, errors explained.

The adapter calls :func:`process` for every update. It records the update id in the same
transaction as the work the update causes, so a redelivered update is recognised and
ignored; a domain refusal rolls the work back and answers with a sentence in the user's
language; a database that cannot be used for now (unreachable, or locked by another process
past the busy timeout) is logged and answered "try again in a moment", with nothing recorded,
so the retry is handled as if it came first; anything unexpected is logged with a reference
and answered politely — the dispatcher never dies.

A buyer's or a consignor's own commands and buttons are answered only in their private chat,
never in a group where others would read them. An edited message is never acted on (what
was read stands); in a private chat the user is told so.

A dialog (a question the bot asked and waits to have answered) takes its answer only from
the chat and topic it was asked in; and once the claim it is about has moved on, the one
answer that finds it out of date also ends it, although the refused work is rolled back.
"""

from __future__ import annotations

import html
import logging
import secrets

from bot import limits
from bot.conversations import callbacks
from bot.conversations.context import CHANNEL, Ctx, Services, asked_here, language_of
from bot.conversations.model import Incoming, Later, Outcome, Output, Screen, Toast
from bot.conversations.routes import ANYONE, ROUTES, audience_of, private_only, staff_elsewhere
from bot.i18n import refusal_key
from storage.engine import unavailable
from workflow.errors import AlreadyHandled, DomainError
from workflow.services.accounts import actors_for

log = logging.getLogger(__name__)

# Commands an unbound user may use: binding itself, language, help.
OPEN_COMMANDS = frozenset({"start", "lang", "help", "cancel"})
# A refusal quotes what it names back in at most this many characters: every reference it
# can name (an order ref, a tracking number) is shorter; a text pasted whole is not.
QUOTED_CHARS = 64
# ctx.memo key: the update was the answer to a dialog.
_ANSWERED_DIALOG = "engine.answered_dialog"


async def process(services: Services, incoming: Incoming) -> list[Output]:
    lang = language_of(None, incoming.user.language_code)
    try:
        async with services.uows() as uow:
            now = services.env.clock.now()
            if await uow.chat.seen_update(CHANNEL, incoming.update_id, now):
                log.info("duplicate update %s ignored", incoming.update_id)
                return []
            chosen = await uow.chat.touch_user(
                CHANNEL, incoming.user.id, incoming.user.first_name, now, lang
            )
            lang = language_of(chosen, incoming.user.language_code)
            ctx = Ctx(
                uow, services, incoming, lang, await actors_for(uow, CHANNEL, incoming.user.id)
            )
            error: list[Output] | None = None
            stale_dialog = False
            try:
                outcome = await route(ctx)
            except DomainError as refusal:
                # An answer refused because the claim moved on can never succeed: the
                # dialog ends (below, after the rollback) instead of refusing every message.
                stale_dialog = isinstance(refusal, AlreadyHandled) and bool(
                    ctx.memo.get(_ANSWERED_DIALOG)
                )
                error = (
                    [Screen(services.translate(lang, "dialog.out_of_date"))]
                    if stale_dialog
                    else _refusal(services, lang, refusal, incoming)
                )
            else:
                _log_refusals(incoming, outcome)
                await uow.commit()
        if error is None:
            # The transaction has ended: slow outputs are made now, holding nothing.
            made: list[Output] = []
            for output in outcome.outputs:
                made += await output.make() if isinstance(output, Later) else [output]
            return _with_answer(incoming, made)
        # The refused work was rolled back; remember the update so a redelivery stays quiet.
        async with services.uows() as uow:
            await uow.chat.seen_update(CHANNEL, incoming.update_id, services.env.clock.now())
            if stale_dialog:
                await uow.chat.end_conversation(CHANNEL, incoming.user.id)
            await uow.commit()
        return _with_answer(incoming, error)
    except Exception as exc:
        if unavailable(exc):
            # Nothing was committed (not even the update's id): the user's retry starts afresh.
            log.warning(
                "update %s from %s not handled, the database is unavailable: %s",
                incoming.update_id,
                incoming.user.id,
                _first_line(exc),
            )
            text = services.translate(lang, "error.unavailable")
        else:
            reference = secrets.token_hex(4)
            log.exception("update %s failed (ref %s)", incoming.update_id, reference)
            text = services.translate(lang, "error.unexpected", reference=reference)
        return _with_answer(
            incoming, [Toast(text, alert=True) if incoming.callback_id else Screen(text)]
        )


def _first_line(exc: BaseException) -> str:
    """What went wrong, on one line (a driver's message goes on with the SQL)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _refusal(
    services: Services, lang: str, refusal: DomainError, incoming: Incoming
) -> list[Output]:
    log.info("refused: %s", refusal)
    # What the refusal names back may be what the user typed (a "number" pasted whole):
    # quoted short, and escaped only for a message (a toast is plain text).
    params = {k: limits.clip(str(v), QUOTED_CHARS) for k, v in refusal.params.items()}
    key = refusal_key(lang, refusal.key, refusal.params)
    if incoming.callback_id:
        return [Toast(services.translate(lang, key, **params), alert=True)]
    escaped = {k: html.escape(v) for k, v in params.items()}
    return [Screen(services.translate(lang, key, **escaped))]


def _log_refusals(incoming: Incoming, outcome: Outcome) -> None:
    """A press answered with an alert was refused (a forged, stale or foreign button, one
    of an ended dialog): the user has their sentence, the log its line."""
    for output in outcome.outputs:
        if isinstance(output, Toast) and output.alert:
            log.info(
                "update %s from %s: press %r refused: %s",
                incoming.update_id,
                incoming.user.id,
                incoming.callback_data,
                output.text,
            )


def _with_answer(incoming: Incoming, outputs: list[Output]) -> list[Output]:
    """Every button press gets an answer (Telegram shows a spinner until it does)."""
    if incoming.callback_id and not any(isinstance(o, Toast) for o in outputs):
        return [Toast(""), *outputs]
    return outputs


def _for_another_bot(ctx: Ctx) -> bool:
    """Whether a command names a bot other than us (bot usernames ignore case)."""
    addressee = ctx.incoming.addressee
    ours = ctx.services.config.bot_username
    return addressee is not None and addressee.lower() != ours.lower()


async def route(ctx: Ctx) -> Outcome:
    incoming = ctx.incoming
    who = audience_of(ctx)
    if incoming.callback_data is not None:
        try:
            data = callbacks.unpack(incoming.callback_data)
        except callbacks.BadCallback:
            return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
        callback_route = ROUTES.callbacks.get(type(data))
        if callback_route is None or not (callback_route.audience & who):
            return Outcome([Toast(ctx.t("error.not_for_you"), alert=True)])
        if not incoming.is_private and private_only(callback_route.audience, who):
            return Outcome([Toast(ctx.t("error.private_button"), alert=True)])
        if staff_elsewhere(ctx, callback_route.audience, who):
            return Outcome([Toast(ctx.t("error.staff_button_elsewhere"), alert=True)])
        return await callback_route.handler(ctx, data)

    if incoming.edited:  # never taken as a new answer or command: what was read stands
        if not incoming.is_private:
            return Outcome()
        log.info(
            "update %s: an edited message from %s is not read", incoming.update_id, incoming.user.id
        )
        return Outcome([Screen(ctx.t("dialog.edit_not_read"))])

    command = incoming.command
    if command is not None and not incoming.is_private and _for_another_bot(ctx):
        # A group may have other bots: their commands are neither ours nor an answer.
        log.info(
            "update %s: a command for @%s left alone",
            incoming.update_id,
            str(incoming.addressee)[:QUOTED_CHARS],
        )
        return Outcome()
    if command is not None:
        name, args = command
        if not ctx.actors and name not in OPEN_COMMANDS:
            return Outcome([Screen(ctx.t("bind.unbound"))])
        command_route = ROUTES.commands.get(name)
        if command_route is None:  # quoted short: it may be a long text pasted after a "/"
            log.info("update %s: unknown command /%s", incoming.update_id, name[:QUOTED_CHARS])
            shown = html.escape(limits.clip(name, QUOTED_CHARS))
            return Outcome([Screen(ctx.t("error.unknown_command", command=shown))])
        if not (command_route.audience & who):
            log.info(
                "update %s: /%s refused to user %s", incoming.update_id, name, incoming.user.id
            )
            return Outcome([Screen(ctx.t("error.command_not_for_you", command=html.escape(name)))])
        if not incoming.is_private and private_only(command_route.audience, who):
            log.info("update %s: /%s kept out of a group", incoming.update_id, name)
            bot = html.escape(ctx.services.config.bot_username)
            return Outcome([Screen(ctx.t("error.private_command", command=name, bot=bot))])
        if staff_elsewhere(ctx, command_route.audience, who):
            log.info(
                "update %s: /%s kept out of a group that is not staff's", incoming.update_id, name
            )
            bot = html.escape(ctx.services.config.bot_username)
            return Outcome([Screen(ctx.t("error.staff_command_elsewhere", command=name, bot=bot))])
        return await command_route.handler(ctx, args)

    if not ctx.actors:
        return Outcome([Screen(ctx.t("bind.unbound"))])
    conversation = await ctx.uow.chat.conversation(CHANNEL, incoming.user.id)
    if conversation is not None and conversation.flow in ROUTES.dialogs:
        if asked_here(conversation.data, incoming):
            ctx.memo[_ANSWERED_DIALOG] = True
            return await ROUTES.dialogs[conversation.flow](
                ctx, conversation.step, dict(conversation.data)
            )
        if incoming.is_private:  # the question waits in the staff group: say where
            return Outcome([Screen(ctx.t("dialog.open_elsewhere"))])
        return Outcome()  # talk in another topic (or group) is not the answer
    if not incoming.is_private:
        return Outcome()  # chatter in the staff group that is not for us
    help_route = ROUTES.commands.get("help")
    if help_route is not None and help_route.audience & (who | set(ANYONE)):
        return await help_route.handler(ctx, "")
    return Outcome()
