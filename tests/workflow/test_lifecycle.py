"""The transition table is the lifecycle: everything else is derived from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workflow import lifecycle
from workflow.claims import ClaimType, Role
from workflow.errors import TransitionNotAllowed

ROOT = Path(__file__).resolve().parents[2]


class Row:
    """A bare model row: what the machine needs to fire an event."""

    def __init__(self, status: str, claim_type: ClaimType) -> None:
        self.id = 1
        self.status = status
        self.claim_type = claim_type.value


def test_the_machine_is_built_from_the_table_and_nothing_else() -> None:
    machine = lifecycle.machine()
    assert set(machine.states) == set(lifecycle.STATES)
    table_edges = {(s, step.trigger, step.dest) for step in lifecycle.TABLE for s in step.source}
    machine_edges = {
        (source, trigger, t.dest)
        for trigger, event in machine.events.items()
        for source, ts in event.transitions.items()
        for t in ts
    }
    assert machine_edges == table_edges


def _reachable(claim_type: ClaimType) -> set[str]:
    seen, frontier = {lifecycle.INITIAL}, [lifecycle.INITIAL]
    while frontier:
        state = frontier.pop()
        for step in lifecycle.steps_from(state):
            if claim_type in step.types and step.dest not in seen:
                seen.add(step.dest)
                frontier.append(step.dest)
    return seen


@pytest.mark.parametrize("claim_type", list(ClaimType))
def test_every_reachable_state_can_still_end(claim_type: ClaimType) -> None:
    reachable = _reachable(claim_type)
    assert "closed" in reachable
    for state in reachable - lifecycle.TERMINAL_STATES:
        steps = [s for s in lifecycle.steps_from(state) if claim_type in s.types]
        assert steps, f"{claim_type.value} can get stuck in {state}"


def test_every_state_is_reachable_by_some_claim_type() -> None:
    assert set().union(*(_reachable(c) for c in ClaimType)) == set(lifecycle.STATES)


def test_terminal_states_have_no_way_out() -> None:
    assert {"closed", "rejected", "withdrawn", "expired"} == lifecycle.TERMINAL_STATES
    for state in lifecycle.TERMINAL_STATES:
        for role in Role:
            for ctype in ClaimType:
                assert lifecycle.allowed_triggers(state, ctype, role) == ()


def test_branches_are_per_claim_type() -> None:
    assert lifecycle.allowed_triggers("approved", ClaimType.REFUND_ONLY, Role.SYSTEM) == (
        "start_refund",
    )
    assert lifecycle.allowed_triggers("approved", ClaimType.RETURN_REFUND, Role.SYSTEM) == (
        "issue_waybill",
    )
    assert lifecycle.allowed_triggers("approved", ClaimType.EXCHANGE, Role.SYSTEM) == (
        "ship_replacement",
    )
    row = Row("approved", ClaimType.REFUND_ONLY)
    with pytest.raises(TransitionNotAllowed):
        lifecycle.fire(row, "issue_waybill", Role.SYSTEM)
    assert row.status == "approved"


def test_only_the_roles_in_the_table_may_fire() -> None:
    row = Row("needs_review", ClaimType.RETURN_REFUND)
    for role in (Role.BUYER, Role.CONSIGNOR, Role.SYSTEM, Role.CARRIER):
        with pytest.raises(TransitionNotAllowed):
            lifecycle.fire(row, "approve", role)
    assert lifecycle.fire(row, "approve", Role.AGENT) == ("needs_review", "approved")
    assert row.status == "approved"


def test_buttons_a_buyer_sees_come_from_the_table() -> None:
    assert lifecycle.allowed_triggers("awaiting_return", ClaimType.RETURN_REFUND, Role.BUYER) == (
        "ship_return",
        "withdraw",
    )
    assert (
        lifecycle.allowed_triggers("return_in_transit", ClaimType.RETURN_REFUND, Role.BUYER) == ()
    )


def _state_literals(path: Path) -> list[tuple[int, str]]:
    states = set(lifecycle.STATES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in states:
            found.append((node.lineno, node.value))
    return found


def test_no_module_but_the_table_names_a_state() -> None:
    """States are never written by hand elsewhere: code asks the table (can_fire, sources_of)."""
    offenders = {}
    for package in ("workflow", "storage", "bot"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "lifecycle.py" and path.parent.name == "workflow":
                continue
            if "migrations" in path.parts:  # column names in schema history, not states
                continue
            if literals := _state_literals(path):
                offenders[str(path.relative_to(ROOT))] = literals
    assert offenders == {}
