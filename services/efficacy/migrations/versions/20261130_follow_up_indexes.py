"""indexes for the lookups whose cost grew with the rows kept: queue rows by card, overdue complaints and ratings

Revision ID: 3c7a9e5d1b42
Revises: 8d4f6b2a0c31
Create Date: 2026-11-30 18:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '3c7a9e5d1b42'
down_revision: str | None = '8d4f6b2a0c31'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('supervision_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervision_item_card_id'), ['card_id'], unique=False)
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.create_index('ix_rating_rectification_due', ['rectification_state', 'rectification_due_on'],
                              unique=False)
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_state_deadline', ['state', 'deadline_on'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_state_deadline')
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.drop_index('ix_rating_rectification_due')
    with op.batch_alter_table('supervision_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervision_item_card_id'))
