"""efficacy-case-events inherits the inbox of efficacy-cases and efficacy-certificates, which it replaced

One consumer takes a case's events and its certificate: the certificates' own consumer paid a transaction and an
inbox claim per case. A new durable starts at the beginning of the stream (an existing one given the certificate
types would skip those it had passed before the old consumer applied them); with the old consumers' rows under
its own name, every event they applied is refused by the inbox at once instead of being applied again.

Revision ID: 2f6a8d3c1e57
Revises: 9c4d2b6e8f13
Create Date: 2026-12-01 09:50:00.000000
"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import inherit_inbox, undo_inherit_inbox

revision: str = '2f6a8d3c1e57'
down_revision: str | None = '9c4d2b6e8f13'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inherit_inbox(op, 'efficacy-case-events', ['efficacy-cases', 'efficacy-certificates'])


def downgrade() -> None:
    undo_inherit_inbox(op, 'efficacy-case-events')
