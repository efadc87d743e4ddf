"""CPU of the shared machinery's own statements on PostgreSQL: per round, a consumer's inbox claim of a batch of
1 to 6 events, a transaction writing them into the outbox, and the relay's read and mark (nothing is published:
the figure is this process's work around its statements), with how many of those statements were compiled.

`python -m bench.messaging_cpu [ROUNDS]`; the tree before a change: extract its `shared/` (`git archive REV shared |
tar -x -C DIR`) and run from there: `cd DIR && PYTHONPATH=<this repo> <this repo>/.venv/bin/python -m
bench.messaging_cpu` (it prints which `shared.messaging` it measured)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy import event as sa_event
from sqlalchemy.engine import default

import shared.messaging
from bench.__main__ import postgres_admin_url
from shared.db import Database, make_metadata
from shared.events import Event, new_event
from shared.messaging import Consumer, InboxConsumer, OutboxRelay, define_messaging_tables, emit


class UnpublishedRelay(OutboxRelay):
    """Reads and marks as the relay does; what it would send to JetStream is not this figure."""

    async def _publish(self, rows: Any) -> None:
        return None

async def main(rounds: int) -> None:
    print("shared.messaging from", shared.messaging.__file__, file=sys.stderr)
    name = "yimen_busstmt_cpu_" + uuid.uuid4().hex[:6]
    admin = await asyncpg.connect(postgres_admin_url() or "postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    md = make_metadata()
    t = define_messaging_tables(md)
    base = (postgres_admin_url() or "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
    db = Database(f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}", info={"messaging": t, "service": "m"})
    try:
        async with db.engine.begin() as c:
            await c.run_sync(md.create_all)
        async def nothing(_session: Any, _event: Event) -> None:
            return None

        consumer = InboxConsumer(db, t, Consumer("c", "x.>", nothing), None)  # type: ignore[arg-type]
        relay = UnpublishedRelay(db, None, t)  # type: ignore[arg-type]
        misses = {"n": 0, "all": 0}
        def seen(_conn: Any, _cursor: Any, stmt: str, _params: Any, context: Any, _many: bool) -> None:
            if ("inbox" in stmt or "outbox" in stmt):
                misses["all"] += 1
                if context.cache_hit in (default.CACHE_MISS, default.NO_CACHE_KEY, default.CACHING_DISABLED):
                    misses["n"] += 1
        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        async def one(i: int) -> None:
            evs = [new_event("x.thing.happened", source="/m", subject=str(i), data={"i": i}) for _ in range(i % 6 + 1)]
            await consumer.apply_batch(evs)
            async with db.transaction() as s:
                for e in evs:
                    await emit(s, e)
            await relay.publish_pending()
        for i in range(60):  # warm-up: connections, prepared statements, caches
            await one(i)
        misses.update(n=0, all=0)
        cpu = time.process_time()
        for i in range(rounds):
            await one(i)
        cpu = time.process_time() - cpu
        print(f"rounds {rounds}: CPU {cpu * 1000 / rounds:.3f} ms per round (inbox claim + outbox write + relay read "
              f"and mark); messaging statements {misses['all']}, compiled (cache misses) {misses['n']}")
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 600))
