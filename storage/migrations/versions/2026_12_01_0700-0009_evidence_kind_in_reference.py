"""evidence references say their kind: photo:<file_id> or document:<file_id>

Until now the kind was read back from the Bot API file id (its first byte in Telegram's
own layout), which the Bot API calls opaque. References stored before are given their kind
here, once, by that same reading; from now on the bot notes the kind when the file arrives.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 07:00:00.000000
"""

import base64
import binascii
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVIDENCE = sa.table(
    "claim_evidence", sa.column("id", sa.BigInteger()), sa.column("ref", sa.String(300))
)
_NOTED = sa.or_(_EVIDENCE.c.ref.like("photo:%"), _EVIDENCE.c.ref.like("document:%"))
_BATCH = 1000


def _kind(file_id: str) -> str:
    """TDLib's persistent file id: URL-safe base64 of a record whose first byte is the file
    type (2: photo, 5: document). Anything unreadable was shown as a photo before, too."""
    try:
        head = base64.urlsafe_b64decode(file_id[:4])
    except (binascii.Error, ValueError):
        return "photo"
    return "document" if head[:1] == b"\x05" else "photo"


def upgrade() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(_EVIDENCE.c.id, _EVIDENCE.c.ref)
            .where(_EVIDENCE.c.id > after, sa.not_(_NOTED))
            .order_by(_EVIDENCE.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            bind.execute(
                sa.update(_EVIDENCE)
                .where(_EVIDENCE.c.id == row.id)
                .values(ref=f"{_kind(row.ref)}:{row.ref}")
            )
        after = rows[-1].id


def downgrade() -> None:
    bind = op.get_bind()
    for kind in ("photo", "document"):
        bind.execute(
            sa.update(_EVIDENCE)
            .where(_EVIDENCE.c.ref.like(f"{kind}:%"))
            .values(ref=sa.func.substr(_EVIDENCE.c.ref, len(kind) + 2))
        )
