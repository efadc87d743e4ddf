"""Figures of the shared machinery: an event written in the outbox until a consumer has applied it."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from sqlalchemy import Column, Integer, String, Table
from sqlalchemy import event as sa_event

from bench.floors import summarise
from shared.bus import Bus
from shared.db import Database, make_metadata
from shared.events import Event, new_event
from shared.messaging import Consumer, InboxConsumer, OutboxRelay, define_messaging_tables, emit


async def outbox_to_consumer(db_url: str, nats_url: str, n: int) -> dict[str, Any]:
    md = make_metadata()
    tables = define_messaging_tables(md)
    applied = Table("bench_applied", md, Column("id", Integer, primary_key=True), Column("event_id", String(64)))
    db = Database(db_url, info={"messaging": tables, "service": "bench"})
    async with db.engine.begin() as conn:
        await conn.run_sync(md.drop_all)
        await conn.run_sync(md.create_all)
    bus = Bus(nats_url, prefix="bench" + secrets.token_hex(3))
    await bus.connect(attempts=3)
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}

    applying: list[str] = []

    async def handler(session: Any, event: Event) -> None:
        await session.execute(applied.insert().values(event_id=event.id))
        arrived[event.id] = time.perf_counter()
        applying.append(event.id)

    inbox = InboxConsumer(db, tables, Consumer("bench-consumer", "yimen.bench.>", handler), bus)

    async def handle(msg: Any) -> None:
        applying.clear()
        await inbox.handle_msg(msg)
        # Committed: the waiter learns it from the handler, so the figure pays no second parse of the envelope.
        for ev_id in applying:
            if ev_id in waiters:
                waiters[ev_id].set()

    from shared.bus import PullWorker

    worker = PullWorker(bus, "bench-consumer", "yimen.bench.>", handle, batch=10)
    relay = OutboxRelay(db, bus, tables, interval=0.5)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(relay.run())]
    samples = []
    cpu = nats_msgs = 0.0
    statements = [0]
    sa_event.listen(db.engine.sync_engine, "before_cursor_execute",
                    lambda *_a: statements.__setitem__(0, statements[0] + 1))
    try:
        for i in range(n + 10):
            if i == 10:  # after the warm-up: this process's CPU (relay and consumer) and its NATS messages
                cpu, nats_msgs, statements[0] = time.process_time(), _nats_msgs(bus), 0
            ev = new_event("yimen.bench.thing.happened", source="/bench", subject=str(i), data={"i": i})
            waiters[ev.id] = asyncio.Event()
            t = time.perf_counter()
            async with db.transaction() as s:
                await emit(s, ev)
            await asyncio.wait_for(waiters[ev.id].wait(), 10)
            if i >= 10:
                samples.append(time.perf_counter() - t)
        cpu, nats_msgs = time.process_time() - cpu, _nats_msgs(bus) - nats_msgs
    finally:
        worker.stop()
        relay.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.js.delete_stream(bus.names.stream)
        await bus.js.delete_stream(bus.names.dead_letter_stream)
        await bus.close()
        async with db.engine.begin() as conn:
            await conn.run_sync(md.drop_all)
        await db.dispose()
    return {**summarise(samples), "cpu_us_per_event": round(cpu / n * 1e6),
            "nats_messages_per_event": round(nats_msgs / n, 2), "statements_per_event": round(statements[0] / n, 2)}


def _nats_msgs(bus: Bus) -> float:
    """Messages this connection sent and received (publishes, acks, pull requests, deliveries, status replies):
    load-independent, unlike the CPU beside it."""
    assert bus.nc is not None
    return float(bus.nc.stats["in_msgs"] + bus.nc.stats["out_msgs"])
