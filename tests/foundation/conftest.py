"""A miniature service (one table, the messaging tables) to exercise the shared machinery for real."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import Column, Integer, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import Bus
from shared.db import Database, make_metadata
from shared.events import Event
from shared.messaging import define_messaging_tables

metadata = make_metadata()
messaging = define_messaging_tables(metadata)
effect = Table(
    "effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(50), nullable=False),
    Column("event_id", String(64), nullable=False),
)


async def record_effect(session: AsyncSession, event: Event, consumer: str = "c") -> None:
    await session.execute(effect.insert().values(consumer=consumer, event_id=event.id))


async def effects(db: Database) -> list[str]:
    async with db.transaction() as s:
        return list((await s.execute(select(effect.c.event_id).order_by(effect.c.id))).scalars())


@pytest_asyncio.fixture
async def db(databases) -> AsyncIterator[Database]:
    database = Database(databases.url("foundation"), info={"messaging": messaging, "service": "foundation"})
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest_asyncio.fixture
async def bus(nats_url, bus_prefix) -> AsyncIterator[Bus]:
    import secrets

    # A prefix per test: streams and durables of one test never see another's events.
    b = Bus(nats_url, prefix=f"{bus_prefix}f{secrets.token_hex(3)}")
    await b.connect(attempts=3)
    yield b
    for stream in (b.names.stream, b.names.dead_letter_stream):
        try:
            await b.js.delete_stream(stream)
        except Exception:
            pass
    await b.close()


@contextlib.asynccontextmanager
async def running_probe(create_app: Any, settings: Any, tokens: Any) -> AsyncIterator[Any]:
    """A probe service of this package's tables (made here, not migrated) running with its lifespan."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.testing import running_app

    settings.migrate_on_start = False
    engine = create_async_engine(settings.resolved_database_url())
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    async with running_app(create_app, settings, tokens=tokens) as c:
        yield c
