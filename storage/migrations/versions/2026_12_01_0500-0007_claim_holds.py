"""claim holds: who on staff held a case, one row per change of holder

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "claim_holds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("claim_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "previous_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["claims.id"], name=op.f("fk_claim_holds_claim_id_claims")
        ),
        sa.ForeignKeyConstraint(
            ["previous_id"], ["staff.id"], name=op.f("fk_claim_holds_previous_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_claim_holds_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_holds")),
    )
    with op.batch_alter_table("claim_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_holds_claim_id"), ["claim_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("claim_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_holds_claim_id"))
    op.drop_table("claim_holds")
