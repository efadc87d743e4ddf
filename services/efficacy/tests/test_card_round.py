"""The background card round commits batch by batch, in clock_id order: a round stopped midway keeps what it
committed, holds no clock locked, and the next round finishes it, leaving exactly the cards, queue rows and
events one evaluation in one transaction leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest_asyncio
from sqlalchemy import select, text

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.calendar import CHINA
from services.efficacy.service.cards import RoundReport, evaluate, evaluate_round
from services.efficacy.service.clocks import record_case_events
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import card, clock, messaging, supervision_item
from services.efficacy.tests.helpers import accepted, efficacy_database
from shared.db import Database

AS_OF = datetime(2026, 3, 20, 12, tzinfo=CHINA)
APPS = [f"ROUND-{n}" for n in (4, 1, 6, 3, 7, 2, 5)]


@pytest_asyncio.fixture
async def two(databases) -> AsyncIterator[tuple[Database, Database]]:
    """Seven applications accepted with a five-day limit, overdue at `AS_OF`: in one database evaluated in one
    transaction, in the other by rounds."""
    dbs = []
    for name in ("efficacy_one_transaction", "efficacy_rounds"):
        db = await efficacy_database(databases, name)
        async with db.transaction() as s:
            await record_case_events(s, [accepted(a, "2026-03-02T09:00:00", person=a, hid=a, days=5) for a in APPS])
        dbs.append(db)
    yield dbs[0], dbs[1]
    for db in dbs:
        await db.dispose()


async def _left(db: Database) -> dict[str, Any]:
    async with db.transaction() as s:
        cards = sorted((r.application_id, r.clock_id, r.colour, r.reason, r.deadline_key)
                       for r in await s.execute(select(card)))
        items = sorted((r.kind, r.is_case, r.application_id, r.department, r.detail.split(";")[0])
                       for r in await s.execute(select(supervision_item)))
        events = sorted(r.type for r in await s.execute(select(messaging.outbox.c.type)))
        watch = sorted(tuple(r) for r in await s.execute(select(clock.c.clock_id, clock.c.watch_on)))
    return dict(cards=cards, items=items, events=events, watch=watch)


async def test_a_round_commits_per_batch_and_one_stopped_midway_is_finished_by_the_next(two):
    one_transaction, rounds = two
    config = EfficacyConfig()
    async with one_transaction.transaction() as s:
        assert len(await evaluate(s, await current_calendar(s), AS_OF, config)) == len(APPS)
    expected = await _left(one_transaction)
    assert [a for a, *_ in expected["cards"]] == sorted(APPS)

    # Batches of three clocks: the first is committed when the round yields it …
    stopped = evaluate_round(rounds, config, AS_OF, batch=3)
    first = await anext(stopped)
    first_apps = sorted(c["application_id"] for c in first)
    assert first_apps == sorted(APPS)[:3], "clock_id order"
    async with rounds.transaction() as s:
        if rounds.engine.dialect.name == "postgresql":
            await s.execute(text("SET LOCAL lock_timeout = '2s'"))
        # … and leaves its clocks unlocked: a consumer writing them does not wait for the rest of the round.
        await s.execute(clock.update().where(clock.c.application_id.in_(first_apps))
                        .values(updated_at=clock.c.updated_at))
        assert sorted(r.application_id for r in await s.execute(select(card))) == first_apps
    # … then the service stops before the rest (the batch in flight, if any, is rolled back with its transaction).
    await stopped.aclose()

    # The next round evaluates only what the stopped one did not: the first batch's clocks wait for their next
    # crossing, and a crossing is carded once.
    rest = [c for raised in [r async for r in evaluate_round(rounds, config, AS_OF, batch=3)] for c in raised]
    assert sorted(c["application_id"] for c in rest) == sorted(APPS)[3:]
    assert [r async for r in evaluate_round(rounds, config, AS_OF, batch=3)] == [[]]
    assert await _left(rounds) == expected


async def test_a_round_over_fewer_clocks_than_a_batch_is_one_transaction(two):
    _, rounds = two
    batches = [r async for r in evaluate_round(rounds, EfficacyConfig(), AS_OF, batch=len(APPS) + 1)]
    assert len(batches) == 1 and sorted(c["application_id"] for c in batches[0]) == sorted(APPS)


async def test_a_complaint_that_stays_overdue_is_queued_once_and_not_offered_again_each_round(two):
    from sqlalchemy import event as sa_event

    from services.efficacy.store.tables import complaint

    _, rounds = two
    async with rounds.transaction() as s:
        await s.execute(complaint.insert().values(
            complaint_id="CP-1", about_kind="item", about_ref="ITEM-1", department="LD-RSJ", text="…",
            secret_hash="x", state="open", created_at=AS_OF, deadline_on=AS_OF.date().replace(day=1)))
    inserts: list[int] = []

    def note(_conn, _cursor, statement, params, _context, many):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO supervision_item"):
            inserts.append(len(params) if many else 1)

    sa_event.listen(rounds.engine.sync_engine, "before_cursor_execute", note)
    try:
        [r async for r in evaluate_round(rounds, EfficacyConfig(), AS_OF)]
        first = list(inserts)
        inserts.clear()
        assert [r async for r in evaluate_round(rounds, EfficacyConfig(), AS_OF)] == [[]]
    finally:
        sa_event.remove(rounds.engine.sync_engine, "before_cursor_execute", note)
    assert first and inserts == []
    async with rounds.transaction() as s:
        keys = [r.dedupe_key for r in await s.execute(select(supervision_item))
                if r.kind == "complaint_overdue"]
    assert keys == ["complaint-overdue:CP-1"]


async def test_the_round_reads_the_clocks_due_undated_first_then_by_watch_day_and_pages_across_both(two):
    """`due_clocks_after` is the round's read: running clocks with no watch day, then those whose day has come
    in (watch_on, clock_id) order (the index's), never one due later or not running; a page may end anywhere."""
    from datetime import date

    from services.efficacy.store import cases

    _, rounds = two
    today = date(2026, 3, 20)
    rows = {"u-2": None, "u-1": None, "d-3": date(2026, 3, 1), "d-1": date(2026, 3, 19), "d-2": date(2026, 3, 1),
            "d-4": today, "later": date(2026, 3, 21)}
    async with rounds.transaction() as s:
        await s.execute(clock.delete())
        for cid, watch in rows.items():
            await s.execute(clock.insert().values(
                clock_id=cid, application_id=f"A-{cid}", kind="application", state="running", watch_on=watch,
                body={"clock_id": cid, "kind": "application", "application_id": f"A-{cid}"},
                updated_at=AS_OF))
        await s.execute(clock.insert().values(clock_id="stopped", application_id="A-s", kind="application",
                                              state="stopped", watch_on=None, body={}, updated_at=AS_OF))
    expected = ["u-1", "u-2", "d-2", "d-3", "d-1", "d-4"]
    for limit in (1, 2, 4, 6, 10):
        seen: list[str] = []
        after = None
        while True:
            async with rounds.transaction() as s:
                page = await cases.due_clocks_after(s, today, after, limit)
            seen += [state.clock_id for _, state in page]
            if len(page) < limit:
                break
            after = page[-1][0]
        assert seen == expected, limit


async def test_a_round_passes_over_a_clock_a_consumer_is_rewriting_instead_of_waiting_for_it(two):
    """On PostgreSQL the round leaves a clock another transaction holds (a case consumer rewriting it, with a watch
    day of its own) and goes on: waiting for it deadlocked with a consumer's batch, which locks clocks application
    by application. The held clock keeps its watch day; the round's cards are raised all the same. (SQLite writes
    one transaction at a time: nothing is held there, and the round moves every clock.)"""
    import asyncio

    _, rounds = two
    held_app = sorted(APPS)[2]
    async with rounds.engine.connect() as consumer:
        held: list[Any] = []
        if rounds.engine.dialect.name == "postgresql":
            await consumer.begin()
            held = (await consumer.execute(select(clock.c.clock_id, clock.c.watch_on)
                                           .where(clock.c.application_id == held_app).with_for_update())).all()
            assert held
        report = RoundReport()
        raised = [c for batch in await asyncio.wait_for(
            _all(evaluate_round(rounds, EfficacyConfig(), AS_OF, report=report)), 10) for c in batch]
        await consumer.rollback()
    # A clock passed over keeps a watch day of today: the next round comes at the interval, not tomorrow.
    assert report.again == bool(held)
    assert sorted(c["application_id"] for c in raised) == sorted(APPS)
    left = dict((await _left(rounds))["watch"])
    assert all(left[clock_id] == watch_on for clock_id, watch_on in held)
    moved = [k for k, v in left.items() if v is not None and v > AS_OF.date()]
    assert len(moved) == len(left) - len(held), "every other clock's watch day moved past today"


async def _all(rounds: Any) -> list[Any]:
    return [r async for r in rounds]


async def test_a_round_that_leaves_nothing_watched_today_says_so_and_a_consumer_writing_a_clock_due_marks_its_commit(
        two):
    """The background round sleeps until the next local midnight when no clock it read is watched today
    (`round_pause`); a case consumer's transaction that writes a running clock watched today is marked, and its
    commit wakes the round (`cases.CLOCKS_WATCHED`); one whose clocks are watched from a later day is not."""
    from services.efficacy.store import cases

    _, rounds = two
    report = RoundReport()
    assert len([c for r in [r async for r in evaluate_round(rounds, EfficacyConfig(), AS_OF, report=report)]
                for c in r]) == len(APPS)
    assert report.again is False, "every clock carded waits for its next crossing, a later day"
    again = RoundReport()
    assert [r async for r in evaluate_round(rounds, EfficacyConfig(), AS_OF, report=again)] == [[]]
    assert again.again is False
    async with rounds.transaction() as s:
        await record_case_events(s, [accepted("ROUND-LATE", "2026-03-02T09:00:00", days=5)])
        assert s.info.get(cases.CLOCKS_WATCHED) is True, "overdue by the machine's clock: watched today"
    async with rounds.transaction() as s:
        await record_case_events(s, [accepted("ROUND-FAR", "2031-03-03T09:00:00", days=30)])
        assert not s.info.get(cases.CLOCKS_WATCHED), "watched from a day years ahead (its yellow day less a margin)"


def test_the_pause_after_a_round_is_the_interval_while_a_clock_is_watched_today_else_until_midnight():
    from datetime import timedelta

    from services.efficacy.domain.clocks import round_pause

    evening = datetime(2026, 3, 20, 23, 0, tzinfo=CHINA)
    assert round_pause(evening, again=True, interval=5, idle=300) == 5
    assert round_pause(evening, again=False, interval=5, idle=300) == 300
    assert round_pause(evening, again=False, interval=5, idle=7200) == 3601  # just after midnight
    assert round_pause(evening + timedelta(minutes=59, seconds=58), again=False, interval=5, idle=300) == 5
