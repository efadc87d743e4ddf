"""projects and their accepted stages (企业投资项目), for the project clock

Revision ID: 8d4f6b2a0c31
Revises: 5b8e3f1a9c27
Create Date: 2026-11-30 12:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '8d4f6b2a0c31'
down_revision: str | None = '5b8e3f1a9c27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('project',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('project_code', sa.String(length=40), nullable=True),
    sa.Column('owner_id', sa.String(length=120), nullable=True),
    sa.Column('name', sa.String(length=300), nullable=True),
    sa.Column('registered_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_project'))
    )
    op.create_table('project_stage',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('stage_key', sa.String(length=64), nullable=False),
    sa.Column('stage_name', sa.String(length=200), nullable=False),
    sa.Column('total_limit_days', sa.Integer(), nullable=False),
    sa.Column('accepted_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applications', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_stage')),
    sa.UniqueConstraint('project_id', 'stage_key', name=op.f('uq_project_stage_project_id_stage_key'))
    )
    op.create_index(op.f('ix_project_stage_project_id'), 'project_stage', ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_project_stage_project_id'), table_name='project_stage')
    op.drop_table('project_stage')
    op.drop_table('project')
