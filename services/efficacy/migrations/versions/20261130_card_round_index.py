"""the card round's index in its read order: (state, watch_on, clock_id) instead of (state, watch_on)

Revision ID: 7e2c4a9b5d18
Revises: d639b3af9490
Create Date: 2026-11-30 23:45:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '7e2c4a9b5d18'
down_revision: str | None = 'd639b3af9490'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('clock', schema=None) as batch_op:
        batch_op.drop_index('ix_clock_state_watch')
        batch_op.create_index('ix_clock_state_watch_clock', ['state', 'watch_on', 'clock_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('clock', schema=None) as batch_op:
        batch_op.drop_index('ix_clock_state_watch_clock')
        batch_op.create_index('ix_clock_state_watch', ['state', 'watch_on'], unique=False)
