"""public status projection: each receipt's public view rendered once per change, backfilled here

Revision ID: 9d4f1a6b2c83
Revises: 3b7e9d2a6c15
Create Date: 2026-12-02 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9d4f1a6b2c83'
down_revision: str | None = '3b7e9d2a6c15'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'public_status',
        sa.Column('receipt_number', sa.String(length=80), nullable=False),
        sa.Column('application_id', sa.String(length=32), nullable=False),
        sa.Column('verification_code', sa.String(length=6), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('receipt_number', name=op.f('pk_public_status')),
    )
    # Every application that has a receipt gets its view now, rendered by the code that keeps it from here on
    # (the route reads only the projection, so a receipt without a row would answer 404).
    from services.intake.store import public_status

    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM application WHERE receipt_number IS NOT NULL")).scalars().all()
    public_status.rebuild(bind, ids)


def downgrade() -> None:
    op.drop_table('public_status')
