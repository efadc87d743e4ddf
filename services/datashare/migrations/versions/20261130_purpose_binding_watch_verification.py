"""purpose binding (workflow tasks), access watch (anomalies), certificate verification codes and serial keys

Revision ID: 7d2c41e9a0b3
Revises: 5306d80681c2
Create Date: 2026-11-30 09:30:00
"""
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '7d2c41e9a0b3'
down_revision: str | None = '5306d80681c2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def upgrade() -> None:
    op.create_table('workflow_task',
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('application_id', sa.String(length=64), nullable=False),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('item_code', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('updated_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('task_id', name=op.f('pk_workflow_task'))
    )
    with op.batch_alter_table('workflow_task', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_task_application', ['application_id', 'department'], unique=False)
    op.create_table('access_anomaly',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('reader', sa.String(length=120), nullable=False),
    sa.Column('reader_kind', sa.String(length=40), nullable=False),
    sa.Column('reader_department', sa.String(length=40), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('window_start', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entry_seqs', sa.JSON(), nullable=False),
    sa.Column('detected_at', shared.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_anomaly')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_access_anomaly_dedupe_key'))
    )
    with op.batch_alter_table('access_log_entry', schema=None) as batch_op:
        batch_op.create_index('ix_access_log_entry_accessor', ['accessor_subject', 'recorded_at'], unique=False)
    with op.batch_alter_table('certificate_type', schema=None) as batch_op:
        batch_op.add_column(sa.Column('serial_key', sa.String(length=64), nullable=True))
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification_code', sa.String(length=16), nullable=True))

    # Existing types get their permutation key and existing certificates their verification code (the holder
    # reads it with the certificate), so every certificate can be verified the new way.
    conn = op.get_bind()
    for (code,) in conn.execute(sa.text("SELECT code FROM certificate_type")).fetchall():
        conn.execute(sa.text("UPDATE certificate_type SET serial_key = :k WHERE code = :c"),
                     {"k": secrets.token_hex(32), "c": code})
    for (number,) in conn.execute(sa.text("SELECT number FROM certificate")).fetchall():
        vc = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        conn.execute(sa.text("UPDATE certificate SET verification_code = :v WHERE number = :n"),
                     {"v": vc, "n": number})


def downgrade() -> None:
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_column('verification_code')
    with op.batch_alter_table('certificate_type', schema=None) as batch_op:
        batch_op.drop_column('serial_key')
    with op.batch_alter_table('access_log_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_access_log_entry_accessor')
    op.drop_table('access_anomaly')
    with op.batch_alter_table('workflow_task', schema=None) as batch_op:
        batch_op.drop_index('ix_workflow_task_application')
    op.drop_table('workflow_task')
