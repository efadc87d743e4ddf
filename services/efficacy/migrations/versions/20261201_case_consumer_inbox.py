"""efficacy-cases inherits the inbox of efficacy-intake and efficacy-workflow, which it replaced

A new durable starts at the beginning of the stream; with the old consumers' rows under its own name, every event
they applied is refused by the inbox at once instead of reaching `record_case_events` again.

Revision ID: 5b8e1c0f7a21
Revises: 464ecdde31b4
Create Date: 2026-12-01 00:50:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import inherit_inbox, undo_inherit_inbox

revision: str = '5b8e1c0f7a21'
down_revision: str | None = '464ecdde31b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inherit_inbox(op, 'efficacy-cases', ['efficacy-intake', 'efficacy-workflow'])


def downgrade() -> None:
    undo_inherit_inbox(op, 'efficacy-cases')
