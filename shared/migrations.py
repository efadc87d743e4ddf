"""The part of every service's schema that `shared.messaging` owns: the outbox, the inbox and the
idempotency keys (`define_messaging_tables`). Each service's first messaging migration calls
`create_messaging_tables`, so the seven copies of the same DDL are one; a change to these tables is a new migration
in every service that calls a new function here (`make_outbox_queue_shaped`), never an edit of a shipped one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.types import UTCDateTime


def create_messaging_tables(op: Any) -> None:
    """`upgrade()` of `migrations/versions/20261126_messaging_tables.py` (notify: part of its first migration).

    `op` is `alembic.op` of the migration being run."""
    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_unpublished", ["published_at", "seq"], unique=False)


def drop_messaging_tables(op: Any) -> None:
    """`downgrade()` of the same migration."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unpublished")
    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("idempotency_key")


#: Per-table autovacuum on PostgreSQL: a vacuum after a fixed count of dead (or inserted) rows, not after a fraction
#: of the table (20 % by default): the outbox and the inbox only grow between purges, so a fraction let dead
#: entries pile up in step with the table, and the relay's queue read walked through them.
_QUEUE_VACUUM = {
    "outbox": {"autovacuum_vacuum_scale_factor": "0", "autovacuum_vacuum_threshold": "1000",
               "autovacuum_vacuum_insert_scale_factor": "0", "autovacuum_vacuum_insert_threshold": "1000"},
    "inbox": {"autovacuum_vacuum_scale_factor": "0", "autovacuum_vacuum_threshold": "1000",
              "autovacuum_vacuum_insert_scale_factor": "0", "autovacuum_vacuum_insert_threshold": "10000"},
}


def make_outbox_queue_shaped(op: Any) -> None:
    """`upgrade()` of `migrations/versions/20261130_outbox_queue_index.py` in every service.

    `ix_outbox_unpublished` was `(published_at, seq)` over every row: each published row kept an entry, and the
    relay's `WHERE published_at IS NULL ORDER BY seq` read went through a bitmap of every entry not yet vacuumed
    (515 pages per read at 10,000 open cases). It becomes `(seq) WHERE published_at IS NULL`: a row leaves it when
    published, and the read is a plain index scan in seq order that marks the entries it finds dead, so the next
    read skips them. The hourly purge's range of published rows, which the old index served, gets its own."""
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index("ix_outbox_unpublished", "outbox", ["seq"], unique=False,
                    postgresql_where=sa.text("published_at IS NULL"), sqlite_where=sa.text("published_at IS NULL"))
    # The purge's range of published rows, which the old index also served.
    op.create_index("ix_outbox_published", "outbox", ["published_at"], unique=False,
                    postgresql_where=sa.text("published_at IS NOT NULL"),
                    sqlite_where=sa.text("published_at IS NOT NULL"))
    if op.get_context().dialect.name == "postgresql":
        for table, options in _QUEUE_VACUUM.items():
            op.execute(f"ALTER TABLE {table} SET ({', '.join(f'{k} = {v}' for k, v in options.items())})")


def undo_outbox_queue_shaped(op: Any) -> None:
    """`downgrade()` of the same migration."""
    if op.get_context().dialect.name == "postgresql":
        for table, options in _QUEUE_VACUUM.items():
            op.execute(f"ALTER TABLE {table} RESET ({', '.join(options)})")
    op.drop_index("ix_outbox_published", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "seq"], unique=False)


def index_messaging_retention(op: Any) -> None:
    """`upgrade()` of `migrations/versions/20261201_messaging_retention.py` in every service: the ranges of
    `shared.messaging.purge_expired`, which would otherwise read the whole inbox and idempotency table once per
    purge. BRIN on PostgreSQL (rows arrive in time order, and the hot inserts add no B-tree entry), a plain index
    on SQLite."""
    op.create_index("ix_inbox_applied_at", "inbox", ["applied_at"], unique=False, postgresql_using="brin")
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"], unique=False,
                    postgresql_using="brin")


def undo_messaging_retention(op: Any) -> None:
    """`downgrade()` of the same migration."""
    op.drop_index("ix_idempotency_key_created_at", table_name="idempotency_key")
    op.drop_index("ix_inbox_applied_at", table_name="inbox")


def inherit_inbox(op: Any, consumer: str, replaced: list[str]) -> None:
    """`upgrade()` of a migration that merges consumers into one: the new `consumer` inherits the inbox rows of
    the consumers it `replaced`. Its new durable starts at the beginning of the stream; with their rows under its
    own name, every event they applied is refused by the inbox at once instead of being applied again. Names are
    the migration's own literals, never input."""
    names = ", ".join(f"'{name}'" for name in replaced)
    select = (f"SELECT '{consumer}', event_id, event_type, applied_at FROM inbox WHERE consumer IN ({names})")
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"INSERT INTO inbox (consumer, event_id, event_type, applied_at) {select} ON CONFLICT DO NOTHING")
    else:
        op.execute(f"INSERT OR IGNORE INTO inbox (consumer, event_id, event_type, applied_at) {select}")


def undo_inherit_inbox(op: Any, consumer: str) -> None:
    """`downgrade()` of the same migration: the old consumers' own rows were never removed; the new one's are
    only its own."""
    op.execute(f"DELETE FROM inbox WHERE consumer = '{consumer}'")
