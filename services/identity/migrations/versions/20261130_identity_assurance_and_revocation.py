"""identity assurance levels, in-person verification, token revocation, account lock

Revision ID: 7a1c3e9d2b40
Revises: 1e6760ee23cb
Create Date: 2026-11-30 09:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '7a1c3e9d2b40'
down_revision: str | None = '1e6760ee23cb'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts registered before registry matching existed were self-declared: level 1.
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('assurance_level', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('assurance_basis', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('assured_at', shared.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('locked_at', shared.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('locked_at', shared.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('in_person_verification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('clerk_id', sa.String(length=40), nullable=False),
    sa.Column('clerk_name', sa.String(length=100), nullable=True),
    sa.Column('service_point', sa.String(length=40), nullable=False),
    sa.Column('document', sa.String(length=40), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('level_before', sa.Integer(), nullable=False),
    sa.Column('at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_in_person_verification_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_in_person_verification'))
    )
    op.create_index(op.f('ix_in_person_verification_person_id'), 'in_person_verification', ['person_id'], unique=False)
    op.create_table('token_revocation',
    sa.Column('account_kind', sa.String(length=20), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('not_before', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('account_kind', 'account_id', name=op.f('pk_token_revocation'))
    )
    op.create_index(op.f('ix_token_revocation_not_before'), 'token_revocation', ['not_before'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_token_revocation_not_before'), table_name='token_revocation')
    op.drop_table('token_revocation')
    op.drop_index(op.f('ix_in_person_verification_person_id'), table_name='in_person_verification')
    op.drop_table('in_person_verification')
    with op.batch_alter_table('staff') as batch:
        batch.drop_column('locked_at')
    with op.batch_alter_table('person') as batch:
        batch.drop_column('locked_at')
        batch.drop_column('assured_at')
        batch.drop_column('assurance_basis')
        batch.drop_column('assurance_level')
