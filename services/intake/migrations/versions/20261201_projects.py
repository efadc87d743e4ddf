"""enterprise investment projects: kept project types, projects, stage applications, dispatched applications

Revision ID: 3b7e9d2a6c15
Revises: 5e2a9c7d3b18
Create Date: 2026-12-01 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '3b7e9d2a6c15'
down_revision: str | None = '5e2a9c7d3b18'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'project_type',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('published_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_project_type')),
    )
    op.create_table(
        'project',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('project_code', sa.String(length=24), nullable=False),
        sa.Column('type_key', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.String(length=64), nullable=False),
        sa.Column('agent_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('site', sa.String(length=300), nullable=False),
        sa.Column('land_area_m2', sa.String(length=32), nullable=False),
        sa.Column('total_investment_wan', sa.String(length=32), nullable=False),
        sa.Column('industry_code', sa.String(length=8), nullable=False),
        sa.Column('conditions', sa.JSON(), nullable=False),
        sa.Column('stages', sa.JSON(), nullable=False),
        sa.Column('registered_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('completed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project')),
        sa.UniqueConstraint('project_code', name=op.f('uq_project_project_code')),
    )
    op.create_index('ix_project_owner', 'project', ['owner_id', 'registered_at', 'id'], unique=False)
    op.create_table(
        'project_stage',
        sa.Column('project_id', sa.String(length=32), nullable=False),
        sa.Column('stage_key', sa.String(length=64), nullable=False),
        sa.Column('form', sa.JSON(), nullable=False),
        sa.Column('materials', sa.JSON(), nullable=False),
        sa.Column('accepted_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('accepted_by', sa.String(length=64), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('completed_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_stage_project_id_project')),
        sa.PrimaryKeyConstraint('project_id', 'stage_key', name=op.f('pk_project_stage')),
    )
    op.create_table(
        'project_application',
        sa.Column('application_id', sa.String(length=32), nullable=False),
        sa.Column('project_id', sa.String(length=32), nullable=False),
        sa.Column('stage_key', sa.String(length=64), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('limit_days', sa.Integer(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['application.id'],
                                name=op.f('fk_project_application_application_id_application')),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'],
                                name=op.f('fk_project_application_project_id_project')),
        sa.PrimaryKeyConstraint('application_id', name=op.f('pk_project_application')),
    )
    op.create_index('ix_project_application_stage', 'project_application', ['project_id', 'stage_key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_project_application_stage', table_name='project_application')
    op.drop_table('project_application')
    op.drop_table('project_stage')
    op.drop_index('ix_project_owner', table_name='project')
    op.drop_table('project')
    op.drop_table('project_type')
