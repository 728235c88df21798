"""The lit flowchart: drawn from the table, the current state lit, the path marked, and every
label drawn in the bundled font (never as missing-glyph boxes).

Claims on each terminal path are played through the real services on real storage; their
flowcharts are kept in ``test-artifacts/flowcharts/`` (zh-CN and en) to be looked at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from bot import i18n
from storage.uow import UnitOfWorkFactory
from tests.factories import Placed, order, place
from workflow import diagram, lifecycle
from workflow.claims import (
    Actor,
    ClaimDraft,
    ClaimType,
    Inspection,
    Liability,
    LineRequest,
    Reason,
    Role,
)
from workflow.services import filing, returns, review, settlement
from workflow.services.backoffice import run_until_quiet
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "flowcharts"
SVG = "{http://www.w3.org/2000/svg}"
STAFF = Actor(Role.AGENT, 1)
# A character the bundled font certainly lacks: what a missing glyph looks like when drawn.
NOT_IN_FONT = "\u2501"


def labeller(lang: str) -> diagram.Label:
    return lambda kind, name: i18n.t(lang, f"{kind}.{name}")


def every_label(lang: str) -> list[str]:
    """Every text the flowchart can draw in ``lang``: states, steps, types, titles."""
    label = labeller(lang)
    texts = [label("state", s) for s in lifecycle.STATES]
    texts += [label("trigger", t) for t in (*lifecycle.TRIGGERS, diagram.ENTRY_TRIGGER)]
    texts += [label("claim_type", c.value) for c in ClaimType]
    texts.append(i18n.t(lang, "diagram.title"))
    texts.append(
        i18n.t(
            lang,
            "diagram.title_claim",
            claim_id=1234567890,
            claim_type=label("claim_type", ClaimType.RETURN_REFUND.value),
            state=label("state", lifecycle.INITIAL),
        )
    )
    return texts


def svg_nodes(svg: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {
        g.findtext(f"{SVG}title") or "": g for g in root.iter(f"{SVG}g") if g.get("class") == "node"
    }


def lit_states(svg: bytes) -> list[str]:
    """States whose box is filled with the lit colour in the drawn SVG."""
    return [
        name
        for name, g in svg_nodes(svg).items()
        if any(shape.get("fill") == diagram.CURRENT_FILL for shape in g)
    ]


def synthetic(claim_type: ClaimType, *steps: str) -> diagram.Trace:
    """A trace that fires ``steps`` from the start, following the table."""
    path, state = [("", diagram.ENTRY_TRIGGER, lifecycle.INITIAL)], lifecycle.INITIAL
    for trigger in steps:
        step = lifecycle.step_for(state, trigger, claim_type)
        assert step is not None, (state, trigger)
        path.append((state, trigger, step.dest))
        state = step.dest
    return diagram.Trace(claim_type, state, tuple(path))


# --- drawn from the table -------------------------------------------------------------------


def test_the_flowchart_has_exactly_the_tables_states_and_steps() -> None:
    agraph = diagram.graph(labeller("en"))
    assert set(agraph.nodes()) == {*lifecycle.STATES, diagram.START_NODE}
    drawn = {(u, key.split(":", 1)[1], v) for u, v, key in agraph.edges(keys=True)}
    table = {(s, step.trigger, step.dest) for step in lifecycle.TABLE for s in step.source}
    assert drawn == {*table, (diagram.START_NODE, diagram.ENTRY_TRIGGER, lifecycle.INITIAL)}


def test_labels_are_in_the_viewers_language() -> None:
    zh = diagram.graph(labeller("zh-CN"))
    assert zh.get_node(lifecycle.INITIAL).attr["label"] == i18n.t("zh-CN", "state.submitted")
    edge = zh.get_edge(lifecycle.INITIAL, "approved", f"{lifecycle.INITIAL}:auto_approve")
    assert edge.attr["label"].strip() == i18n.t("zh-CN", "trigger.auto_approve")
    text = diagram.mermaid(labeller("zh-CN"))
    assert f'state "{i18n.t("zh-CN", "state.closed")}" as closed' in text


def test_without_a_claim_nothing_is_lit_and_every_type_has_its_colour() -> None:
    agraph = diagram.graph(labeller("en"))
    states = [agraph.get_node(s) for s in lifecycle.STATES]
    assert {(n.attr["fillcolor"], n.attr["color"]) for n in states} == {("white", "#555555")}
    colours = {
        agraph.get_edge(u, v, k).attr["color"]
        for u, v, k in agraph.edges(keys=True)
        if k.endswith((":start_refund", ":issue_waybill", ":ship_replacement"))
    }
    assert colours == set(diagram.TYPE_COLOURS.values())


# --- one claim lit --------------------------------------------------------------------------


def test_the_lit_node_is_the_current_state_and_only_it() -> None:
    trace = synthetic(ClaimType.RETURN_REFUND, "auto_approve", "issue_waybill", "ship_return")
    agraph = diagram.graph(labeller("en"), trace)
    lit = [n for n in agraph.nodes() if n.attr["fillcolor"] == diagram.CURRENT_FILL]
    assert lit == ["return_in_transit"]
    assert "bold" in lit[0].attr["style"]
    assert lit_states(diagram.render(labeller("en"), "svg", trace)) == ["return_in_transit"]


def test_the_path_taken_is_marked_and_numbered_in_order() -> None:
    trace = synthetic(
        ClaimType.REFUND_ONLY, "send_to_review", "request_info", "info_overdue", "approve"
    )
    agraph = diagram.graph(labeller("en"), trace)
    marked = {
        k: agraph.get_edge(u, v, k).attr["label"].strip()
        for u, v, k in agraph.edges(keys=True)
        if agraph.get_edge(u, v, k).attr["penwidth"] == "4.5"
    }
    assert marked == {
        f"{diagram.START_NODE}:file": f"1. {i18n.t('en', 'trigger.file')}",
        f"{lifecycle.INITIAL}:send_to_review": f"2. {i18n.t('en', 'trigger.send_to_review')}",
        "needs_review:request_info": f"3. {i18n.t('en', 'trigger.request_info')}",
        "awaiting_info:info_overdue": f"4. {i18n.t('en', 'trigger.info_overdue')}",
        "needs_review:approve": f"5. {i18n.t('en', 'trigger.approve')}",
    }
    # The parallel step the claim did not take (the buyer answering) stays unmarked.
    other = agraph.get_edge("awaiting_info", "needs_review", "awaiting_info:provide_info")
    assert other.attr["penwidth"] != "4.5"


def test_a_step_crossed_twice_carries_both_numbers() -> None:
    trace = synthetic(
        ClaimType.REFUND_ONLY,
        "send_to_review",
        "request_info",
        "provide_info",
        "request_info",
        "provide_info",
    )
    agraph = diagram.graph(labeller("en"), trace)
    edge = agraph.get_edge("needs_review", "awaiting_info", "needs_review:request_info")
    assert edge.attr["label"].strip().startswith("3,5. ")


def test_the_claims_own_branch_is_coloured_and_the_others_faded() -> None:
    trace = synthetic(ClaimType.EXCHANGE, "auto_approve")
    agraph = diagram.graph(labeller("en"), trace)

    def colour(source: str, trigger: str) -> str:
        [(u, v, k)] = [e for e in agraph.edges(keys=True) if e[2] == f"{source}:{trigger}"]
        return str(agraph.get_edge(u, v, k).attr["color"])

    assert colour("approved", "ship_replacement") == diagram.TYPE_COLOURS[ClaimType.EXCHANGE]
    assert (
        colour("replacement_shipped", "deliver_replacement")
        == (diagram.TYPE_COLOURS[ClaimType.EXCHANGE])
    )
    assert colour("approved", "issue_waybill") == (
        diagram.TYPE_COLOURS[ClaimType.RETURN_REFUND] + diagram.FADED
    )
    assert colour("approved", "start_refund") == (
        diagram.TYPE_COLOURS[ClaimType.REFUND_ONLY] + diagram.FADED
    )


def test_mermaid_lights_the_same_state_and_numbers_the_same_steps() -> None:
    trace = synthetic(ClaimType.RETURN_REFUND, "auto_approve", "issue_waybill")
    text = diagram.mermaid(labeller("en"), trace, "Claim #1")
    assert text.startswith("---\ntitle: Claim #1\n---\nstateDiagram-v2\n")
    assert "    class awaiting_return current\n" in text
    assert f"    class {lifecycle.INITIAL},approved visited\n" in text
    assert f"    approved --> awaiting_return: 3. {i18n.t('en', 'trigger.issue_waybill')}\n" in text
    for step in lifecycle.TABLE:
        for source in step.source:
            assert re.search(rf"^    {source} --> {step.dest}: ", text, re.M), step


# --- the font -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_label_has_a_glyph_in_the_bundled_font(lang: str) -> None:
    cmap = TTFont(diagram.FONT_FILE).getBestCmap()
    missing = {c for text in every_label(lang) for c in text if ord(c) not in cmap}
    assert missing == set(), f"run workflow/fonts/subset.py: {sorted(missing)}"
    assert ord(NOT_IN_FONT) not in cmap  # the control below needs a character it lacks


# Runs in a fresh interpreter, so fontconfig starts with the bundled font and nothing else.
# Draws each text as a cairo SVG (glyph outlines embedded, one <use> per glyph drawn) and
# reports, per text, the glyphs drawn and whether asking for another family changed them.
# Pango draws a character no font has as a box holding its hex code: more glyphs than text.
_DRAW_TEXTS = r"""
import json, re, sys
import pygraphviz
from workflow import diagram

def glyphs(text, fontname):
    g = pygraphviz.AGraph()
    g.add_node("n", label=text, fontname=fontname, shape="plaintext")
    with diagram.bundled_fonts():
        svg = g.draw(format="svg:cairo", prog="dot").decode()
    symbols = dict(re.findall(r'<symbol overflow="visible" id="([^"]+)">\s*<path[^>]* d="([^"]*)"', svg))
    return [symbols.get(ref, "") for ref in re.findall(r'xlink:href="#(glyph[^"]+)"', svg)]

report = []
for text in json.loads(sys.stdin.read()):
    ours = glyphs(text, diagram.FONT_FAMILY)
    report.append([len(ours), ours == glyphs(text, "DejaVu Sans")])
print(json.dumps(report))
"""


def test_graphviz_draws_every_label_with_the_bundled_font_and_never_a_box() -> None:
    texts = [t for lang in i18n.LANGUAGES for t in every_label(lang)]
    result = subprocess.run(
        [sys.executable, "-c", _DRAW_TEXTS],
        input=json.dumps([*texts, NOT_IN_FONT]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *per_text, (control_glyphs, _) = json.loads(result.stdout)
    # The control proves the check can fail: a character the font lacks becomes a hex box.
    assert control_glyphs > 1
    for text, (glyphs, same_as_other_family) in zip(texts, per_text, strict=True):
        assert glyphs == len(text), f"{text!r}: {glyphs} glyphs drawn"
        # Asking for another family changes nothing: Graphviz sees the bundled font only.
        assert same_as_other_family, text


def test_the_fontconfig_setting_is_restored_after_a_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FONTCONFIG_FILE", "/somewhere/fonts.conf")
    diagram.render(labeller("en"), "svg")
    assert os.environ["FONTCONFIG_FILE"] == "/somewhere/fonts.conf"


# --- claims on each terminal path, through the services --------------------------------------


class Desk:
    """Plays one claim through the services, with the simulated payment and carrier."""

    def __init__(self, uows: UnitOfWorkFactory, env: Env, clock: ManualClock) -> None:
        self.uows, self.env, self.clock = uows, env, clock
        self.payment = SimulatedPaymentGateway(clock, seed=11)
        self.carrier = SimulatedCarrier(clock, seed=11)

    async def quiet(self, hours: float = 0) -> None:
        await run_until_quiet(self.uows, self.env, self.payment, self.carrier)
        if hours:
            self.clock.advance(timedelta(hours=hours))
            await run_until_quiet(self.uows, self.env, self.payment, self.carrier)

    async def do(self, use_case: Callable[..., Awaitable[object]], *args: object) -> None:
        async with self.uows() as uow:
            await use_case(uow, self.env, *args)
            await uow.commit()

    async def file(self, placed: Placed, ctype: ClaimType, reason: Reason) -> int:
        draft = ClaimDraft(
            ctype, reason, (LineRequest(placed.line_ids[0], 1),), "flowchart test", ("photo-1",)
        )
        async with self.uows() as uow:
            claim = await filing.file_claim(
                uow, self.env, Actor(Role.BUYER, placed.buyer_id), draft
            )
            await uow.commit()
        await self.quiet()
        return claim.id

    async def status(self, claim_id: int) -> str:
        async with self.uows() as uow:
            claim = await uow.claims.get(claim_id)
            assert claim is not None
            return claim.status

    async def approve_if_reviewed(self, claim_id: int) -> None:
        if lifecycle.can_fire(await self._row(claim_id), "approve", STAFF.role):
            await self.do(review.approve, STAFF, claim_id)
            await self.quiet()

    async def _row(self, claim_id: int):  # type: ignore[no-untyped-def]
        async with self.uows() as uow:
            return await uow.claims.get(claim_id)

    async def ship_back(self, claim_id: int) -> None:
        async with self.uows() as uow:
            for shipment in await uow.shipments.for_claim(claim_id):
                self.carrier.hand_over(shipment.tracking_number)
        await self.quiet(hours=49)

    async def inspect(self, claim_id: int, result: Inspection, *extra: object) -> None:
        async with self.uows() as uow:
            lines = {line.id: result for line in await uow.claims.lines(claim_id)}
        await self.do(returns.inspect_return, STAFF, claim_id, None, lines, *extra)


async def refund_only_closed(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.REFUND_ONLY, Reason.NOT_AS_DESCRIBED)
    await desk.approve_if_reviewed(claim_id)
    await desk.quiet(hours=1)
    return claim_id


async def return_intact_closed(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS)
    await desk.ship_back(claim_id)
    await desk.inspect(claim_id, Inspection.INTACT)
    await desk.quiet(hours=1)
    return claim_id


async def damaged_compensation_closed(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS)
    await desk.ship_back(claim_id)
    await desk.inspect(claim_id, Inspection.DAMAGED, Liability.CONSIGNOR, 3_000)
    consignor = Actor(Role.CONSIGNOR, placed.consignor_ids[0])
    await desk.do(returns.accept_compensation, consignor, claim_id, None)
    await desk.quiet(hours=1)
    return claim_id


async def exchange_closed(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.EXCHANGE, Reason.WRONG_ITEM)
    await desk.approve_if_reviewed(claim_id)
    await desk.quiet(hours=49)
    # No sweep settles a delivered exchange yet (nothing sets its settle_due_at): settle it
    # as the back office would.
    await desk.do(lambda uow, env: settlement.settle(uow, env, claim_id))
    return claim_id


async def rejected(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.RETURN_REFUND, Reason.NOT_AS_DESCRIBED)
    await desk.do(review.reject, STAFF, claim_id, None, "Matches the listing photos")
    return claim_id


async def withdrawn(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS)
    await desk.do(review.withdraw, Actor(Role.BUYER, placed.buyer_id), claim_id)
    return claim_id


async def expired(desk: Desk, placed: Placed) -> int:
    claim_id = await desk.file(placed, ClaimType.RETURN_REFUND, Reason.NO_REASON_7_DAYS)
    await desk.quiet(hours=24 * 8)
    return claim_id


PATHS: dict[str, tuple[Callable[[Desk, Placed], Awaitable[int]], str, int]] = {
    # name: (how to play it, where it must end, unit price — above the manual-review bar
    # for the rejected case so a person decides)
    "refund-only": (refund_only_closed, "closed", 10_000),
    "return-intact": (return_intact_closed, "closed", 10_000),
    "damaged-compensation": (damaged_compensation_closed, "closed", 10_000),
    "exchange": (exchange_closed, "closed", 10_000),
    "rejected": (rejected, "rejected", 250_000),
    "withdrawn": (withdrawn, "withdrawn", 10_000),
    "expired": (expired, "expired", 10_000),
}


@pytest.mark.parametrize("path_name", list(PATHS))
async def test_a_claim_on_each_terminal_path_is_drawn_lit_where_it_ended(
    path_name: str, uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    play, end, price = PATHS[path_name]
    [placed] = await place(
        uows, clock.now(), order("F-1", clock.now(), lines=(("SKU-F", "C1", 1, price, 1_000),))
    )
    desk = Desk(uows, env, clock)
    claim_id = await play(desk, placed)
    async with uows() as uow:
        claim = await uow.claims.get(claim_id)
        assert claim is not None
        timeline = await uow.claims.timeline(claim_id)
    assert claim.status == end
    trace = diagram.Trace.of(claim.claim_type, claim.status, timeline)
    assert trace.current == end and trace.path[-1][2] == end

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for lang in i18n.LANGUAGES:
        label = labeller(lang)
        title = i18n.t(
            lang,
            "diagram.title_claim",
            claim_id=claim_id,
            claim_type=label("claim_type", claim.claim_type),
            state=label("state", claim.status),
        )
        png = diagram.render(label, "png", trace, title)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        (ARTIFACTS / f"{path_name}.{lang}.png").write_bytes(png)
        svg = diagram.render(label, "svg", trace, title)
        assert lit_states(svg) == [end]
        # Every step of the timeline is drawn thick, numbered in order.
        texts = [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]
        for number, (_source, trigger, _dest) in enumerate(trace.path, start=1):
            assert any(
                re.match(
                    rf"\s*([\d,]*,)?{number}(,[\d,]*)?\. {re.escape(label('trigger', trigger))}", t
                )
                for t in texts
            ), (number, trigger)
