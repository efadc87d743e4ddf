"""messaging tables: the outbox, the inbox and the idempotency keys (shared.migrations)

Revision ID: 66f3a82b2416
Revises:
Create Date: 2026-11-26 10:03:00.318583
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision: str = '66f3a82b2416'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
