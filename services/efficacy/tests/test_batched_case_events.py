"""A fetched batch of case events applied together (each application's events coalesced: one lock, one insert, one
read, one write; on PostgreSQL the first three are one statement) leaves exactly the state the same events leave applied one at a time: clocks and their watch
days, KPI rows, the case rows, the kept facts, cards cleared, and supervision items in the same order."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from services.efficacy.service.clocks import item_published, record_case_event, record_case_events
from services.efficacy.store.tables import (
    application_fact,
    card,
    case_event,
    case_file,
    clock,
    supervision_item,
)
from services.efficacy.tests.helpers import (
    accepted,
    assigned,
    at,
    decided,
    delivered,
    efficacy_database,
    ev,
    reopened,
    submitted,
    task_decided,
    visit,
)
from shared.db import Database
from shared.events import Event, new_event


@pytest_asyncio.fixture
async def two(databases) -> AsyncIterator[tuple[Database, Database]]:
    dbs = []
    for name in ("efficacy_one_by_one", "efficacy_batched"):
        db = await efficacy_database(databases, name)
        async with db.transaction() as s:
            await item_published(s, _item())
        dbs.append(db)
    yield dbs[0], dbs[1]
    for db in dbs:
        await db.dispose()


def _item() -> Any:
    from services.efficacy.events.contracts import ItemPublished

    return ItemPublished.model_validate(new_event(
        "yimen.catalog.item.published", source="/yimen/catalog", subject="ITEM-1", data={
            "code": "ITEM-1", "version": 1, "name": "ITEM-1", "department": "LD-SCJGJ", "fully_online": True,
            "process": {"steps": [{"key": "hearing", "excluded_from_limit": True},
                                  {"key": "acceptance", "kind": "acceptance", "limit_days": 2}]}}).data)


def _with(event: Event, **data: Any) -> Event:
    event.data.update(data)
    return event


def _again(event: Event) -> Event:
    """The same payload under another id (a publisher's retry)."""
    return new_event(event.type, source=event.source, subject=event.subject, data=dict(event.data))


def _events() -> list[Event]:
    """Three applications interleaved: a five-department one with a correction round and a special procedure,
    the same applicant applying again (a repeated application), one asked again for a material it carried, a
    late event after a stop, and a duplicate payload."""
    a, b, c = "A-batch", "B-batch", "C-batch"
    tasks = [f"{a}-T{n}" for n in range(1, 6)]
    out = [
        submitted(b, "2026-03-02T07:00:00"),
        submitted(a, "2026-03-02T08:00:00"),
        _with(accepted(a, "2026-03-02T09:00:00"), materials=[{"code": "M1"}]),
        accepted(b, "2026-03-02T11:00:00"),
        *(assigned(a, t, "2026-03-03T09:00:00", department=f"LD-D{n}", step_key="hearing" if n == 5 else "review")
          for n, t in enumerate(tasks, start=1)),
        _with(accepted(c, "2026-03-03T09:30:00", person="p-2", hid="445381199001019999"),
              materials=[{"code": "M1"}, {"code": "M2"}]),
        assigned(b, f"{b}-T1", "2026-03-03T10:00:00"),
        assigned(c, f"{c}-T1", "2026-03-04T10:00:00"),
        _with(task_decided(c, f"{c}-T1", "2026-03-04T10:00:00", "request_correction"),
              missing=[{"material_code": "M2"}]),
        _with(task_decided(a, tasks[0], "2026-03-04T10:00:00", "request_correction"),
              missing=[{"material_code": "M1"}, {"material_code": "X9"}]),
        task_decided(a, tasks[1], "2026-03-05T10:00:00"),
        reopened(a, tasks[0], "2026-03-06T10:00:00"),
        *(task_decided(a, t, "2026-03-09T10:00:00") for t in tasks[2:]),
        task_decided(b, f"{b}-T1", "2026-03-09T11:00:00"),
        task_decided(a, tasks[0], "2026-03-10T10:00:00"),
        decided(b, "2026-03-10T11:00:00"), delivered(b, "2026-03-10T12:00:00"), visit(b, "2026-03-10T12:30:00"),
        reopened(c, f"{c}-T1", "2026-03-11T10:00:00"),
        decided(a, "2026-03-12T10:00:00"),
        ev("yimen.intake.application.returned", c, returned_at=at("2026-03-12T11:00:00"), reasons=[]),
        delivered(a, "2026-03-12T12:00:00"),
    ]
    out.insert(10, _again(out[9]))
    return out


async def _seed_cards(db: Database) -> None:
    """A card on a task clock that the events will stop, and its queue row: cleared when the clock stops."""
    async with db.transaction() as s:
        await s.execute(card.insert().values(
            card_id="card-1", clock_id="task:A-batch-T2", application_id="A-batch", task_id="A-batch-T2",
            department="LD-D2", colour="yellow", reason="near_deadline", deadline_key="promised:2026-03-06",
            deadline_at=_instant("2026-03-06T23:59:59"), raised_at=_instant("2026-03-04T12:00:00")))
        await s.execute(supervision_item.insert().values(
            dedupe_key="card:card-1", kind="yellow_card", is_case=False, card_id="card-1", application_id="A-batch",
            department="LD-D2", detail="warning", state="open", opened_at=_instant("2026-03-04T12:00:00")))


def _instant(s: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(at(s))


async def _state(db: Database) -> dict[str, Any]:
    async with db.transaction() as s:
        clocks = [tuple(r) for r in (await s.execute(
            select(clock.c.clock_id, clock.c.application_id, clock.c.task_id, clock.c.kind, clock.c.department,
                   clock.c.state, clock.c.watch_on, clock.c.body).order_by(clock.c.clock_id))).all()]
        kpis = [(r.application_id, r.body, r.anchor_on, r.on_time, r.used_workdays, r.visits, r.corrections)
                for r in (await s.execute(select(application_fact).order_by(application_fact.c.application_id)))]
        cases = [(r.application_id, r.applicant, r.applicant_key, r.department, r.item_code, r.accepted_at)
                 for r in (await s.execute(select(case_file).order_by(case_file.c.application_id)))]
        facts = [(r.application_id, r.event_id) for r in (await s.execute(
            select(case_event.c.application_id, case_event.c.event_id)
            .order_by(case_event.c.application_id, case_event.c.id)))]
        items = [(r.dedupe_key, r.kind, r.is_case, r.application_id, r.department, r.detail, r.state)
                 for r in (await s.execute(select(supervision_item).order_by(supervision_item.c.id)))]
        cards = [(r.card_id, r.cleared_at is not None) for r in (await s.execute(select(card)))]
    return dict(clocks=clocks, kpis=kpis, cases=cases, facts=facts, items=items, cards=cards)


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
async def test_events_applied_in_batches_leave_what_they_leave_one_at_a_time(two, seed):
    one_by_one, batched = two
    events = _events()
    for db in two:
        await _seed_cards(db)
    for e in events:
        async with one_by_one.transaction() as s:
            await record_case_event(s, e)
    # All in one batch, or cut at random places (a batch ends anywhere: at a fetch's size, or what had arrived).
    cuts = sorted(random.Random(seed).sample(range(1, len(events)), 6)) if seed is not None else []
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        async with batched.transaction() as s:
            await record_case_events(s, events[start:end])
    expected, got = await _state(one_by_one), await _state(batched)
    assert expected["items"] and expected["cards"] == [("card-1", True)], "the scenario raises items, clears"
    assert any(k == "repeated_application" for _, k, *_ in expected["items"])
    assert [a for _, k, _, a, *_ in expected["items"] if k == "material_asked_again"] == ["C-batch", "A-batch"]
    for key in expected:
        assert got[key] == expected[key], key


async def test_batches_of_any_size_reuse_one_compiled_fact_and_clock_statement(two):
    """On PostgreSQL the fact insert (with its read back) and the clock upsert (with its card clearing) take their
    rows as arrays: one statement text whatever the number of events or clocks, compiled once and then taken from
    SQLAlchemy's cache (a multi-row VALUES is never cached, and compiling it was most of the consumer's CPU).
    SQLite keeps a row per VALUES tuple: one text per number of rows."""
    from sqlalchemy import event as sa_event

    _, db = two
    seen: list[tuple[str, str]] = []

    def note(_conn, _cursor, statement, _params, context, _many):  # type: ignore[no-untyped-def]
        for mark in ("INSERT INTO case_event", "INSERT INTO clock"):
            if mark in statement:
                seen.append((mark, str(context.cache_hit)))

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        for n, size in enumerate((1, 3, 5, 2)):
            a = f"SIZE-{n}"
            events = [submitted(a, "2026-03-02T08:00:00"), accepted(a, "2026-03-02T09:00:00", person=a, hid=a),
                      *(assigned(a, f"{a}-T{k}", "2026-03-03T09:00:00", department=f"LD-D{k}") for k in range(1, 6)),
                      *(task_decided(a, f"{a}-T{k}", "2026-03-04T09:00:00") for k in range(1, 6))]
            for start in range(0, len(events), size):
                async with db.transaction() as s:
                    await record_case_events(s, events[start:start + size])
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    # The clock upsert comes in two shapes: carrying the card clearing (once a clock has stopped) or not.
    for mark, shapes in (("INSERT INTO case_event", 1), ("INSERT INTO clock", 2)):
        hits = [h for m, h in seen if m == mark]
        assert len(hits) > 10, mark
        if db.engine.dialect.name == "postgresql":
            # Compiled at most once per shape (none when another test in this process compiled it already).
            assert set(hits) <= {"CacheStats.CACHE_HIT", "CacheStats.CACHE_MISS"}, mark
            assert hits.count("CacheStats.CACHE_MISS") <= shapes, mark
        else:
            assert "CacheStats.NO_CACHE_KEY" in hits, mark


async def test_an_application_written_by_another_transaction_while_waiting_for_its_lock_is_read_again(two):
    """Two consumers on one application (intake's and workflow's): the second waits for the first's lock inside
    the statement that also reads the facts, whose snapshot predates the first's commit. It then reads the row and
    the facts again, and leaves what the two leave one after the other."""
    import asyncio

    from sqlalchemy import event as sa_event

    one_by_one, raced = two
    app = "RACE-1"
    first = [submitted(app, "2026-03-02T08:00:00"), accepted(app, "2026-03-02T09:00:00", person=app, hid=app),
             assigned(app, f"{app}-T1", "2026-03-03T09:00:00")]
    second = [task_decided(app, f"{app}-T1", "2026-03-04T09:00:00"), decided(app, "2026-03-05T09:00:00")]
    for batch in (first[:1], first[1:], second):
        async with one_by_one.transaction() as s:
            await record_case_events(s, batch)
    async with raced.transaction() as s:
        await record_case_events(s, first[:1])
    seen: list[str] = []

    def note(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa_event.listen(raced.engine.sync_engine, "before_cursor_execute", note)
    try:
        async with raced.transaction() as s:
            await record_case_events(s, first[1:])

            async def later() -> None:
                async with raced.transaction() as s2:
                    await record_case_events(s2, second)

            waiting = asyncio.ensure_future(later())
            await asyncio.sleep(0.5)  # the second is inside its statement, waiting for the lock
            assert not waiting.done()
        await waiting
    finally:
        sa_event.remove(raced.engine.sync_engine, "before_cursor_execute", note)
    if raced.engine.dialect.name == "postgresql":
        assert sum(t.startswith("SELECT case_file") for t in seen) == 1, "read again after the lock"
    expected, got = await _state(one_by_one), await _state(raced)
    assert [c for c in expected["clocks"] if c[0] == f"task:{app}-T1"][0][5] == "stopped"
    for key in expected:
        assert got[key] == expected[key], key


async def test_a_batch_of_many_applications_costs_two_statements_on_postgresql(two):
    """Issue 14: a batch's applications are locked, written, kept and read by one statement, and their clocks,
    cards cleared and KPI rows written by one more (PostgreSQL), however many applications the batch holds, and
    it leaves what the events leave one at a time. Two acceptances of the same applicant and item (重复提交) in
    one batch take a statement each: the later one must see the earlier one's row."""
    from shared.testing import recording_statements

    one_by_one, batched = two
    apps = [f"MANY-{n}" for n in range(8)]
    tasks = {a: [f"{a}-T{k}" for k in range(1, 6)] for a in apps}
    again = ["MANY-R1", "MANY-R2"]
    batches = [
        [*(submitted(a, "2026-03-02T08:00:00") for a in apps),
         *(accepted(a, "2026-03-02T09:00:00", person=a, hid=f"H-{a}") for a in apps)],
        [assigned(a, t, "2026-03-03T09:00:00", department=f"LD-D{k}")
         for k in range(1, 6) for a in apps for t in tasks[a][k - 1:k]],
        [*(task_decided(a, t, "2026-03-04T09:00:00") for a in apps for t in tasks[a]),
         *(decided(a, "2026-03-05T09:00:00") for a in apps), *(delivered(a, "2026-03-05T10:00:00") for a in apps)],
        [accepted(a, "2026-03-06T09:00:00", person="p-again", hid="H-again") for a in again],
    ]
    for db in two:
        async with db.transaction() as s:
            await s.execute(card.insert().values(
                card_id="card-many", clock_id=f"task:{tasks[apps[3]][2]}", application_id=apps[3],
                task_id=tasks[apps[3]][2], department="LD-D3", colour="yellow", reason="near_deadline",
                deadline_key="promised:2026-03-06", deadline_at=_instant("2026-03-06T23:59:59"),
                raised_at=_instant("2026-03-04T08:00:00")))
    for batch in batches:
        for e in batch:
            async with one_by_one.transaction() as s:
                await record_case_event(s, e)
    counts = []
    for batch in batches:
        with recording_statements(batched.engine) as log:
            async with batched.transaction() as s:
                await record_case_events(s, batch)
        counts.append(len([t for t in log.texts if not t.startswith("SELECT calendar_year")]))
    expected, got = await _state(one_by_one), await _state(batched)
    assert len({c[1] for c in expected["clocks"]}) == len(apps) + len(again)
    assert [c for c in expected["clocks"] if c[0] == f"application:{apps[0]}"][0][5] == "stopped"
    assert ("card-many", True) in expected["cards"]
    assert [(k, a) for _, k, _, a, *_ in expected["items"]] == [("repeated_application", again[1])]
    for key in expected:
        assert got[key] == expected[key], key
    if batched.engine.dialect.name == "postgresql":
        assert counts == [2, 2, 2, 3], counts


async def test_a_certificate_rides_in_the_case_consumers_batch(two):
    """Issue 14: datashare's certificates (for expiry reminders) are taken by the case consumer, in the batch and
    the transaction of the case events around them (a consumer of their own paid a transaction and an inbox claim
    per case), and on PostgreSQL in the statement that writes the batch's clocks; a certificate naming its
    application is not kept as one of the application's facts."""
    from services.efficacy.events.handlers import CONSUMERS, on_case_events
    from services.efficacy.store.tables import certificate

    consumer = next(c for c in CONSUMERS if c.name == "efficacy-case-events")
    assert consumer.batch_handler is on_case_events
    assert consumer.wants("yimen.datashare.certificate.issued") and consumer.wants("yimen.datashare.certificate.revoked")
    assert [c.name for c in CONSUMERS if c.subject.startswith("yimen.datashare.certificate")] == []
    _, db = two
    app = "CERT-1"

    def issued(number: str) -> Event:
        return new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject=number, data={
            "certificate_number": number, "type_code": "11441781MB0000001A002", "type_name": "食品经营许可证",
            "holder_id": "445381199001011234", "holder_kind": "person", "holder_name": "张三",
            "issuer_department": "LD-SCJGJ", "application_id": app, "issued_on": "2026-03-05",
            "valid_until": "2029-03-04"})
    revoked = new_event("yimen.datashare.certificate.revoked", source="/yimen/datashare", subject="CERT-B",
                        data={"certificate_number": "CERT-B", "reason": "x", "revoked_at": "2026-03-06"})
    from shared.testing import recording_statements

    with recording_statements(db.engine) as log:
        async with db.transaction() as s:
            await on_case_events(s, [accepted(app, "2026-03-02T09:00:00"), decided(app, "2026-03-05T09:00:00"),
                                     issued("CERT-A"), issued("CERT-B"), delivered(app, "2026-03-05T10:00:00")])
    if db.engine.dialect.name == "postgresql":
        # The issued certificates ride in the statement writing the batch's clocks.
        ran = [t for t in log.texts if not t.startswith("SELECT calendar_year")]
        assert len(ran) == 2 and "INSERT INTO certificate" in ran[1], ran
    # A revocation (it may come before its issue: it must stay) is applied as it comes.
    async with db.transaction() as s:
        await on_case_events(s, [revoked, issued("CERT-B"), issued("CERT-C")])
    async with db.transaction() as s:
        certificates = {r.certificate_number: r.revoked for r in (await s.execute(select(certificate)))}
        facts = (await s.execute(select(case_event.c.type).where(case_event.c.application_id == app))).scalars().all()
        clocks = (await s.execute(select(clock.c.state).where(clock.c.application_id == app))).scalars().all()
    assert certificates == {"CERT-A": False, "CERT-B": True, "CERT-C": False}
    assert sorted(facts) == sorted(["yimen.intake.application.accepted", "yimen.workflow.application.decided",
                                    "yimen.intake.application.delivered"])
    assert clocks and all(state == "stopped" for state in clocks)


def test_a_gathered_batch_holds_several_cases_events():
    """Issue 14: the case consumer's batch is what arrives within its gathering window, not the worker's default of
    20 messages: a five-department case alone is 17 events, so at 20 every case cost a transaction and its three
    statements (bench, 10 clients: 1.0 per case)."""
    from services.efficacy.events.handlers import CASE_GATHER_SECONDS, CONSUMERS
    from services.efficacy.store.tables import messaging
    from shared.bus import Bus
    from shared.messaging import InboxConsumer

    consumer = next(c for c in CONSUMERS if c.name == "efficacy-case-events")
    worker = InboxConsumer(None, messaging, consumer, Bus("nats://127.0.0.1:1", prefix="unused")).worker()  # type: ignore[arg-type]
    assert worker.gather == CASE_GATHER_SECONDS
    assert worker.batch >= 10 * 17, "ten five-department cases' events in one batch"
