"""messaging retention: indexes for the purge of inbox rows and idempotency keys past their retention
(shared.migrations, shared.messaging.purge_expired)

Revision ID: 9623dabddd60
Revises: b9ffa9d933b5
Create Date: 2026-12-01 00:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import index_messaging_retention, undo_messaging_retention

revision: str = '9623dabddd60'
down_revision: str | None = 'b9ffa9d933b5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_messaging_retention(op)


def downgrade() -> None:
    undo_messaging_retention(op)
