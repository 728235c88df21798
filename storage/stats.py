"""The dashboard's aggregate queries: :class:`workflow.ports.StatsRepository` in SQL.

Every question is one GROUP BY (or one scan with conditional sums) that returns a row per
group, so the dashboard over 100,000 claims costs a few index or table scans in the database
and a few hundred rows in Python. Days are UTC days on both engines; durations are whole
minutes (``julianday`` on SQLite, ``epoch`` arithmetic on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Executable, Integer, Result, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storage import tables as t
from storage.sqlite_inline import OFF_LOOP
from workflow.claims import RefundStatus, ShippingState
from workflow.ports import StatsRepository
from workflow.stats import ClaimRow, DurationBucket, ReturnRate, SlaRule, StageCount

DEADLINES: dict[str, Any] = {
    "review_due_at": t.Claim.review_due_at,
    "info_due_at": t.Claim.info_due_at,
    "return_by": t.Claim.return_by,
    "respond_by": t.Claim.respond_by,
    "settle_due_at": t.Claim.settle_due_at,
}


def _as_date(value: object) -> date:
    """SQLite's ``date()`` gives 'YYYY-MM-DD'; PostgreSQL gives a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class SqlStats:
    """Answers the dashboard's questions over one session (its own, or a unit of work's)."""

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def _run(self, stmt: Executable) -> Result[Any]:
        """Aggregates over every claim can take a while: on SQLite, off the event loop."""
        return await self.s.execute(stmt, execution_options=OFF_LOOP)

    @property
    def _postgres(self) -> bool:
        return self.s.bind.dialect.name == "postgresql"

    def _utc_day(self, column: Any) -> ColumnElement[Any]:
        if self._postgres:
            return func.date(func.timezone("UTC", column))
        return func.date(column)  # stored as naive UTC text on SQLite

    def _minutes(self, start: Any, end: Any) -> ColumnElement[Any]:
        if self._postgres:
            return cast(func.floor(func.extract("epoch", end - start) / 60), Integer)
        # julianday is in days; round to the millisecond before flooring to whole minutes.
        return cast(
            func.round((func.julianday(end) - func.julianday(start)) * 86_400_000) / 60_000,
            Integer,
        )

    async def open_claims(self, states: Sequence[str]) -> Sequence[StageCount]:
        stmt = (
            select(t.Claim.status, t.Claim.claim_type, func.count())
            .where(t.Claim.status.in_(states))
            .group_by(t.Claim.status, t.Claim.claim_type)
        )
        rows = (await self._run(stmt)).all()
        order = {s: i for i, s in enumerate(states)}
        found = [StageCount(state, claim_type, int(n)) for state, claim_type, n in rows]
        return sorted(found, key=lambda c: (order.get(c.state, len(order)), c.claim_type))

    async def _per_day(self, column: Any, since: datetime, *where: Any) -> Mapping[date, int]:
        day = self._utc_day(column).label("day")
        stmt = select(day, func.count()).where(column >= since, *where).group_by(day)
        return {_as_date(d): int(n) for d, n in (await self._run(stmt)).all()}

    async def opened_per_day(self, since: datetime) -> Mapping[date, int]:
        return await self._per_day(t.Claim.created_at, since)

    async def resolved_per_day(self, since: datetime, states: Sequence[str]) -> Mapping[date, int]:
        return await self._per_day(t.Claim.closed_at, since, t.Claim.status.in_(states))

    async def resolution_histogram(self, states: Sequence[str]) -> Sequence[DurationBucket]:
        minutes = self._minutes(t.Claim.created_at, t.Claim.closed_at).label("minutes")
        stmt = (
            select(t.Claim.claim_type, minutes, func.count())
            .where(t.Claim.status.in_(states), t.Claim.closed_at.is_not(None))
            .group_by(t.Claim.claim_type, minutes)
        )
        return [
            DurationBucket(claim_type, max(int(m), 0), int(n))
            for claim_type, m, n in (await self._run(stmt)).all()
        ]

    async def return_rates(
        self, by: Literal["consignor", "category"], claim_type: str, dropped: Sequence[str]
    ) -> Sequence[ReturnRate]:
        group: Any = t.Item.consignor_id if by == "consignor" else t.Item.category
        sold = (
            select(group.label("key"), func.sum(t.OrderLine.quantity).label("units"))
            .select_from(t.OrderLine)
            .join(t.Item, t.Item.id == t.OrderLine.item_id)
            .group_by(group)
            .subquery()
        )
        returned = (
            select(
                group.label("key"),
                func.sum(t.ClaimLine.quantity).label("units"),
                func.count(func.distinct(t.Claim.id)).label("claims"),
            )
            .select_from(t.ClaimLine)
            .join(t.Claim, t.Claim.id == t.ClaimLine.claim_id)
            .join(t.OrderLine, t.OrderLine.id == t.ClaimLine.order_line_id)
            .join(t.Item, t.Item.id == t.OrderLine.item_id)
            .where(t.Claim.claim_type == claim_type, t.Claim.status.not_in(dropped))
            .group_by(group)
            .subquery()
        )
        returned_units = func.coalesce(returned.c.units, 0)
        returned_claims = func.coalesce(returned.c.claims, 0)
        if by == "consignor":
            stmt = (
                select(
                    t.Consignor.external_ref,
                    t.Consignor.name,
                    sold.c.units,
                    returned_units,
                    returned_claims,
                )
                .select_from(sold)
                .join(t.Consignor, t.Consignor.id == sold.c.key)
                .outerjoin(returned, returned.c.key == sold.c.key)
                .order_by(t.Consignor.external_ref)
            )
        else:
            stmt = (
                select(sold.c.key, sold.c.key, sold.c.units, returned_units, returned_claims)
                .select_from(sold)
                .outerjoin(returned, returned.c.key == sold.c.key)
                .order_by(sold.c.key)
            )
        return [
            ReturnRate(str(key), str(name), int(units), int(back), int(claims))
            for key, name, units, back, claims in (await self._run(stmt)).all()
        ]

    async def reason_counts(self) -> Mapping[str, int]:
        stmt = select(t.Claim.reason, func.count()).group_by(t.Claim.reason)
        return {reason: int(n) for reason, n in (await self._run(stmt)).all()}

    async def refunded_by_reason(self) -> Sequence[tuple[str, str, int]]:
        stmt = (
            select(t.Claim.reason, t.Refund.currency, func.sum(t.Refund.amount))
            .join(t.Claim, t.Claim.id == t.Refund.claim_id)
            .where(t.Refund.status == RefundStatus.SUCCEEDED.value)
            .group_by(t.Claim.reason, t.Refund.currency)
            .order_by(t.Claim.reason, t.Refund.currency)
        )
        return [
            (reason, currency, int(amount))
            for reason, currency, amount in (await self._run(stmt)).all()
        ]

    async def breaches(self, rules: Sequence[SlaRule], now: datetime) -> Mapping[str, int]:
        """One scan over the claims in any rule's states, one conditional sum per rule."""
        if not rules:
            return {}
        sums = [
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(t.Claim.status.in_(rule.states), DEADLINES[rule.deadline] < now),
                            1,
                        ),
                        else_=0,
                    )
                ),
                literal(0),
            )
            for rule in rules
        ]
        every_state = sorted({s for rule in rules for s in rule.states})
        row = (await self._run(select(*sums).where(t.Claim.status.in_(every_state)))).one()
        return {rule.kind: int(n) for rule, n in zip(rules, row, strict=True)}

    async def overdue_shipments(self, now: datetime) -> int:
        stmt = select(func.count()).where(
            t.Order.shipping_state == ShippingState.PENDING.value, t.Order.ship_by < now
        )
        return int((await self._run(stmt)).scalar_one())

    async def claim_rows(self, batch: int = 1000) -> AsyncIterator[ClaimRow]:
        """Keyset pages by id: each page is one query, whatever the table's size."""
        refunded = (
            select(t.Refund.claim_id, func.sum(t.Refund.amount).label("amount"))
            .where(t.Refund.status == RefundStatus.SUCCEEDED.value)
            .group_by(t.Refund.claim_id)
            .subquery()
        )
        c = t.Claim
        after = 0
        while True:
            stmt = (
                select(
                    c.id,
                    c.status,
                    c.claim_type,
                    c.reason,
                    c.source,
                    c.liability,
                    c.currency,
                    c.claimed_amount,
                    c.refund_amount,
                    c.compensation_amount,
                    func.coalesce(refunded.c.amount, 0),
                    c.created_at,
                    c.updated_at,
                    c.closed_at,
                )
                .outerjoin(refunded, refunded.c.claim_id == c.id)
                .where(c.id > after)
                .order_by(c.id)
                .limit(batch)
            )
            rows = (await self._run(stmt)).all()
            for r in rows:
                yield ClaimRow(
                    id=r[0],
                    status=r[1],
                    claim_type=r[2],
                    reason=r[3],
                    source=r[4],
                    liability=r[5],
                    currency=r[6],
                    claimed_amount=r[7],
                    refund_amount=r[8],
                    compensation_amount=r[9],
                    refunded=int(r[10]),
                    created_at=r[11],
                    updated_at=r[12],
                    closed_at=r[13],
                )
            if len(rows) < batch:
                return
            after = rows[-1][0]


def _satisfies_the_port(stats: SqlStats) -> StatsRepository:
    """Never called: makes mypy prove the SQL statistics implement the domain's port."""
    return stats
