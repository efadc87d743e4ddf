"""messaging retention: indexes for the purge of inbox rows and idempotency keys past their retention
(shared.migrations, shared.messaging.purge_expired)

Revision ID: 464ecdde31b4
Revises: 7e2c4a9b5d18
Create Date: 2026-12-01 00:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import index_messaging_retention, undo_messaging_retention

revision: str = '464ecdde31b4'
down_revision: str | None = '7e2c4a9b5d18'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_messaging_retention(op)


def downgrade() -> None:
    undo_messaging_retention(op)
