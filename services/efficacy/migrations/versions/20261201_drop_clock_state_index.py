"""drop ix_clock_state: ix_clock_state_watch_clock begins with the same column (issue #14: one B-tree fewer per
clock write)

Revision ID: 9c4d2b6e8f13
Revises: 5b8e1c0f7a21
Create Date: 2026-12-01 03:45:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '9c4d2b6e8f13'
down_revision: str | None = '5b8e1c0f7a21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_clock_state', table_name='clock')


def downgrade() -> None:
    op.create_index('ix_clock_state', 'clock', ['state'], unique=False)
