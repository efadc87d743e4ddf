"""What applying case events costs in statements: a normal case runs none that does nothing (no supervision item
written when nothing is wrong, no delete of clocks that cannot exist, the case row, the KPI row and the card
clearing carried by the statements that are run anyway), and a repeated application (重复提交) is still found,
once per pair, by one statement."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest_asyncio
from sqlalchemy import select

from services.efficacy.service.clocks import record_case_events
from services.efficacy.store.tables import supervision_item
from services.efficacy.tests.helpers import (
    accepted,
    assigned,
    decided,
    delivered,
    efficacy_database,
    new_id,
    submitted,
    task_decided,
)
from shared.db import Database
from shared.events import Event
from shared.testing import recording_statements


@pytest_asyncio.fixture
async def db(databases) -> AsyncIterator[Database]:
    db = await efficacy_database(databases, "efficacy_statements")
    yield db
    await db.dispose()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The statements the block runs (the calendar's cached read left out: it is not the case's), once it ends."""
    seen: list[str] = []
    with recording_statements(db.engine) as log:
        yield seen
    seen.extend(t for t in log.texts if not t.startswith("SELECT calendar_year"))


def _on_time_case(app: str) -> list[Event]:
    tasks = [f"{app}-T{k}" for k in range(1, 6)]
    return [submitted(app, "2026-03-02T08:00:00"),
            accepted(app, "2026-03-02T09:00:00", person=app, hid=app),
            *(assigned(app, t, "2026-03-03T09:00:00", department=f"LD-D{k}") for k, t in enumerate(tasks, 1)),
            *(task_decided(app, t, "2026-03-04T09:00:00") for t in tasks),
            decided(app, "2026-03-05T09:00:00"), delivered(app, "2026-03-05T10:00:00")]


async def _items(db: Database) -> list[tuple[Any, ...]]:
    async with db.transaction() as s:
        return [(r.dedupe_key, r.kind, r.is_case, r.application_id, r.department, r.detail, r.state)
                for r in (await s.execute(select(supervision_item).order_by(supervision_item.c.id)))]


async def test_an_on_time_case_writes_no_supervision_item_and_no_statement_that_does_nothing(db):
    app = new_id()
    per_event: list[tuple[str, list[str]]] = []
    for e in _on_time_case(app):
        with statements(db) as seen:
            async with db.transaction() as s:
                await record_case_events(s, [e])
        per_event.append((e.type, seen))
    assert await _items(db) == []
    ran = [t for _, seen in per_event for t in seen]
    # The acceptance looks for an earlier application of the applicant and writes what it finds, in one statement
    # (on PostgreSQL, the one that keeps it); nothing reads the applicant's other applications apart from it.
    alone = sum(t.startswith("INSERT INTO supervision_item") for t in ran)
    assert alone == (0 if db.engine.dialect.name == "postgresql" else 1)
    assert not [t for t in ran if t.startswith("SELECT case_file")]
    # The first events' clocks replace none (there can be none yet): only the delivery after the decision (a
    # rebuild in full of a stopped application) replaces the application's clocks.
    replacing = [t for t in ran if "DELETE FROM clock" in t]
    if db.engine.dialect.name == "postgresql":
        # Per event: the case's lock with its row written, the facts kept and read and (the acceptance) its look
        # for repeats, and the clocks written carrying the cards' clearing and the KPI row.
        assert [(typ, len(seen)) for typ, seen in per_event] == [(typ, 2) for typ, _ in per_event]
        assert all("locked AS (INSERT INTO case_file" in seen[0] for _, seen in per_event)
        assert not [t for t in ran if t.startswith(("UPDATE case_file", "INSERT INTO case_file",
                                                    "INSERT INTO application_fact",
                                                    "UPDATE card", "DELETE FROM clock"))]
        assert all(t.startswith("WITH replaced_clocks") for t in replacing)
    else:
        assert len(replacing) == 1 and per_event[-1][1].count(replacing[0]) == 1


async def test_a_repeated_application_is_flagged_once_per_pair_by_one_statement(db):
    """The pair's ids in code-point order, as Python sorts them (a database collation may put "b-" before "B-")."""
    item, hid = "ITEM-" + new_id("R"), new_id("H")
    first, second, third, late = "b-" + new_id(), "B-" + new_id(), "a-" + new_id(), "d-" + new_id()
    stranger, other_item = "c-" + new_id(), "e-" + new_id()
    counts = {}
    for app, when, kw in ((first, "2026-03-02T09:00:00", {}), (second, "2026-03-05T09:00:00", {}),
                          (stranger, "2026-03-06T09:00:00", {"hid": new_id("H")}),
                          (other_item, "2026-03-06T10:00:00", {"item": item + "-X"}),
                          (third, "2026-03-20T09:00:00", {}), (late, "2026-05-30T09:00:00", {})):
        with statements(db) as seen:
            async with db.transaction() as s:
                await record_case_events(s, [accepted(app, when, **{"hid": hid, "item": item, **kw})])
        counts[app] = sum("INSERT INTO supervision_item" in t for t in seen)
    assert counts == {first: 1, second: 1, stranger: 1, other_item: 1, third: 1, late: 1}

    def pair(x: str, y: str, app: str) -> tuple[Any, ...]:
        a, b = sorted([x, y])
        return (f"repeated:{a}:{b}", "repeated_application", False, app, "LD-SCJGJ",
                f"Applicant applied for {item} again within 30 days ({a}, {b}).", "open")
    # The third within 30 days of both earlier ones (two rows from its one statement, the earlier accepted first);
    # the late one 71 days after the third, the stranger and the other item not at all.
    assert await _items(db) == [pair(first, second, second), pair(first, third, third), pair(second, third, third)]
    # Seen again (a redelivery under another id of the same acceptance is dropped before; the pair's key holds).
    async with db.transaction() as s:
        await record_case_events(s, [accepted(second, "2026-03-05T09:00:00", hid=hid, item=item)])
    assert len(await _items(db)) == 3


async def test_a_clock_write_maintains_no_index_that_another_begins_with(db):
    """Issue 14: every clock insert, and every update that moves a clock, writes an entry in each of the table's
    indexes; an index on `state` alone was one more B-tree that `ix_clock_state_watch_clock` (state first) already
    serves. The database as the models create it has none left."""
    from sqlalchemy import inspect

    async with db.engine.connect() as conn:
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("clock"))
    columns = {i["name"]: tuple(i["column_names"]) for i in indexes}
    redundant = [(a, b) for a, cols in columns.items() for b, longer in columns.items()
                 if a != b and len(cols) < len(longer) and longer[:len(cols)] == cols]
    assert not redundant, columns
