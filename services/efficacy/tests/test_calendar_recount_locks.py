"""A calendar load counts every running clock again while case consumers write clocks: the two must not deadlock.
Row by row they did (CI, the docs' calendar example: 500 `deadlock detected`), because the recount locks all clocks
in clock_id order and a consumer's batch locks them application by application. The recount now holds the clock
table still: it waits for a consumer's transaction in flight, which finishes, and then it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import update

from services.efficacy.domain.calendar import YearLoad
from services.efficacy.service import calendar as calendar_service
from services.efficacy.service.clocks import record_case_events
from services.efficacy.store.tables import clock
from services.efficacy.tests.helpers import accepted, efficacy_database, new_id
from shared.db import Database
from shared.principal import Principal


@pytest_asyncio.fixture
async def db(databases) -> AsyncIterator[Database]:
    if not databases.admin_url:
        pytest.skip("SQLite has one writer at a time: nothing to interleave")  # both backends run in CI
    db = await efficacy_database(databases, "efficacy_recount")
    yield db
    await db.dispose()


async def test_a_calendar_load_waits_for_a_consumer_writing_clocks_instead_of_deadlocking(db):
    first, second = "a-" + new_id(), "b-" + new_id()  # the recount's clock_id order: first, then second
    async with db.transaction() as s:
        await record_case_events(s, [accepted(first, "2026-11-02T09:00:00"),
                                     accepted(second, "2026-11-02T09:05:00", person="p-2")])
    admin = Principal(subject="admin", kind="staff", roles=frozenset({"admin"}))
    touched = asyncio.Event()

    async def consumer() -> None:
        """As a case consumer's batch: the second application's clock, then (after a pause in which the recount
        starts) the first's."""
        async with db.transaction() as s:
            await s.execute(update(clock).where(clock.c.application_id == second).values(watch_on=None))
            touched.set()
            await asyncio.sleep(1.5)
            await s.execute(update(clock).where(clock.c.application_id == first).values(watch_on=None))

    async def load() -> None:
        await touched.wait()
        async with db.transaction() as s:
            await calendar_service.load_year(s, admin, 2026, YearLoad(frozenset(), frozenset()), "test")

    # Both commit: before, PostgreSQL broke the cycle after deadlock_timeout by failing one of them.
    await asyncio.wait_for(asyncio.gather(consumer(), load()), 30)
