"""The lit flowchart: the whole lifecycle drawn from :data:`workflow.lifecycle.TABLE`.

A throwaway ``transitions`` GraphMachine is built per render from the one table (the
production machine never carries graphs), then styled for one claim:

* the current state is *lit* (filled amber, bold red border);
* the path the claim took — read from its audit timeline — is drawn thick and numbered;
* each claim type's branch (steps whose ``types`` is a strict subset of all types) has its
  colour; the claim's own type is drawn in full, the others faded.

Labels come from a ``label(kind, name)`` callable (kinds ``state``, ``trigger`` and
``claim_type``), so the picture speaks the viewer's language without this module knowing
any texts. Graphviz is pointed at the bundled subset font (``workflow/fonts``): a fresh
machine draws Chinese, not boxes. PNG and SVG come from Graphviz; Mermaid text
(``stateDiagram-v2``) is generated from the same table for places that render Markdown.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from workflow import lifecycle
from workflow.claims import ClaimType

Label = Callable[[str, str], str]
Format = Literal["png", "svg"]
FORMATS: tuple[str, ...] = ("png", "svg", "mermaid")

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_FILE = FONT_DIR / "AftersalesSansCJK-Regular.otf"
FONT_FAMILY = "Aftersales Sans CJK"
# The filing step happens before the claim exists as a row; it has no line in the table.
ENTRY_TRIGGER = "file"
START_NODE = "__start__"

CURRENT_FILL, CURRENT_BORDER = "#ffd54f", "#c62828"
VISITED_FILL, VISITED_BORDER = "#dcecfb", "#1f4e79"
PLAIN_EDGE, PATH_EDGE = "#8c8c8c", "#1f4e79"
TYPE_COLOURS: dict[ClaimType, str] = {
    ClaimType.REFUND_ONLY: "#1e88e5",
    ClaimType.RETURN_REFUND: "#e65100",
    ClaimType.EXCHANGE: "#8e24aa",
}
FADED = "55"  # alpha appended to another type's colour when a claim is shown


class _Event(Protocol):
    @property
    def from_status(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def to_status(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Trace:
    """Where one claim stands and how it got there: what the flowchart lights up."""

    claim_type: ClaimType
    current: str
    path: tuple[tuple[str, str, str], ...] = ()  # (from, trigger, to), in order

    @classmethod
    def of(cls, claim_type: ClaimType | str, current: str, timeline: Iterable[_Event]) -> Trace:
        """From a claim row's type and status and its audit timeline (``uow.claims.timeline``)."""
        return cls(
            ClaimType(claim_type),
            current,
            tuple((e.from_status or "", e.trigger, e.to_status) for e in timeline),
        )


def _branch_colour(step: lifecycle.Step | None, trace: Trace | None) -> tuple[str, bool] | None:
    """(colour, faded) for a step on some claim types' branch only; None for a common step."""
    if step is None or step.types >= lifecycle.ALL_TYPES:
        return None
    if trace is not None and trace.claim_type in step.types:
        return TYPE_COLOURS[trace.claim_type], False
    first = next(c for c in ClaimType if c in step.types)
    return TYPE_COLOURS[first], trace is not None


def _edge_key(source: str, trigger: str) -> str:
    return f"{source}:{trigger}"


def _throwaway_machine() -> Any:
    from transitions.extensions import GraphMachine

    class FlowchartMachine(GraphMachine):
        # GraphMachine passes strict="false", which pygraphviz reads as true: parallel
        # steps between two states (a claim took exactly one of them) need a multigraph.
        machine_attributes = cast(
            dict[str, str], {"directed": True, "strict": False, "rankdir": "TB"}
        )

    return FlowchartMachine(
        states=list(lifecycle.STATES),
        transitions=[
            {"trigger": step.trigger, "source": list(step.source), "dest": step.dest}
            for step in lifecycle.TABLE
        ],
        initial=lifecycle.INITIAL,
        auto_transitions=False,
        graph_engine="pygraphviz",
        show_conditions=False,
        title="",
    )


def graph(label: Label, trace: Trace | None = None, title: str | None = None) -> Any:
    """The styled ``pygraphviz.AGraph`` of the whole lifecycle (``trace`` lights one claim)."""
    agraph = _throwaway_machine().get_graph()
    _split_merged_edges(agraph)
    agraph.graph_attr.update(
        rankdir="TB",
        nodesep="0.35",
        ranksep="0.45",
        fontname=FONT_FAMILY,
        fontsize="16",
        labelloc="t",
        bgcolor="white",
        pad="0.3",
    )
    agraph.node_attr.update(
        fontname=FONT_FAMILY,
        fontsize="13",
        shape="box",
        style="rounded,filled",
        fillcolor="white",
        color="#555555",
        penwidth="1.2",
        margin="0.18,0.06",
    )
    agraph.edge_attr.update(fontname=FONT_FAMILY, fontsize="10", arrowsize="0.7")
    taken = _path_edges(trace)
    visited = {s for (a, _, b) in trace.path for s in (a, b) if s} if trace else set()
    for state in lifecycle.STATES:
        node = agraph.get_node(state)
        node.attr["label"] = label("state", state)
        # Ends are drawn doubled; GraphMachine's own "active" styling of the initial state is
        # not ours (no claim lives in the throwaway machine), so it is reset here.
        node.attr.update(
            peripheries="2" if state in lifecycle.TERMINAL_STATES else "1",
            fillcolor="white",
            color="#555555",
            penwidth="1.2",
            style="rounded,filled",
        )
        if trace is not None and state == trace.current:
            node.attr.update(
                fillcolor=CURRENT_FILL,
                color=CURRENT_BORDER,
                penwidth="3.5",
                style="rounded,filled,bold",
            )
        elif state in visited:
            node.attr.update(fillcolor=VISITED_FILL, color=VISITED_BORDER, penwidth="2")
    agraph.add_node(
        START_NODE,
        shape="circle",
        label="",
        width="0.22",
        style="filled",
        fillcolor="black",
        color="black",
    )
    agraph.add_edge(START_NODE, lifecycle.INITIAL, key=_edge_key(START_NODE, ENTRY_TRIGGER))
    for source, dest, key in agraph.edges(keys=True):
        _style_edge(agraph.get_edge(source, dest, key), source, key, label, trace, taken)
    agraph.graph_attr["label"] = _caption(label, trace, title)
    return agraph


def _split_merged_edges(agraph: Any) -> None:
    """GraphMachine merges steps between the same two states into one edge ("a | b").

    The flowchart needs one edge per step (a claim took exactly one of them), keyed
    ``source:trigger`` so styling can find each step again.
    """
    for edge in list(agraph.edges()):
        agraph.delete_edge(edge)
    for step in lifecycle.TABLE:
        for source in step.source:
            agraph.add_edge(source, step.dest, key=_edge_key(source, step.trigger))


def _path_edges(trace: Trace | None) -> dict[str, list[int]]:
    """Edge key → the step numbers (1-based) at which the claim crossed it."""
    taken: dict[str, list[int]] = {}
    if trace is None:
        return taken
    for number, (source, trigger, _dest) in enumerate(trace.path, start=1):
        key = _edge_key(source or START_NODE, trigger)
        taken.setdefault(key, []).append(number)
    return taken


def _style_edge(
    edge: Any,
    source: str,
    key: str,
    label: Label,
    trace: Trace | None,
    taken: dict[str, list[int]],
) -> None:
    trigger = key.split(":", 1)[1]
    step = next((s for s in lifecycle.TABLE if s.trigger == trigger and source in s.source), None)
    branch = _branch_colour(step, trace)
    colour = PLAIN_EDGE
    attrs: dict[str, str] = {"penwidth": "1.2"}
    if branch is not None:
        colour, faded = branch
        if faded:
            colour += FADED
        else:
            attrs["penwidth"] = "2.2"
    if step is not None and step.dest in lifecycle.DROPPED_STATES:
        attrs["style"] = "dashed"  # the case ends without an outcome for the buyer
    text = label("trigger", trigger)
    numbers = taken.get(key)
    if numbers:
        if branch is None:
            colour = PATH_EDGE
        attrs.update(penwidth="4.5", style="bold", fontcolor=colour[:7])
        text = f"{','.join(map(str, numbers))}. {text}"
    elif trace is not None:
        attrs["fontcolor"] = "#888888" if branch is None else colour[:7] + FADED
    else:
        attrs["fontcolor"] = "#444444" if branch is None else colour
    attrs.update(color=colour, label=f" {text} ")
    edge.attr.update(attrs)


def _caption(label: Label, trace: Trace | None, title: str | None) -> str:
    """An HTML-like caption: the title, then one coloured word per claim type (the legend)."""
    legend = "  ".join(
        f'<font color="{TYPE_COLOURS[ctype]}">● {escape(label("claim_type", ctype.value))}</font>'
        for ctype in ClaimType
    )
    head = escape(title) + "<br/>" if title else ""
    return f"<{head}{legend}<br/> >"


@cache
def _fontconfig_file() -> str:
    """A fontconfig file that sees a copy of the bundled font and nothing else.

    A copy in a private folder, because fontconfig writes cache and ``.uuid`` files next to
    the fonts it scans, and the package folder may be read-only.
    """
    folder = Path(tempfile.mkdtemp(prefix="aftersales-fonts-"))
    fonts = folder / "fonts"
    fonts.mkdir()
    shutil.copy2(FONT_FILE, fonts / FONT_FILE.name)
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f"  <dir>{escape(str(fonts))}</dir>\n"
        f"  <cachedir>{escape(str(folder / 'cache'))}</cachedir>\n"
        "</fontconfig>\n",
        encoding="utf-8",
    )
    return str(conf)


@contextmanager
def bundled_fonts() -> Iterator[str]:
    """Point Graphviz's fontconfig at the bundled font for the duration of a render.

    Fontconfig reads ``FONTCONFIG_FILE`` when it first starts in the process (the first
    render), so every render goes through here; the variable is restored afterwards.
    """
    conf = _fontconfig_file()
    before = os.environ.get("FONTCONFIG_FILE")
    os.environ["FONTCONFIG_FILE"] = conf
    try:
        yield conf
    finally:
        if before is None:
            os.environ.pop("FONTCONFIG_FILE", None)
        else:
            os.environ["FONTCONFIG_FILE"] = before


def render(
    label: Label, fmt: Format, trace: Trace | None = None, title: str | None = None
) -> bytes:
    """PNG or SVG bytes of the flowchart."""
    agraph = graph(label, trace, title)
    with bundled_fonts():
        data: bytes = agraph.draw(format=fmt, prog="dot")
    return data


def mermaid(label: Label, trace: Trace | None = None, title: str | None = None) -> str:
    """The same flowchart as Mermaid ``stateDiagram-v2`` text.

    Mermaid cannot colour a state diagram's edges, so here the lit state and the visited
    states are classes and the steps the claim took are numbered.
    """
    taken = _path_edges(trace)
    lines = ["---", f"title: {_mermaid_text(title)}", "---"] if title else []
    lines += ["stateDiagram-v2", "    direction TB"]
    for state in lifecycle.STATES:
        lines.append(f'    state "{_mermaid_text(label("state", state))}" as {state}')
    entry = _numbered(
        taken.get(_edge_key(START_NODE, ENTRY_TRIGGER)), label("trigger", ENTRY_TRIGGER)
    )
    lines.append(f"    [*] --> {lifecycle.INITIAL}: {_mermaid_text(entry)}")
    for step in lifecycle.TABLE:
        for source in step.source:
            text = _numbered(
                taken.get(_edge_key(source, step.trigger)), label("trigger", step.trigger)
            )
            lines.append(f"    {source} --> {step.dest}: {_mermaid_text(text)}")
    for state in sorted(lifecycle.TERMINAL_STATES, key=lifecycle.STATES.index):
        lines.append(f"    {state} --> [*]")
    if trace is not None:
        visited = [
            s
            for s in lifecycle.STATES
            if s != trace.current and any(s in (a, b) for (a, _, b) in trace.path)
        ]
        lines.append(
            f"    classDef current fill:{CURRENT_FILL},stroke:{CURRENT_BORDER},stroke-width:4px"
        )
        lines.append(
            f"    classDef visited fill:{VISITED_FILL},stroke:{VISITED_BORDER},stroke-width:2px"
        )
        if visited:
            lines.append(f"    class {','.join(visited)} visited")
        lines.append(f"    class {trace.current} current")
    return "\n".join(lines) + "\n"


def _numbered(numbers: Sequence[int] | None, text: str) -> str:
    return f"{','.join(map(str, numbers))}. {text}" if numbers else text


def _mermaid_text(text: str) -> str:
    """Mermaid entity codes for the characters its grammar reserves in labels."""
    for char, code in ((":", "#58;"), (";", "#59;"), ('"', "#quot;"), ("\n", " ")):
        text = text.replace(char, code)
    return text
