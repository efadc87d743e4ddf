"""access log head's prev_hash: on PostgreSQL one statement moves the head and appends the row (issue #14)

Revision ID: 3b7e5a92c1f4
Revises: d41591188c61
Create Date: 2026-12-01 03:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3b7e5a92c1f4'
down_revision: str | None = 'd41591188c61'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('access_log_head') as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('access_log_head') as batch_op:
        batch_op.drop_column('prev_hash')
