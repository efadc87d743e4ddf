"""PostgreSQL pages per call of the outbox relay's queue read as published rows pile up.

`python -m bench.outbox_queue [--events 40000] [--service workflow] [--revision REV]`: a scratch database built by
the service's own migrations (up to REV, head by default: the schema before a change is the revision before it),
then the relay's traffic at SQL level: a transaction's events inserted in one statement, the relay's
`SELECT … WHERE published_at IS NULL ORDER BY seq LIMIT … FOR UPDATE SKIP LOCKED` and its mark of what it read.
Nothing is sent to a bus: the figure is the database's work. Prints the read's pages (shared buffers hit or read,
from `EXPLAIN (ANALYZE, BUFFERS)` of the read itself) at each tenth of the fill, its plan at the end, the same
after a `VACUUM` (what autovacuum would leave), and the indexes' sizes.

The machine's `autovacuum` setting is printed: where it is off (this machine), nothing removes dead index entries
but a manual VACUUM and B-tree's own clean-up of entries a scan found dead, so these figures are the worst case
between two vacuums."""

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


async def _plan(conn: asyncpg.Connection, limit: int) -> list[str]:
    async with conn.transaction():  # FOR UPDATE takes row locks: given back at once
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "
                                + RELAY_READ.replace("$1", str(limit)))
    return [r[0] for r in rows]


async def _pages(conn: asyncpg.Connection, limit: int) -> int:
    """The pages one relay read touches now (its rows locked and given back)."""
    async with conn.transaction():
        plan = json.loads(await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                                              + RELAY_READ.replace("$1", str(limit))))
    top = plan[0]["Plan"]
    return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])


async def _indexes(conn: asyncpg.Connection) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT c.relname, pg_relation_size(c.oid) / 8192 AS pages, pg_get_indexdef(c.oid) AS def "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'outbox'::regclass "
        "ORDER BY c.relname")
    return {r["relname"]: {"pages": r["pages"], "definition": r["def"]} for r in rows}


async def measure(url: str, events: int, per_transaction: int, backlog: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        report: dict[str, Any] = {
            "autovacuum": await conn.fetchval("SHOW autovacuum"),
            "outbox_options": await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'outbox'"),
            "events": events, "per_transaction": per_transaction, "backlog": backlog,
        }
        rounds = events // per_transaction
        pages: dict[int, int] = {}
        # A backlog the relay has not reached yet (events of transactions still being published): the read always
        # has unpublished rows to return, as under load.
        await _insert(conn, backlog)
        for n in range(1, rounds + 1):
            await _insert(conn, per_transaction)
            async with conn.transaction():
                rows = await conn.fetch(RELAY_READ, per_transaction)
                await conn.execute(MARK, datetime.now(UTC), [r["seq"] for r in rows])
            if n % (rounds // 10) == 0:
                pages[n * per_transaction] = await _pages(conn, per_transaction)
        report.update(
            pages_per_read_by_events_published=pages, plan=await _plan(conn, per_transaction),
            indexes=await _indexes(conn),
            dead_rows=await conn.fetchval("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'outbox'"))
        await conn.execute("VACUUM outbox")
        report.update(pages_per_read_after_vacuum=await _pages(conn, per_transaction),
                      indexes_after_vacuum=await _indexes(conn))
        return report
    finally:
        await conn.close()


async def _insert(conn: asyncpg.Connection, n: int) -> None:
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in range(n)]
    await conn.execute(INSERT, ids, ["yimen.workflow.task.assigned"] * n, [PAYLOAD] * n, [now] * n)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.outbox_queue")
    p.add_argument("--events", type=int, default=40_000, help="events published in the fill")
    p.add_argument("--per-transaction", type=int, default=10, help="events per transaction (and per relay read)")
    p.add_argument("--backlog", type=int, default=20, help="events left unpublished throughout")
    p.add_argument("--service", default="workflow", help="whose migrations build the scratch database")
    p.add_argument("--revision", default="head", help="the migration to build it up to")
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
        upgrade(args.service, f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}", args.revision)
        report = asyncio.run(measure(f"{base}/{name}", args.events, args.per_transaction, args.backlog))
        print(json.dumps(report, indent=2))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
