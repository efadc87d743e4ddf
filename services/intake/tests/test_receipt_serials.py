"""Receipt serials (办件编号的流水号): unique and increasing per item and day, and on PostgreSQL taken on a
connection apart, so that a submission does not hold every other submission of its item until it commits."""

from __future__ import annotations

import asyncio
import uuid

from services.intake.store import repository as repo
from services.intake.tests.conftest import Harness
from shared.db import dialect_of


async def test_concurrent_submissions_of_an_item_get_distinct_increasing_serials(intake: Harness) -> None:
    db = intake.client.app.state.db
    prefix = "P" + uuid.uuid4().hex[:12]

    async def take() -> int:
        async with db.transaction() as s:
            return await repo.next_serial(s, prefix)

    assert sorted(await asyncio.gather(*(take() for _ in range(8)))) == list(range(1, 9))


async def test_an_open_submission_does_not_hold_the_next_one_of_its_item(intake: Harness) -> None:
    db = intake.client.app.state.db
    prefix = "Q" + uuid.uuid4().hex[:12]
    async with db.transaction() as first:
        pg = dialect_of(first) == "postgresql"
        if not pg:
            # SQLite: the caller's transaction is the one writer, so the serial is part of it (no gap).
            assert await repo.next_serial(first, prefix) == 1
        else:
            assert await repo.next_serial(first, prefix) == 1
            # The first submission's transaction is still open (its writes, its response, its commit to come):
            # the next submission of the item takes its serial at once instead of waiting for that commit.
            async def second() -> int:
                async with db.transaction() as s:
                    return await repo.next_serial(s, prefix)

            assert await asyncio.wait_for(second(), 5) == 2
        await first.rollback()
    async with db.transaction() as s:
        # A transaction that failed after its serial leaves it unused on PostgreSQL (serials are not gapless);
        # on SQLite the rollback took the serial back with the rest.
        assert await repo.next_serial(s, prefix) == (3 if pg else 1)
