"""timeline entries: a stable step code and, for reads of data, their purpose; departments' phones

Revision ID: 7c41d2b9e0a3
Revises: b8d5e2c41f07
Create Date: 2026-11-30 09:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c41d2b9e0a3'
down_revision: str | None = 'b8d5e2c41f07'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('purpose', sa.String(length=300), nullable=True))
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('phone')
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_column('purpose')
        batch_op.drop_column('code')
