"""walk-in registration: a person a window clerk registered at the counter, claimable online with a one-time code

Revision ID: 4b8e1f6c2a95
Revises: 9d2c7a4e1f08
Create Date: 2026-11-30 10:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '4b8e1f6c2a95'
down_revision: str | None = '9d2c7a4e1f08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'walk_in_registration',
        sa.Column('person_id', sa.String(length=32), nullable=False),
        sa.Column('clerk_id', sa.String(length=40), nullable=False),
        sa.Column('clerk_name', sa.String(length=100), nullable=True),
        sa.Column('service_point', sa.String(length=40), nullable=False),
        sa.Column('registry_verdict', sa.String(length=20), nullable=False),
        sa.Column('created_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('claim_code_hash', sa.String(length=64), nullable=True),
        sa.Column('claim_expires_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('claim_failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('claimed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_walk_in_registration_person_id_person')),
        sa.PrimaryKeyConstraint('person_id', name=op.f('pk_walk_in_registration')),
    )


def downgrade() -> None:
    op.drop_table('walk_in_registration')
