"""queue-shaped indexes hold only the queue: pending deliveries, open tasks; autovacuum by a fixed row count

Issue #14 (bench run J, open cases): the webhook claim and the decision scanned indexes on (state,
next_attempt_at) and (department, state) that kept an entry for every row that left the queue, and their pages
per call grew with the cases behind them. The queue indexes become partial on the queue's own condition, and on
PostgreSQL the two queue tables are vacuumed after a fixed number of dead rows, not after a fifth of a table that
only grows (the default scale factor let tens of thousands of dead entries pile up in front of the claim).

Revision ID: 9a4d2f6c1e83
Revises: bbb6a8151248
Create Date: 2026-11-30 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9a4d2f6c1e83'
down_revision: str | None = 'bbb6a8151248'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_TASK = sa.text("state = 'open'")
PENDING_DELIVERY = sa.text("state = 'pending'")

#: Dead rows (old versions of updated rows) after which autovacuum cleans a queue table, whatever its size: a
#: claim or a decision then never walks more than about this many dead index entries.
QUEUE_VACUUM_THRESHOLD = 1000
QUEUE_TABLES = ("task", "webhook_delivery")


def upgrade() -> None:
    op.drop_index('ix_webhook_delivery_state_next_attempt_at', table_name='webhook_delivery')
    op.create_index('ix_webhook_delivery_pending_due', 'webhook_delivery', ['next_attempt_at', 'id'], unique=False,
                    postgresql_where=PENDING_DELIVERY, sqlite_where=PENDING_DELIVERY)
    op.drop_index('ix_task_department_state', table_name='task')
    op.drop_index('ix_task_state_due_at', table_name='task')
    op.create_index('ix_task_open_department_seq', 'task', ['department', 'seq'], unique=False,
                    postgresql_where=OPEN_TASK, sqlite_where=OPEN_TASK)
    op.create_index('ix_task_open_due_at', 'task', ['due_at'], unique=False,
                    postgresql_where=OPEN_TASK, sqlite_where=OPEN_TASK)
    if op.get_bind().dialect.name == "postgresql":
        for table in QUEUE_TABLES:
            op.execute(f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
                       f"autovacuum_vacuum_threshold = {QUEUE_VACUUM_THRESHOLD})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in QUEUE_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)")
    op.drop_index('ix_task_open_due_at', table_name='task')
    op.drop_index('ix_task_open_department_seq', table_name='task')
    op.create_index('ix_task_state_due_at', 'task', ['state', 'due_at'], unique=False)
    op.create_index('ix_task_department_state', 'task', ['department', 'state'], unique=False)
    op.drop_index('ix_webhook_delivery_pending_due', table_name='webhook_delivery')
    op.create_index('ix_webhook_delivery_state_next_attempt_at', 'webhook_delivery', ['state', 'next_attempt_at'],
                    unique=False)
