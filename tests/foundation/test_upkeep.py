"""What autovacuum would do, done by the service while the server's autovacuum is off (shared/upkeep.py): a
statement planned while its table was empty is planned again once the table has grown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shared.db import Database
from shared.upkeep import _LOCK, keep_statistics

pytestmark = pytest.mark.asyncio


async def _until_done(db: Database, table: str) -> dict[str, str]:
    """Rounds until one does something to `table` (the server takes a transaction's counts a moment after it ends)."""
    for _ in range(100):
        done = await keep_statistics(db, only_without_autovacuum=False)
        if table in done:
            return done
        await asyncio.sleep(0.1)
    raise AssertionError(f"the upkeep never did anything to {table}")


@asynccontextmanager
async def _driver(db: Database, databases: Any) -> AsyncIterator[Any]:
    """asyncpg's own connection from the service's pool (what the upkeep itself uses); PostgreSQL only."""
    if databases.kind != "postgresql":
        pytest.skip("PostgreSQL's plan cache and autovacuum; SQLite keeps no plan across statements")
    async with db.engine.connect() as conn:
        yield (await conn.get_raw_connection()).driver_connection


async def _counted(raw: Any) -> None:
    """Hand this connection's counts of changed rows to the server's statistics now (an idle backend does it
    after up to 10 s otherwise; PostgreSQL 15 and later)."""
    if await raw.fetchval("SELECT current_setting('server_version_num')::int") >= 150000:
        await raw.execute("SELECT pg_stat_force_next_flush()")


async def _plan(raw: Any, statement: str) -> str:
    return "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN {statement}"))


async def test_a_statement_planned_on_an_empty_table_is_planned_again_once_the_table_has_grown(db: Database,
                                                                                             databases) -> None:
    async with _driver(db, databases) as raw:
        await raw.execute("CREATE TABLE upkeep_probe (id serial PRIMARY KEY, k int NOT NULL, pad text NOT NULL);"
                          "CREATE INDEX ix_upkeep_probe_k ON upkeep_probe (k)")
        # As a service's hot statement (the rows of a batch, handed over as an array): prepared, run while the
        # table is empty until the server keeps one plan, which for an empty table scans it and hashes the batch.
        await raw.execute("PREPARE probe(int[]) AS SELECT pad FROM upkeep_probe WHERE k IN (SELECT unnest($1::int[]))")
        for _ in range(8):
            await raw.execute("EXECUTE probe('{1,2,3}')")
        await raw.execute("INSERT INTO upkeep_probe (k, pad) SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        await _counted(raw)
        autovacuum = await raw.fetchval("SELECT current_setting('autovacuum')")
        if autovacuum == "off":
            # The premise: nothing makes the server plan it again; it still reads all 20,000 rows for three.
            assert "Seq Scan" in await _plan(raw, "EXECUTE probe('{1,2,3}')")
        done = await _until_done(db, "upkeep_probe")
        assert done["upkeep_probe"] == "analyze"  # inserted rows are not dead: nothing to vacuum
        plan = await _plan(raw, "EXECUTE probe('{1,2,3}')")
        assert "Seq Scan" not in plan and "ix_upkeep_probe_k" in plan, plan
        # Analyzed just now: the next round leaves it alone.
        assert "upkeep_probe" not in await keep_statistics(db, only_without_autovacuum=False)

        # Dead rows past the daemon's threshold (a fifth of the table): vacuumed, and analyzed with it.
        await raw.execute("DELETE FROM upkeep_probe WHERE k % 2 = 0")
        await _counted(raw)
        done = await _until_done(db, "upkeep_probe")
        assert done["upkeep_probe"] == "vacuum, analyze", done
        assert await raw.fetchval("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'upkeep_probe'") == 0


async def test_one_replica_at_a_time_does_the_round(db: Database, databases) -> None:
    async with _driver(db, databases) as raw:
        await raw.execute("CREATE TABLE upkeep_busy (id serial PRIMARY KEY);"
                          "INSERT INTO upkeep_busy SELECT FROM generate_series(1, 500)")
        await _counted(raw)
        async with _driver(db, databases) as other:
            # Another replica's round holds the lock: this one does nothing, however due the tables are.
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK)
            try:
                assert await keep_statistics(db, only_without_autovacuum=False) == {}
            finally:
                await other.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        # Released: the next round does it (so the tables were due all along).
        assert "upkeep_busy" in await _until_done(db, "upkeep_busy")
