"""Typed domain errors.

Each carries a message key (``error.<key>`` in the bot's locales) and the parameters a front
end needs to turn it into one clear sentence in the user's language, so no caller ever has to
parse an exception's text.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the core can give; never a bug, always something to tell a user."""

    key = "domain_error"

    def __init__(self, **params: Any) -> None:
        self.params = params
        super().__init__(f"{self.key}: {params}" if params else self.key)


class NotFound(DomainError):
    key = "not_found"

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(what=what, ident=str(ident))


class Forbidden(DomainError):
    """The actor may not do this: wrong role, or not their order / claim / item."""

    key = "forbidden"

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


class AlreadyHandled(DomainError):
    """Someone (or something) changed the claim first: the button or request is out of date."""

    key = "already_handled"

    def __init__(
        self, claim_id: int | None = None, expected: int | None = None, actual: int | None = None
    ) -> None:
        super().__init__(claim_id=claim_id, expected=expected, actual=actual)


class TransitionNotAllowed(DomainError):
    """The claim's state has no such step, or not for this claim type."""

    key = "transition_not_allowed"

    def __init__(self, claim_id: int, state: str, trigger: str) -> None:
        super().__init__(claim_id=claim_id, state=state, trigger=trigger)


class InvalidClaim(DomainError):
    """A claim being filed does not hold together (lines, quantities, orders, texts)."""

    key = "invalid_claim"

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason=reason, **params)


class InvalidAmount(DomainError):
    key = "invalid_amount"

    def __init__(self, value: str) -> None:
        super().__init__(value=value)


class CurrencyMismatch(DomainError):
    key = "currency_mismatch"

    def __init__(self, left: str, right: str) -> None:
        super().__init__(left=left, right=right)


class RefundCeilingExceeded(DomainError):
    """A refund would pay back more than the order's paid amount minus earlier refunds."""

    key = "refund_ceiling"

    def __init__(self, order_id: int, requested: int, available: int) -> None:
        super().__init__(order_id=order_id, requested=requested, available=available)
