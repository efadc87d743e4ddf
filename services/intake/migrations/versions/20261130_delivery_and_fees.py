"""delivery choice by post, fee exemptions, payment notices and notifications

Revision ID: b8d5e2c41f07
Revises: e9996885db87
Create Date: 2026-11-30 09:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = 'b8d5e2c41f07'
down_revision: str | None = 'e9996885db87'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('application') as batch:
        batch.add_column(sa.Column('delivery_carrier', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('delivery_tracking', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('fee_exemption', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('fee_exemption_state', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('ready_at', shared.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('payment_notice',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.String(length=32), nullable=False),
    sa.Column('payment_code', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.String(length=20), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', shared.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'],
                            name=op.f('fk_payment_notice_application_id_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_notice')),
    sa.UniqueConstraint('application_id', name=op.f('uq_payment_notice_application_id')),
    sa.UniqueConstraint('payment_code', name=op.f('uq_payment_notice_payment_code'))
    )
    op.create_index('ix_payment_notice_status', 'payment_notice', ['status', 'requested_at'], unique=False)
    op.create_table('payment_notification',
    sa.Column('webhook_id', sa.String(length=100), nullable=False),
    sa.Column('payment_code', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('received_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('webhook_id', name=op.f('pk_payment_notification'))
    )


def downgrade() -> None:
    op.drop_table('payment_notification')
    op.drop_index('ix_payment_notice_status', table_name='payment_notice')
    op.drop_table('payment_notice')
    with op.batch_alter_table('application') as batch:
        for c in ('ready_at', 'fee_exemption_state', 'fee_exemption', 'delivery_tracking', 'delivery_carrier'):
            batch.drop_column(c)
