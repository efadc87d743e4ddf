"""project types with their stages, and the kind of each provider (issue 17)

Revision ID: 8a3d5f1c2e47
Revises: 5e1c0a7d9b21
Create Date: 2026-12-01 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '8a3d5f1c2e47'
down_revision: str | None = '5e1c0a7d9b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'project_type',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('content', sa.JSON(), nullable=False),
        sa.Column('updated_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_project_type')),
    )
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), server_default='government_department',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('kind')
    op.drop_table('project_type')
