"""The planner's statistics and dead rows of a service's own tables, kept up where the server's autovacuum is off.

PostgreSQL plans a prepared statement for good once it has run a few times, and plans it again only when the
statistics of a table it reads change (ANALYZE, VACUUM, DDL). A service's tables start empty, where a sequential
scan is the cheapest plan, so every hot statement is first planned for empty tables. With autovacuum on, its
daemon analyzes a table once a tenth of it has changed, and the plans follow the tables as they grow. With it off
(as on the machine this project is built and benchmarked on), the plans made for empty tables stay: efficacy's case
statement scanned the whole `case_event` table (8,000 pages a call, 28 ms) long after an index lookup had become
the cheaper plan, and each relay's queue read walked every dead version of its outbox.

`keep_statistics` does what the daemon would, by the daemon's own thresholds as the server is configured
(`autovacuum_analyze_*`, `autovacuum_vacuum_*`), on the tables of the service's own database, and only while
`autovacuum` is off: a server whose daemon runs is left to it. One replica at a time (an advisory lock)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from shared.db import Database, is_sqlite

log = logging.getLogger("yimen.upkeep")

#: Session advisory lock that lets one replica of a service run the round at a time (replicas share a database).
_LOCK = int.from_bytes(hashlib.sha256(b"yimen upkeep").digest()[:8], "big", signed=True)

#: Per table of the current schema: whether the daemon would analyze it now, and whether it would vacuum it.
_DUE = """
SELECT s.relname,
       s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
         + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0),
       s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
         + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
ORDER BY s.relname
"""


async def keep_statistics(db: Database, *, only_without_autovacuum: bool = True) -> dict[str, str]:
    """One round: ANALYZE each table with enough rows changed since its last analysis, VACUUM (ANALYZE) each with
    enough dead rows; returns what it did by table. Nothing on SQLite (its planner keeps no such plans), nothing
    while the server's autovacuum is on (unless `only_without_autovacuum` is False), nothing while another replica
    runs a round."""
    if is_sqlite(db.url):
        return {}
    async with db.engine.connect() as conn:
        # The driver's own connection: VACUUM may not run in a transaction, nor as a prepared statement.
        raw: Any = (await conn.get_raw_connection()).driver_connection
        if only_without_autovacuum and await raw.fetchval("SELECT current_setting('autovacuum')") == "on":
            return {}
        if not await raw.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            return {}
        done: dict[str, str] = {}
        try:
            for name, analyze, vacuum in await raw.fetch(_DUE):
                if not (analyze or vacuum):
                    continue
                quoted = conn.dialect.identifier_preparer.quote(name)
                await raw.execute(f"VACUUM (ANALYZE) {quoted}" if vacuum else f"ANALYZE {quoted}")
                done[name] = "vacuum, analyze" if vacuum else "analyze"
        finally:
            await raw.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    if done:
        log.info("autovacuum is off: did its work on %s", done)
    return done
