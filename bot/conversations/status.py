"""``/status N`` and the card's "Flowchart" button: where a claim stands, as a picture.

Any party of a claim — its buyer, a consignor of its items, staff — gets the lifecycle
flowchart drawn by :mod:`workflow.diagram` for that claim: the current state lit, the path
the claim took numbered, its type's branch coloured, every label in the viewer's language.
Whose claim it is decides as everywhere else (``cards.view_for_user``): a claim that is not
theirs, or does not exist, is "not found", and nothing about it is drawn.

Graphviz lays the chart out in ~0.1–0.5 s. The drawing runs after the update's transaction
(``Later``: the database is not held meanwhile) in a worker thread so the event loop keeps
serving other updates (pygraphviz holds the GIL inside Graphviz's layout, so the loop still
pauses for that part), one drawing at a time: Graphviz's C library is not
safe to call from two threads at once, and :func:`workflow.diagram.bundled_fonts` sets a
process-wide environment variable for the length of a render.
"""

from __future__ import annotations

import asyncio
import threading

from bot.conversations.callbacks import ClaimFlowchart
from bot.conversations.cards import view_for_user
from bot.conversations.claim_dialog import as_id
from bot.conversations.context import Ctx, Translate
from bot.conversations.model import Later, Outcome, Output, Screen, Toast
from bot.conversations.routes import BUYERS, CONSIGNORS, ROUTES, STAFF
from workflow import diagram

# Everyone who can be a party of a claim; which claims they may see is checked per claim.
PARTIES = BUYERS | CONSIGNORS | STAFF

_drawing = threading.Lock()


def _draw(translate: Translate, lang: str, trace: diagram.Trace, title: str) -> bytes:
    """PNG bytes of the lit flowchart (called in a worker thread)."""

    def label(kind: str, name: str) -> str:
        return translate(lang, f"{kind}.{name}")

    with _drawing:
        return diagram.render(label, "png", trace, title)


async def flowchart(ctx: Ctx, claim_id: int) -> Later:
    """The photo of one claim's flowchart with a short caption (another's claim: not found),
    drawn after the update's transaction: the claim is read now, the picture made later."""
    view = await view_for_user(ctx, claim_id)
    claim = view.claim
    trace = diagram.Trace.of(claim.claim_type, claim.status, view.timeline)
    words = {
        "number": claim.id,
        "claim_type": ctx.t(f"claim_type.{claim.claim_type}"),
        "state": ctx.t(f"state.{claim.status}"),
    }
    translate, lang = ctx.services.translate, ctx.lang
    title, caption = ctx.t("status.title", **words), ctx.t("status.caption", **words)

    async def draw() -> list[Output]:
        png = await asyncio.to_thread(_draw, translate, lang, trace, title)
        return [Screen(caption, photo=png)]

    return Later(draw)


@ROUTES.command("status", PARTIES)
async def status(ctx: Ctx, args: str) -> Outcome:
    number = as_id(args)
    if number is None:
        return ctx.usage("status.usage")
    return Outcome([await flowchart(ctx, number)])


@ROUTES.callback(ClaimFlowchart, PARTIES)
async def flowchart_pressed(ctx: Ctx, data: ClaimFlowchart) -> Outcome:
    if as_id(str(data.claim_id)) is None:  # forged: no claim has such a number
        return Outcome([Toast(ctx.t("error.bad_button"), alert=True)])
    return Outcome([await flowchart(ctx, data.claim_id)])
