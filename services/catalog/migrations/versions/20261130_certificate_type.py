"""certificate types as datashare announces them: the fields an item's certificate mapping must cover

Revision ID: 2f6a9d0c4b13
Revises: 13c42444251f
Create Date: 2026-11-30 09:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '2f6a9d0c4b13'
down_revision: str | None = '13c42444251f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('certificate_type',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('required', sa.JSON(), nullable=False),
    sa.Column('updated_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_certificate_type'))
    )


def downgrade() -> None:
    op.drop_table('certificate_type')
