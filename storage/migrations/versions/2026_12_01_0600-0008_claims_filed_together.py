"""claims filed together: the first claim of a filing split by consignor

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filing_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_claims_filing_id"), ["filing_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claims_filing_id"))
        batch_op.drop_column("filing_id")
