"""The buyer's rating of a closed case: 1–5 and an optional comment, once per claim.

A rating is feedback, not a step of the claim: it does not move the claim or its version, so
it has no place in the transition table; it is only possible once the claim has reached a
terminal state (the case is closed for good).
"""

from __future__ import annotations

from workflow import lifecycle
from workflow.claims import MAX_DESCRIPTION_CHARS, Actor, Role
from workflow.errors import Forbidden, InvalidClaim, NotFound
from workflow.ports import UnitOfWork
from workflow.services.common import Env

MIN_SCORE, MAX_SCORE = 1, 5
MAX_COMMENT_CHARS = MAX_DESCRIPTION_CHARS


async def rate_claim(
    uow: UnitOfWork, env: Env, actor: Actor, claim_id: int, score: int, comment: str = ""
) -> None:
    """Record the buyer's rating of their own closed claim; a second rating is refused."""
    if actor.role is not Role.BUYER or actor.party_id is None:
        raise Forbidden("only the buyer rates a claim")
    claim = await uow.claims.get(claim_id, lock=True)
    if claim is None or claim.buyer_id != actor.party_id:
        raise NotFound("claim", claim_id)  # another buyer's claim is not even acknowledged
    if claim.status not in lifecycle.TERMINAL_STATES:
        raise InvalidClaim("not_closed_yet", claim=claim_id)
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise InvalidClaim("bad_score", low=MIN_SCORE, high=MAX_SCORE)
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidClaim("comment_too_long", limit=MAX_COMMENT_CHARS)
    if await uow.claims.rating(claim_id) is not None:
        raise InvalidClaim("already_rated", claim=claim_id)
    await uow.claims.add_rating(claim_id, score, comment, env.clock.now())
