"""intake-review inherits the inbox of the four consumers it replaced (the department steps' and the decision's)

A new durable starts at the beginning of the stream; with the old consumers' rows under its own name, every event
they applied is refused by the inbox at once instead of being applied again (a second timeline step, a second
decision's hand-over).

Revision ID: 6f3a9d2e8b47
Revises: fdb8a240dc12
Create Date: 2026-12-03 03:30:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import inherit_inbox, undo_inherit_inbox

revision: str = '6f3a9d2e8b47'
down_revision: str | None = 'fdb8a240dc12'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inherit_inbox(op, 'intake-review', ['intake-task-assigned', 'intake-task-decided', 'intake-task-handler-assigned',
                                        'intake-application-decided'])


def downgrade() -> None:
    undo_inherit_inbox(op, 'intake-review')
