"""partial indexes: an inbox message enters neither the dispatcher's queue nor the gateway's index, a person's
feed step not the organisations' index (issue #14: fewer index entries per insert)

Revision ID: 6a1f0c7d2e85
Revises: b14e6939ea4d
Create Date: 2026-12-01 03:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6a1f0c7d2e85'
down_revision: str | None = 'b14e6939ea4d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (index, table, columns, condition)
_PARTIAL = [
    ('ix_message_due', 'message', ['status', 'next_attempt_at'], 'next_attempt_at IS NOT NULL'),
    ('ix_message_gateway_id', 'message', ['gateway_id'], 'gateway_id IS NOT NULL'),
    ('ix_feed_entry_organisation_seq', 'feed_entry', ['organisation_id', 'seq'], 'organisation_id IS NOT NULL'),
]


def upgrade() -> None:
    for name, table, columns, condition in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, postgresql_where=sa.text(condition), sqlite_where=sa.text(condition))


def downgrade() -> None:
    for name, table, columns, _ in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns)
