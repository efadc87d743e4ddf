"""`Database.transaction()`: an AsyncSession that commits when the block ends and rolls back when it raises, its
commit hooks firing once, its connection back in the pool either way, and no more trips into SQLAlchemy's greenlet
than the statements and the end need (each one is CPU every service transaction pays)."""

from __future__ import annotations

import asyncio
from typing import Any

import greenlet
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from shared.db import Database
from shared.events import new_event
from shared.messaging import emit
from tests.foundation.conftest import effect, messaging

pytestmark = pytest.mark.asyncio


class Boom(Exception):
    pass


async def _count(db: Database, table: Any) -> int:
    async with db.transaction() as s:
        return (await s.execute(select(func.count()).select_from(table))).scalar_one()


def _checked_out(db: Database) -> int:
    return db.engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]


async def test_a_block_that_ends_commits_and_one_that_raises_rolls_back(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(effect.insert().values(consumer="c", event_id="kept"))
    with pytest.raises(Boom):
        async with db.transaction() as s:
            await s.execute(effect.insert().values(consumer="c", event_id="dropped"))
            raise Boom
    async with db.transaction() as s:
        assert list((await s.execute(select(effect.c.event_id))).scalars()) == ["kept"]
    assert _checked_out(db) == 0


async def test_the_commit_hooks_fire_once_and_the_relay_is_woken_only_by_a_commit(db: Database) -> None:
    fired: list[str] = []

    def before(_s: Session) -> None:
        fired.append("before_commit")

    def after(_s: Session) -> None:
        fired.append("after_commit")

    sa_event.listen(Session, "before_commit", before)
    sa_event.listen(Session, "after_commit", after)
    try:
        db.committed.clear()
        with pytest.raises(Boom):
            async with db.transaction() as s:
                await emit(s, new_event("f.thing.happened", source="/f", subject="1", data={}))
                raise Boom
        assert fired == [] and not db.committed.is_set()
        assert await _count(db, messaging.outbox) == 0
        fired.clear()
        # No statement of its own: the events held are still written by the commit, which the block's end makes.
        async with db.transaction() as s:
            await emit(s, new_event("f.thing.happened", source="/f", subject="2", data={}))
        assert fired == ["before_commit", "after_commit"]
        assert db.committed.is_set()
        assert await _count(db, messaging.outbox) == 1
    finally:
        sa_event.remove(Session, "before_commit", before)
        sa_event.remove(Session, "after_commit", after)


async def test_a_session_rolled_back_inside_the_block_refuses_further_work_and_commits_nothing(db: Database) -> None:
    with pytest.raises(InvalidRequestError):
        async with db.transaction() as s:
            await s.execute(effect.insert().values(consumer="c", event_id="x"))
            await s.rollback()
            await s.execute(effect.insert().values(consumer="c", event_id="y"))
    async with db.transaction() as s:
        await s.execute(effect.insert().values(consumer="c", event_id="z"))
        await s.rollback()  # ends it: the block's end then neither commits nor fails
    assert await _count(db, effect) == 0
    assert _checked_out(db) == 0


async def test_a_failed_commit_raises_and_hands_the_connection_back(db: Database) -> None:
    def refuse(_s: Session) -> None:
        raise Boom

    sa_event.listen(Session, "before_commit", refuse)
    try:
        with pytest.raises(Boom):
            async with db.transaction() as s:
                await s.execute(effect.insert().values(consumer="c", event_id="x"))
    finally:
        sa_event.remove(Session, "before_commit", refuse)
    assert _checked_out(db) == 0
    assert await _count(db, effect) == 0


async def test_a_cancelled_block_rolls_back_and_hands_the_connection_back(db: Database) -> None:
    inside = asyncio.Event()

    async def work() -> None:
        async with db.transaction() as s:
            await s.execute(effect.insert().values(consumer="c", event_id="x"))
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(work())
    await asyncio.wait_for(inside.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _checked_out(db) == 0
    assert await _count(db, effect) == 0


async def test_a_transaction_enters_the_greenlet_once_per_statement_and_once_to_end(db: Database) -> None:
    """`async with sessionmaker() as s, s.begin()` entered it for the begin, each statement, the commit and the
    close (and ran the close in a task of its own): four times for one statement, now two."""
    async with db.transaction() as s:  # warm: the pool's connection is open
        await s.execute(text("SELECT 1"))
    started: list[greenlet.greenlet] = []  # held, so that no two are the same object

    def trace(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            _origin, target = args
            if target.parent is not None and all(target is not g for g in started):
                started.append(target)

    previous = greenlet.settrace(trace)
    try:
        async with db.transaction() as s:
            await s.execute(text("SELECT 1"))
    finally:
        greenlet.settrace(previous)
    assert len(started) == 2
