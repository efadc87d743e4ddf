"""stage.decisions: each final decision's fan-in columns, appended by the decision's count under the stage row's
lock, so the decision that completes the count has every one of them (PostgreSQL; null on SQLite)

Revision ID: 5d0c3a7e91b4
Revises: 1ef9f6ba3ad3
Create Date: 2026-12-01 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '5d0c3a7e91b4'
down_revision: str | None = '1ef9f6ba3ad3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('stage', sa.Column('decisions', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                                     nullable=True))


def downgrade() -> None:
    op.drop_column('stage', 'decisions')
