"""search misses (searches that found nothing, per day and wording)

Revision ID: 5e1c0a7d9b21
Revises: 2f6a9d0c4b13
Create Date: 2026-11-30 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '5e1c0a7d9b21'
down_revision: str | None = '2f6a9d0c4b13'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('search_miss',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('terms', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', 'terms', name=op.f('pk_search_miss'))
    )


def downgrade() -> None:
    op.drop_table('search_miss')
