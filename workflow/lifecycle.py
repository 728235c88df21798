"""THE claim lifecycle: one transition table, and the shared machine built from it.

Every other view of the lifecycle — the ``transitions`` machine, the buttons a party sees, the
flowchart, the list of states and of terminal states — is derived from :data:`TABLE`. Change a
row here and all of them change together; nothing else in the code base lists states or steps.

One :class:`transitions.Machine` is shared by the whole process (``model=None``,
``auto_transitions=False``). A use case fires an event directly on the loaded row for the
duration of one call; no machine or model object is ever held per claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from transitions import EventData, Machine, MachineError

from workflow.claims import STAFF_ROLES, ClaimRecord, ClaimType, Role
from workflow.errors import TransitionNotAllowed

ALL_TYPES = frozenset(ClaimType)
STAFF = STAFF_ROLES
SENIOR_STAFF = frozenset({Role.SUPERVISOR, Role.ADMIN})
SYSTEM = frozenset({Role.SYSTEM})
BUYER = frozenset({Role.BUYER})
CONSIGNOR = frozenset({Role.CONSIGNOR})
CARRIER_OR_SYSTEM = frozenset({Role.CARRIER, Role.SYSTEM})


@dataclass(frozen=True, slots=True)
class Step:
    """One row: from ``source`` the ``trigger`` leads to ``dest``; ``who`` may fire it, for ``types``."""

    source: tuple[str, ...]
    trigger: str
    dest: str
    who: frozenset[Role]
    types: frozenset[ClaimType] = ALL_TYPES


def _row(
    source: str | tuple[str, ...],
    trigger: str,
    dest: str,
    who: Iterable[Role],
    types: Iterable[ClaimType] = ALL_TYPES,
) -> Step:
    return Step(
        source=(source,) if isinstance(source, str) else source,
        trigger=trigger,
        dest=dest,
        who=frozenset(who),
        types=frozenset(types),
    )


INITIAL = "submitted"
_BEFORE_SHIPPING_BACK = (
    "submitted",
    "needs_review",
    "awaiting_info",
    "approved",
    "awaiting_return",
)
_REFUND_ONLY = (ClaimType.REFUND_ONLY,)
_RETURN = (ClaimType.RETURN_REFUND,)
_EXCHANGE = (ClaimType.EXCHANGE,)

TABLE: tuple[Step, ...] = (
    # Platform review: automatic when the rules decide, otherwise a person.
    _row("submitted", "auto_approve", "approved", SYSTEM),
    _row("submitted", "auto_reject", "rejected", SYSTEM),
    _row("submitted", "send_to_review", "needs_review", SYSTEM),
    _row("needs_review", "approve", "approved", STAFF),
    _row("needs_review", "reject", "rejected", STAFF),
    _row("needs_review", "request_info", "awaiting_info", STAFF),
    _row("awaiting_info", "provide_info", "needs_review", BUYER),
    _row("awaiting_info", "info_overdue", "needs_review", SYSTEM),
    _row("awaiting_info", "approve", "approved", STAFF),
    _row("awaiting_info", "reject", "rejected", STAFF),
    # A goodwill partial refund, without a return.
    _row(("needs_review", "awaiting_info"), "grant_goodwill", "refunding", STAFF),
    # Execution, one branch per claim type.
    _row("approved", "start_refund", "refunding", SYSTEM, _REFUND_ONLY),
    _row("approved", "issue_waybill", "awaiting_return", SYSTEM, _RETURN),
    _row("approved", "ship_replacement", "replacement_shipped", SYSTEM | STAFF, _EXCHANGE),
    _row("awaiting_return", "ship_return", "return_in_transit", BUYER | CARRIER_OR_SYSTEM, _RETURN),
    _row("awaiting_return", "expire", "expired", SYSTEM, _RETURN),
    _row(_BEFORE_SHIPPING_BACK, "withdraw", "withdrawn", BUYER),
    _row(
        "return_in_transit", "receive_return", "return_received", CARRIER_OR_SYSTEM | STAFF, _RETURN
    ),
    # Inspection and, for damage, compensation negotiated with the consignor.
    _row("return_received", "inspect", "inspected", STAFF, _RETURN),
    _row("inspected", "refund_intact", "refunding", STAFF, _RETURN),
    _row("inspected", "propose_compensation", "compensation_proposed", STAFF, _RETURN),
    _row("compensation_proposed", "accept_compensation", "refunding", CONSIGNOR, _RETURN),
    _row(
        "compensation_proposed", "dispute_compensation", "compensation_disputed", CONSIGNOR, _RETURN
    ),
    _row(
        "compensation_proposed", "escalate_compensation", "compensation_disputed", SYSTEM, _RETURN
    ),
    _row("compensation_disputed", "resolve_compensation", "refunding", STAFF, _RETURN),
    # Money moves, then the books are settled and the case closes.
    _row("refunding", "refund_succeeded", "refunded", SYSTEM),
    _row("refunded", "settle", "settled", SYSTEM),
    _row(
        "replacement_shipped",
        "deliver_replacement",
        "replacement_delivered",
        CARRIER_OR_SYSTEM,
        _EXCHANGE,
    ),
    _row("replacement_delivered", "settle", "settled", SYSTEM, _EXCHANGE),
    _row("settled", "close", "closed", SYSTEM),
)


def _ordered_unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


STATES: tuple[str, ...] = _ordered_unique(
    [INITIAL, *(s for step in TABLE for s in (*step.source, step.dest))]
)
TRIGGERS: tuple[str, ...] = _ordered_unique(step.trigger for step in TABLE)
TERMINAL_STATES: frozenset[str] = frozenset(
    s for s in STATES if not any(s in step.source for step in TABLE)
)
OPEN_STATES: frozenset[str] = frozenset(STATES) - TERMINAL_STATES


def sources_of(trigger: str) -> tuple[str, ...]:
    """States from which ``trigger`` can fire (for any claim type)."""
    return _ordered_unique(s for step in TABLE if step.trigger == trigger for s in step.source)


# The refund's two states as the table names them: the one ``refund_succeeded`` leaves (the
# money is on its way) and the one it reaches (paid).
REFUND_TRIGGER = "refund_succeeded"
REFUNDING: str = sources_of(REFUND_TRIGGER)[0]
REFUNDED: str = next(step.dest for step in TABLE if step.trigger == REFUND_TRIGGER)


def _waiting_for_staff() -> frozenset[str]:
    """Open states that a staff-only step leaves and no automatic (system/carrier) step does."""
    automatic = CARRIER_OR_SYSTEM
    return frozenset(
        state
        for state in OPEN_STATES
        if any(step.who <= STAFF for step in steps_from(state))
        and not any(step.who & automatic for step in steps_from(state))
    )


def steps_from(state: str) -> tuple[Step, ...]:
    return tuple(step for step in TABLE if state in step.source)


def allowed_triggers(state: str, claim_type: ClaimType | str, role: Role) -> tuple[str, ...]:
    """What ``role`` may fire now: the buttons a party is shown are built from this."""
    ctype = ClaimType(claim_type)
    return _ordered_unique(
        step.trigger for step in steps_from(state) if role in step.who and ctype in step.types
    )


def step_for(state: str, trigger: str, claim_type: ClaimType | str) -> Step | None:
    ctype = ClaimType(claim_type)
    for step in steps_from(state):
        if step.trigger == trigger and ctype in step.types:
            return step
    return None


def _type_allows(types: frozenset[ClaimType]) -> Any:
    def check(event: EventData) -> bool:
        return ClaimType(getattr(event.model, "claim_type")) in types  # noqa: B009

    return check


@cache
def machine() -> Machine:
    """The one shared machine, built from :data:`TABLE` (no per-claim state)."""
    return Machine(
        model=None,
        states=list(STATES),
        transitions=[
            {
                "trigger": step.trigger,
                "source": list(step.source),
                "dest": step.dest,
                "conditions": [_type_allows(step.types)],
            }
            for step in TABLE
        ],
        initial=INITIAL,
        auto_transitions=False,
        model_attribute="status",
        send_event=True,
    )


def can_fire(claim: ClaimRecord, trigger: str, role: Role) -> bool:
    step = step_for(claim.status, trigger, claim.claim_type)
    return step is not None and role in step.who


def fire(claim: ClaimRecord, trigger: str, role: Role) -> tuple[str, str]:
    """Fire ``trigger`` on a loaded claim row as ``role``; return (from, to) or raise.

    The role check is done here, from the table, so no caller can forget it.
    """
    before = claim.status
    step = step_for(before, trigger, claim.claim_type)
    if step is None or role not in step.who:
        raise TransitionNotAllowed(claim.id, before, trigger)
    event = machine().events.get(trigger)
    try:
        moved = event is not None and event.trigger(claim)
    except MachineError as exc:
        raise TransitionNotAllowed(claim.id, before, trigger) from exc
    if not moved:
        raise TransitionNotAllowed(claim.id, before, trigger)
    return before, claim.status


# States in which only a person on staff can move the case: entering one puts it in the queue.
WAITING_FOR_STAFF: frozenset[str] = _waiting_for_staff()
# Ends in which the buyer got nothing: units under such a claim may be claimed again.
DROPPED_STATES: frozenset[str] = TERMINAL_STATES - frozenset(
    step.dest for step in TABLE if step.trigger == "close"
)
