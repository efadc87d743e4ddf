"""PostgreSQL pages per call of the outbox relay's queue read as published rows pile up.

`python -m bench.outbox_queue [--events 100000] [--service workflow]`: a scratch database built by the service's
own migrations (so the figure follows its schema: indexes, storage parameters), then the relay's traffic at
SQL level: a transaction's events inserted in one statement, the relay's `SELECT … WHERE published_at IS NULL
ORDER BY seq LIMIT 200 FOR UPDATE SKIP LOCKED` and its mark of what it read. Nothing is sent to a bus: the
figure is the database's work. Prints pages (shared buffers hit or read) per relay read from
`pg_stat_statements`, over the whole fill and over its last tenth, the read's plan with its buffers at the end,
the same after a `VACUUM` (what autovacuum leaves behind), and the indexes' sizes.

The machine's `autovacuum` setting is printed: where it is off (this machine), nothing removes dead index entries
but a manual VACUUM and B-tree's own clean-up of entries known dead, so the first figure is the worst case."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.__main__ import postgres_admin_url
from shared.migrate import upgrade

RELAY_READ = ("SELECT seq, event_id, type, payload FROM outbox WHERE published_at IS NULL ORDER BY seq "
              "LIMIT $1 FOR UPDATE SKIP LOCKED")
INSERT = ("INSERT INTO outbox (event_id, type, payload, created_at) "
          "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::text[], $4::timestamptz[])")
MARK = "UPDATE outbox SET published_at = $1 WHERE seq = ANY($2::bigint[])"
#: A workflow task event's size: the envelope and a task's data.
PAYLOAD = json.dumps({"specversion": "1.0", "type": "yimen.workflow.task.assigned", "data": {"x": "y" * 560}})


async def _pages(admin: asyncpg.Connection, database: str) -> tuple[int, int]:
    """The relay read's calls and pages so far (the view lives in the admin database, over every database)."""
    row = await admin.fetchrow(
        "SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(shared_blks_hit + shared_blks_read), 0) AS pages "
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = $1 AND s.query LIKE 'SELECT seq, event_id, type, payload FROM outbox%'", database)
    return int(row["calls"]), int(row["pages"])


async def _plan(conn: asyncpg.Connection) -> list[str]:
    async with conn.transaction():  # FOR UPDATE takes row locks: given back at once
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "
                                + RELAY_READ.replace("$1", "200"))
    return [r[0] for r in rows]


async def _indexes(conn: asyncpg.Connection) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT c.relname, pg_relation_size(c.oid) / 8192 AS pages, pg_get_indexdef(c.oid) AS def "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'outbox'::regclass "
        "ORDER BY c.relname")
    return {r["relname"]: {"pages": r["pages"], "definition": r["def"]} for r in rows}


async def measure(admin_url: str, database: str, events: int, per_transaction: int, backlog: int
                  ) -> dict[str, Any]:
    admin = await asyncpg.connect(admin_url)
    await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn = await asyncpg.connect(f"{admin_url.rsplit('/', 1)[0]}/{database}")
    try:
        report: dict[str, Any] = {
            "autovacuum": await conn.fetchval("SHOW autovacuum"),
            "outbox_options": await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'outbox'"),
        }
        rounds = events // per_transaction
        tail_from = rounds - rounds // 10
        tail_start = (0, 0)
        # A backlog the relay has not reached yet (events of transactions still being published): the read always
        # has unpublished rows to return, as under load.
        await _insert(conn, backlog)
        for n in range(rounds):
            if n == tail_from:
                tail_start = await _pages(admin, database)
            await _insert(conn, per_transaction)
            async with conn.transaction():
                rows = await conn.fetch(RELAY_READ, per_transaction)
                await conn.execute(MARK, datetime.now(UTC), [r["seq"] for r in rows])
        calls, pages = await _pages(admin, database)
        report.update(
            events=events, per_transaction=per_transaction, backlog=backlog,
            pages_per_read=round(pages / calls, 1),
            pages_per_read_last_tenth=round((pages - tail_start[1]) / max(1, calls - tail_start[0]), 1),
            plan=await _plan(conn), indexes=await _indexes(conn),
            dead_rows=await conn.fetchval("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'outbox'"))
        await conn.execute("VACUUM outbox")
        report.update(plan_after_vacuum=await _plan(conn), indexes_after_vacuum=await _indexes(conn))
        return report
    finally:
        await conn.close()
        await admin.close()


async def _insert(conn: asyncpg.Connection, n: int) -> None:
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in range(n)]
    await conn.execute(INSERT, ids, ["yimen.workflow.task.assigned"] * n, [PAYLOAD] * n, [now] * n)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.outbox_queue")
    p.add_argument("--events", type=int, default=100_000, help="events published in the fill")
    p.add_argument("--per-transaction", type=int, default=10, help="events per transaction (and per relay read)")
    p.add_argument("--backlog", type=int, default=20, help="events left unpublished throughout")
    p.add_argument("--service", default="workflow", help="whose migrations build the scratch database")
    args = p.parse_args()
    admin = postgres_admin_url()
    if admin is None:
        raise SystemExit("needs PostgreSQL on 127.0.0.1:5432")
    name = "yimen_outbox_queue_" + uuid.uuid4().hex[:6]
    base = admin.rsplit("/", 1)[0]

    async def _admin(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(args.service, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
        report = asyncio.run(measure(admin, name, args.events, args.per_transaction, args.backlog))
        print(json.dumps(report, indent=2))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
