"""messaging tables: the outbox, the inbox and the idempotency keys (shared.migrations)

Revision ID: b85b5c3f0d23
Revises:
Create Date: 2026-11-26 10:02:54.322184
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision: str = 'b85b5c3f0d23'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
