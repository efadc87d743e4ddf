"""outbox queue index: ix_outbox_unpublished becomes (seq) WHERE published_at IS NULL, ix_outbox_published for the
purge; outbox and inbox vacuum on a fixed count of rows on PostgreSQL (shared.migrations)

Revision ID: be274bd74071
Revises: 8a3d5f1c2e47
Create Date: 2026-11-30 21:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import make_outbox_queue_shaped, undo_outbox_queue_shaped

revision: str = 'be274bd74071'
down_revision: str | None = '8a3d5f1c2e47'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    make_outbox_queue_shaped(op)


def downgrade() -> None:
    undo_outbox_queue_shaped(op)
