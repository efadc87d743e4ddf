"""Figures of the shared machinery: an event written in the outbox until a consumer has applied it."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from sqlalchemy import Column, Integer, String, Table

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

    async def handler(session: Any, event: Event) -> None:
        await session.execute(applied.insert().values(event_id=event.id))
        arrived[event.id] = time.perf_counter()

    inbox = InboxConsumer(db, tables, Consumer("bench-consumer", "yimen.bench.>", handler), bus)

    async def handle(msg: Any) -> None:
        await inbox.handle_msg(msg)
        ev_id = Event.from_json(msg.data).id
        if ev_id in waiters:
            waiters[ev_id].set()

    from shared.bus import PullWorker

    worker = PullWorker(bus, "bench-consumer", "yimen.bench.>", handle, batch=10)
    relay = OutboxRelay(db, bus, tables, interval=0.5)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(relay.run())]
    samples = []
    try:
        for i in range(n + 10):
            ev = new_event("yimen.bench.thing.happened", source="/bench", subject=str(i), data={"i": i})
            waiters[ev.id] = asyncio.Event()
            t = time.perf_counter()
            async with db.transaction() as s:
                await emit(s, ev)
            await asyncio.wait_for(waiters[ev.id].wait(), 10)
            if i >= 10:
                samples.append(time.perf_counter() - t)
    finally:
        worker.stop()
        relay.stop()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.js.delete_stream(bus.names.stream)
        await bus.js.delete_stream(bus.names.dead_letter_stream)
        await bus.close()
        async with db.engine.begin() as conn:
            await conn.run_sync(md.drop_all)
        await db.dispose()
    return summarise(samples)
