"""Rating a closed case: only its buyer, only once it is closed, 1–5, once."""

from __future__ import annotations

import pytest

from storage.uow import UnitOfWorkFactory
from tests.factories import order, place
from workflow.claims import Actor, ClaimDraft, ClaimType, LineRequest, Reason, Role
from workflow.errors import DomainError, Forbidden, InvalidClaim, NotFound
from workflow.services import filing, ratings, review
from workflow.services.common import Env
from workflow.simulated import ManualClock


async def _claim(uows: UnitOfWorkFactory, env: Env, clock: ManualClock) -> tuple[Actor, int]:
    [placed] = await place(uows, clock.now(), order("RT-1", clock.now(), buyer="RTB"))
    buyer = Actor(Role.BUYER, placed.buyer_id)
    draft = ClaimDraft(
        ClaimType.REFUND_ONLY, Reason.QUALITY_ISSUE, (LineRequest(placed.line_ids[0], 1),)
    )
    async with uows() as uow:
        claim = await filing.file_claim(uow, env, buyer, draft)
        await uow.commit()
    return buyer, claim.id


async def _refused(
    uows: UnitOfWorkFactory, env: Env, actor: Actor, claim_id: int, score: int, comment: str = ""
) -> DomainError:
    async with uows() as uow:
        with pytest.raises(DomainError) as refusal:
            await ratings.rate_claim(uow, env, actor, claim_id, score, comment)
    return refusal.value


async def test_only_the_buyer_rates_their_closed_claim_once(
    uows: UnitOfWorkFactory, env: Env, clock: ManualClock
) -> None:
    buyer, claim_id = await _claim(uows, env, clock)
    refusal = await _refused(uows, env, buyer, claim_id, 5)
    assert isinstance(refusal, InvalidClaim) and refusal.params["reason"] == "not_closed_yet"
    async with uows() as uow:
        await review.withdraw(uow, env, buyer, claim_id, None)
        await uow.commit()
    assert isinstance(await _refused(uows, env, Actor(Role.BUYER, 999), claim_id, 5), NotFound)
    assert isinstance(await _refused(uows, env, Actor(Role.AGENT, 1), claim_id, 5), Forbidden)
    for score in (0, 6):
        refusal = await _refused(uows, env, buyer, claim_id, score)
        assert refusal.params["reason"] == "bad_score"
    refusal = await _refused(uows, env, buyer, claim_id, 3, "x" * (ratings.MAX_COMMENT_CHARS + 1))
    assert refusal.params["reason"] == "comment_too_long"
    async with uows() as uow:
        await ratings.rate_claim(uow, env, buyer, claim_id, 3, "  fine  ")
        await uow.commit()
    refusal = await _refused(uows, env, buyer, claim_id, 5)
    assert refusal.params["reason"] == "already_rated"
    async with uows() as uow:
        assert await uow.claims.rating(claim_id) == (3, "fine")
