"""messaging retention: indexes for the purge of inbox rows and idempotency keys past their retention
(shared.migrations, shared.messaging.purge_expired)

Revision ID: e90423dfece0
Revises: be274bd74071
Create Date: 2026-12-01 00:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import index_messaging_retention, undo_messaging_retention

revision: str = 'e90423dfece0'
down_revision: str | None = 'be274bd74071'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_messaging_retention(op)


def downgrade() -> None:
    undo_messaging_retention(op)
