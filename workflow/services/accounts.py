"""Binding accounts: who a chat user is on the platform, and what they may do.

The first stage of the after-sales process is identity: a chat user is nobody until the
platform vouches for them with a single-use, expiring binding token (only its hash is kept).
Staff roles are granted by admins; the first admins come from configuration.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from workflow.claims import STAFF_ROLES, Actor, Role
from workflow.errors import DomainError, Forbidden, NotFound
from workflow.ports import Binding, UnitOfWork
from workflow.services.common import Env

PARTY_KINDS = ("buyer", "consignor", "staff")
DEFAULT_TTL = timedelta(days=3)


class BindingRefused(DomainError):
    """The token is unknown, expired, or already used (by this user or another)."""

    key = "binding_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def mint_binding(
    uow: UnitOfWork,
    env: Env,
    actor: Actor,
    party_kind: str,
    party_id: int,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """A fresh token for one party; Telegram start parameters allow [A-Za-z0-9_-]{1,64}."""
    if actor.role not in (Role.SYSTEM, Role.ADMIN):
        raise Forbidden("admins only")
    if party_kind == "buyer":
        found: object = await uow.parties.buyer(party_id)
    elif party_kind == "consignor":
        found = await uow.parties.consignor(party_id)
    else:
        raise NotFound("party_kind", party_kind)
    if found is None:
        raise NotFound(party_kind, party_id)
    token = secrets.token_urlsafe(24)
    now = env.clock.now()
    await uow.accounts.add_token(token_hash(token), Binding(party_kind, party_id), now, now + ttl)
    return token


async def redeem_binding(
    uow: UnitOfWork, env: Env, channel: str, external_id: int, token: str
) -> Binding:
    record = await uow.accounts.token(token_hash(token)) if 0 < len(token) <= 64 else None
    if record is None:
        raise BindingRefused("unknown")
    now = env.clock.now()
    if record.used_at is not None:
        raise BindingRefused("already_yours" if record.used_by == external_id else "used")
    if record.expires_at <= now:
        raise BindingRefused("token_expired")
    binding = Binding(record.party_kind, record.party_id)
    await uow.accounts.use_token(record.id, external_id, now)
    await uow.accounts.bind(channel, external_id, binding, now)
    return binding


async def actors_for(uow: UnitOfWork, channel: str, external_id: int) -> list[Actor]:
    """Every role this chat user holds: a person may be a buyer and a consignor at once."""
    actors: list[Actor] = []
    for binding in await uow.accounts.bindings(channel, external_id):
        if binding.party_kind == "staff":
            member = await uow.accounts.staff(binding.party_id)
            if member is not None and member.role in {r.value for r in STAFF_ROLES}:
                actors.append(Actor(Role(member.role), member.id))
        else:
            actors.append(Actor(Role(binding.party_kind), binding.party_id))
    return actors


# A staff member whose role was taken away: their name stays on what they did, they are
# no longer staff (``actors_for``), and staff messages no longer reach their chats.
REVOKED = "revoked"


async def revoke_role(
    uow: UnitOfWork, env: Env, actor: Actor, channel: str, external_id: int
) -> bool:
    """An admin takes a chat user's staff role away (someone who left). False: they were not
    staff. Nobody takes their own role away (there must stay an admin able to grant)."""
    member = await _member_to_change(uow, actor, channel, external_id)
    if member is None:
        return False
    await uow.accounts.set_staff_role(member, REVOKED)
    return True


async def _member_to_change(
    uow: UnitOfWork, actor: Actor, channel: str, external_id: int
) -> int | None:
    """The staff id of the chat user whose role an admin changes (None: not on staff).
    An admin changing their own role may leave nobody able to grant: another admin does."""
    if actor.role not in (Role.ADMIN, Role.SYSTEM):
        raise Forbidden("admins only")
    for existing in await actors_for(uow, channel, external_id):
        if existing.is_staff and existing.party_id is not None:
            if existing.party_id == actor.party_id:
                raise Forbidden("own_role")
            return existing.party_id
    return None


async def grant_role(
    uow: UnitOfWork, env: Env, actor: Actor, channel: str, external_id: int, role: Role, name: str
) -> Actor:
    """An admin makes a chat user staff (or changes their role)."""
    if actor.role not in (Role.ADMIN, Role.SYSTEM):
        raise Forbidden("admins only")
    if role not in STAFF_ROLES:
        raise NotFound("role", role.value)
    existing = await _member_to_change(uow, actor, channel, external_id)
    if existing is not None:
        await uow.accounts.set_staff_role(existing, role.value)
        return Actor(role, existing)
    member = await uow.accounts.add_staff(name[:200] or str(external_id), role.value)
    await uow.accounts.bind(channel, external_id, Binding("staff", member.id), env.clock.now())
    return Actor(role, member.id)
