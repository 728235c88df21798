"""order events: the orders' audit trail (the overdue sweep flagging an order, and what it did)

Orders the sweep flagged before this revision get their row here, from
``orders.overdue_flagged_at``: "claim opened" if a claim the system filed covers one of the
order's lines, otherwise "claim offered" (the only other thing the sweep did).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORDERS = sa.table(
    "orders", sa.column("id", sa.BigInteger()), sa.column("overdue_flagged_at", sa.DateTime())
)
_ORDER_LINES = sa.table(
    "order_lines", sa.column("id", sa.BigInteger()), sa.column("order_id", sa.BigInteger())
)
_CLAIMS = sa.table("claims", sa.column("id", sa.BigInteger()), sa.column("source", sa.String()))
_CLAIM_LINES = sa.table(
    "claim_lines",
    sa.column("claim_id", sa.BigInteger()),
    sa.column("order_line_id", sa.BigInteger()),
)
_EVENTS = sa.table(
    "order_events",
    sa.column("order_id", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("actor", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("note", sa.Text()),
    sa.column("at", sa.DateTime()),
)


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        sa.UniqueConstraint("order_id", "kind", name=op.f("uq_order_events_order_id_kind")),
    )
    opened = sa.exists().where(
        _CLAIM_LINES.c.claim_id == _CLAIMS.c.id,
        _CLAIM_LINES.c.order_line_id == _ORDER_LINES.c.id,
        _ORDER_LINES.c.order_id == _ORDERS.c.id,
        _CLAIMS.c.source == "system",
    )
    op.get_bind().execute(
        _EVENTS.insert().from_select(
            ["order_id", "kind", "actor", "outcome", "note", "at"],
            sa.select(
                _ORDERS.c.id,
                sa.literal("flagged_overdue"),
                sa.literal("system"),
                sa.case((opened, "claim_opened"), else_="claim_offered"),
                sa.literal("recorded by migration 0011 from orders.overdue_flagged_at"),
                _ORDERS.c.overdue_flagged_at,
            ).where(_ORDERS.c.overdue_flagged_at.is_not(None)),
        )
    )


def downgrade() -> None:
    op.drop_table("order_events")
