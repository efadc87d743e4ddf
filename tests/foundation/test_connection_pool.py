"""The connection pool without a pre-ping round trip: what the server closed is never handed out, and a
service's statements stay prepared (no connection churn under a burst, no LRU thrash)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from shared.db import Database

pytestmark = pytest.mark.asyncio


async def _backend_pids(db: Database, n: int) -> set[int]:
    """Open `n` pooled connections at once and return their server process ids."""
    started = asyncio.Event()
    pids: set[int] = set()

    async def hold() -> None:
        async with db.transaction() as s:
            pids.add((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            if len(pids) == n:
                started.set()
            await asyncio.wait_for(started.wait(), 60)

    await asyncio.gather(*(hold() for _ in range(n)))
    return pids


async def test_a_connection_the_server_closed_is_replaced_without_an_error(db: Database, databases) -> None:
    if databases.kind != "postgresql":
        pytest.skip("SQLite has no server to close a connection")  # both backends run in CI; this is PG's case
    import asyncpg

    pids = await _backend_pids(db, 3)
    admin = await asyncpg.connect(databases.admin_url)
    try:
        # What a server restart, an idle timeout or an operator does to every pooled connection.
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.3)  # the driver hears of the closed sockets on its next turn of the event loop
    for _ in range(5):  # every pooled connection was closed: each checkout must skip it, not fail on it
        async with db.transaction() as s:
            assert (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one() not in pids


async def test_a_burst_reuses_the_pool_instead_of_opening_connections(db: Database, databases) -> None:
    if databases.kind != "postgresql":
        pytest.skip("SQLite's pool is one file handle per connection, with nothing to prepare")
    first = await _backend_pids(db, 8)
    again = await _backend_pids(db, 8)
    assert again == first  # the same eight server processes: nothing was closed and reopened
