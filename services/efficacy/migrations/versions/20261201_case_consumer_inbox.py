"""efficacy-cases inherits the inbox of efficacy-intake and efficacy-workflow, which it replaced

A new durable starts at the beginning of the stream; with the old consumers' rows under its own name, every event
they applied is refused by the inbox at once instead of reaching `record_case_events` again.

Revision ID: 5b8e1c0f7a21
Revises: 464ecdde31b4
Create Date: 2026-12-01 00:50:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '5b8e1c0f7a21'
down_revision: str | None = '464ecdde31b4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COPY = ("{verb} INTO inbox (consumer, event_id, event_type, applied_at) "
         "SELECT 'efficacy-cases', event_id, event_type, applied_at FROM inbox "
         "WHERE consumer IN ('efficacy-intake', 'efficacy-workflow'){tail}")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_COPY.format(verb="INSERT", tail=" ON CONFLICT DO NOTHING"))
    else:
        op.execute(_COPY.format(verb="INSERT OR IGNORE", tail=""))


def downgrade() -> None:
    # The old consumers' own rows were never removed; the new one's are only its own.
    op.execute("DELETE FROM inbox WHERE consumer = 'efficacy-cases'")
