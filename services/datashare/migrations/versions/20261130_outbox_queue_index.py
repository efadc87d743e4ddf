"""outbox queue index: ix_outbox_unpublished becomes (seq) WHERE published_at IS NULL, ix_outbox_published for the
purge; outbox and inbox vacuum on a fixed count of rows on PostgreSQL (shared.migrations)

Revision ID: 1d9641932ee6
Revises: 7d2c41e9a0b3
Create Date: 2026-11-30 21:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import make_outbox_queue_shaped, undo_outbox_queue_shaped

revision: str = '1d9641932ee6'
down_revision: str | None = '7d2c41e9a0b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    make_outbox_queue_shaped(op)


def downgrade() -> None:
    undo_outbox_queue_shaped(op)
