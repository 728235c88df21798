"""topic sync state

What a staff-group topic shows (the case version, the card's version, the last evidence
shown) and the retry state of its sync. Topics that exist already are taken to show their
card and evidence (so nothing is posted twice); their name and closing are checked once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claim_topics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("synced_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("card_version", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("evidence_upto", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("sync_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("sync_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_error", sa.Text(), nullable=True))
        batch_op.create_index("ix_claim_topics_open", ["closed", "chat_id"], unique=False)
    op.execute(
        "UPDATE claim_topics SET"
        " card_version = (SELECT c.version FROM claims c WHERE c.id = claim_topics.claim_id),"
        " evidence_upto = COALESCE((SELECT MAX(e.id) FROM claim_evidence e"
        " WHERE e.claim_id = claim_topics.claim_id), 0)"
        " WHERE thread_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("claim_topics", schema=None) as batch_op:
        batch_op.drop_index("ix_claim_topics_open")
        batch_op.drop_column("sync_error")
        batch_op.drop_column("sync_after")
        batch_op.drop_column("sync_attempts")
        batch_op.drop_column("evidence_upto")
        batch_op.drop_column("card_version")
        batch_op.drop_column("synced_version")
