"""Every service's migrations leave the outbox queue-shaped: `ix_outbox_unpublished` holds only the rows still to
publish (`(seq) WHERE published_at IS NULL`), the purge's range has an index of its own, and on PostgreSQL the
outbox and the inbox are vacuumed after a fixed count of rows, not a fraction of the table. Read from the
database's own catalogue after `alembic upgrade head`, on the backend under test; one service also goes down and
up again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import alembic_config, upgrade
from shared.testing import DatabaseProvider

WITH_OUTBOX = ["catalog", "identity", "intake", "workflow", "datashare", "efficacy", "notify"]


async def _schema(url: str) -> dict[str, Any]:
    """The outbox's index definitions by name, and (PostgreSQL) the storage parameters of the outbox and inbox."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                rows = (await conn.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'outbox'"))).all()
                options = dict((await conn.execute(text(
                    "SELECT relname, reloptions FROM pg_class WHERE relname IN ('outbox', 'inbox') "
                    "AND relkind = 'r'"))).all())
            else:
                rows = (await conn.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox'"))).all()
                options = {}
        return {"indexes": {r[0]: r[1] for r in rows}, "options": options, "dialect": engine.dialect.name}
    finally:
        await engine.dispose()


def _normalised(definition: str | None) -> str:
    return " ".join((definition or "").replace("public.", "").replace("USING btree ", "").replace('"', "")
                    .lower().split())


@pytest.mark.parametrize("service", WITH_OUTBOX)
async def test_the_outbox_index_holds_only_unpublished_rows(service: str, databases: DatabaseProvider) -> None:
    url = databases.url(f"queue_{service}")
    await asyncio.to_thread(upgrade, service, url)
    schema = await _schema(url)
    assert _normalised(schema["indexes"].get("ix_outbox_unpublished")) == (
        "create index ix_outbox_unpublished on outbox (seq) where (published_at is null)"
        if schema["dialect"] == "postgresql" else
        "create index ix_outbox_unpublished on outbox (seq) where published_at is null")
    assert _normalised(schema["indexes"].get("ix_outbox_published")) == (
        "create index ix_outbox_published on outbox (published_at) where (published_at is not null)"
        if schema["dialect"] == "postgresql" else
        "create index ix_outbox_published on outbox (published_at) where published_at is not null")
    if schema["dialect"] == "postgresql":
        assert sorted(schema["options"]["outbox"]) == sorted([
            "autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=1000",
            "autovacuum_vacuum_insert_scale_factor=0", "autovacuum_vacuum_insert_threshold=1000"])
        assert sorted(schema["options"]["inbox"]) == sorted([
            "autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=1000",
            "autovacuum_vacuum_insert_scale_factor=0", "autovacuum_vacuum_insert_threshold=10000"])


async def test_the_queue_migration_goes_down_to_the_old_index_and_up_again(databases: DatabaseProvider) -> None:
    url = databases.url("queue_down")
    await asyncio.to_thread(upgrade, "workflow", url)
    # To the revision before the queue migration (workflow has migrations after it).
    scripts = ScriptDirectory.from_config(alembic_config("workflow", url))
    queue = next(r for r in scripts.walk_revisions() if r.module.__file__.endswith("_outbox_queue_index.py"))
    await asyncio.to_thread(command.downgrade, alembic_config("workflow", url), queue.down_revision)
    down = await _schema(url)
    assert "(published_at, seq)" in down["indexes"]["ix_outbox_unpublished"]
    assert "where" not in down["indexes"]["ix_outbox_unpublished"].lower()
    assert "ix_outbox_published" not in down["indexes"]
    if down["dialect"] == "postgresql":
        assert down["options"] == {"outbox": None, "inbox": None}
    await asyncio.to_thread(upgrade, "workflow", url)
    assert "where" in (await _schema(url))["indexes"]["ix_outbox_unpublished"].lower()
