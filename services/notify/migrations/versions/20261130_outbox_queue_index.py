"""outbox queue index: ix_outbox_unpublished becomes (seq) WHERE published_at IS NULL, ix_outbox_published for the
purge; outbox and inbox vacuum on a fixed count of rows on PostgreSQL (shared.migrations)

Revision ID: 3f5d1ce0df34
Revises: b2624fa40266
Create Date: 2026-11-30 21:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import make_outbox_queue_shaped, undo_outbox_queue_shaped

revision: str = '3f5d1ce0df34'
down_revision: str | None = 'b2624fa40266'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    make_outbox_queue_shaped(op)


def downgrade() -> None:
    undo_outbox_queue_shaped(op)
