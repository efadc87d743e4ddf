"""joint reviews (联合审图 / 联合验收): the review, its rounds, one opinion per department and round

Revision ID: 7c3e5a1f9b20
Revises: 4e1b7c9a2d55
Create Date: 2026-11-30 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '7c3e5a1f9b20'
down_revision: str | None = '4e1b7c9a2d55'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('joint_review',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('application_id', sa.String(length=64), nullable=False),
    sa.Column('receipt_number', sa.String(length=64), nullable=False),
    sa.Column('item_code', sa.String(length=64), nullable=False),
    sa.Column('item_name', sa.String(length=300), nullable=False),
    sa.Column('step_key', sa.String(length=64), nullable=False),
    sa.Column('step_name', sa.String(length=200), nullable=False),
    sa.Column('review_kind', sa.String(length=20), nullable=False),
    sa.Column('lead_department', sa.String(length=64), nullable=False),
    sa.Column('departments', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('current_round', sa.Integer(), nullable=False),
    sa.Column('result', sa.String(length=32), nullable=True),
    sa.Column('opened_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                            name=op.f('fk_joint_review_instance_id_process_instance')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_review')),
    sa.UniqueConstraint('task_id', name=op.f('uq_joint_review_task_id'))
    )
    op.create_index(op.f('ix_joint_review_instance_id'), 'joint_review', ['instance_id'], unique=False)
    op.create_index(op.f('ix_joint_review_application_id'), 'joint_review', ['application_id'], unique=False)
    op.create_table('joint_review_round',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('review_id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('eligible', sa.JSON(), nullable=False),
    sa.Column('points', sa.JSON(), nullable=False),
    sa.Column('participants', sa.JSON(), nullable=False),
    sa.Column('opened_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('scheduled_on', sa.Date(), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=True),
    sa.Column('place', sa.String(length=300), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('scheduled_by', sa.JSON(), nullable=True),
    sa.Column('scheduled_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.String(length=32), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('legal_basis', sa.Text(), nullable=True),
    sa.Column('consolidated_by', sa.JSON(), nullable=True),
    sa.Column('consolidated_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['review_id'], ['joint_review.id'],
                            name=op.f('fk_joint_review_round_review_id_joint_review')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_review_round')),
    sa.UniqueConstraint('review_id', 'number', name=op.f('uq_joint_review_round_review_id_number'))
    )
    op.create_table('joint_review_opinion',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('round_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=24), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('failed_points', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('given_by', sa.JSON(), nullable=False),
    sa.Column('given_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['joint_review_round.id'],
                            name=op.f('fk_joint_review_opinion_round_id_joint_review_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_review_opinion')),
    sa.UniqueConstraint('round_id', 'department', name=op.f('uq_joint_review_opinion_round_id_department'))
    )
    op.create_index(op.f('ix_joint_review_opinion_round_id'), 'joint_review_opinion', ['round_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_joint_review_opinion_round_id'), table_name='joint_review_opinion')
    op.drop_table('joint_review_opinion')
    op.drop_table('joint_review_round')
    op.drop_index(op.f('ix_joint_review_application_id'), table_name='joint_review')
    op.drop_index(op.f('ix_joint_review_instance_id'), table_name='joint_review')
    op.drop_table('joint_review')
