"""The outbox and inbox statements are built once and take any number of rows (arrays on PostgreSQL), and they keep
exactly what the multi-row statements did: each event applied once however it is redelivered (in a later batch,
twice inside one batch, to two replicas at once), and the outbox's seq in the order the events were written."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.engine import default

from shared.events import new_event
from shared.messaging import (
    Consumer,
    InboxConsumer,
    OutboxRelay,
    claim_in_inbox,
    complete_key_at_commit,
    emit,
    emit_many,
)
from shared.types import utcnow

from .conftest import effects, messaging, record_effect


def _event(n: int):
    return new_event("yimen.test.thing.happened", source="/yimen/test", subject=f"thing-{n}", data={"n": n})


@contextmanager
def _statements(db) -> Iterator[list[str]]:
    """Every statement text the database is sent while the block runs; a compiled one (not found in SQLAlchemy's
    cache) is marked with a leading `*`."""
    texts: list[str] = []

    def seen(_conn, _cursor, statement, _parameters, context, _many):
        texts.append(("*" if context.cache_hit != default.CACHE_HIT else "") + statement)

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield texts
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", seen)


def _touching(texts: list[str], prefix: str) -> set[str]:
    return {t.lstrip("*") for t in texts if t.lstrip("*").startswith(prefix)}


async def test_a_redelivered_batch_and_duplicates_inside_a_batch_apply_nothing_twice(db, bus):
    consumer = InboxConsumer(db, messaging, Consumer("c-stmts", "yimen.test.>", record_effect), bus)
    events = [_event(n) for n in range(6)]
    assert await consumer.apply_batch(events[:3]) == 3
    # Overlapping the first batch, with an event twice and one three times inside it.
    again = [events[2], events[3], events[3], events[1], events[4], events[4], events[4]]
    assert await consumer.apply_batch(again) == 2
    assert not await consumer.apply(events[4]), "applied in the batch before"
    assert await consumer.apply(events[5])
    assert await consumer.apply_batch(list(reversed(events)) * 2) == 0, "the whole stream redelivered"
    applied = await effects(db)
    assert sorted(applied) == sorted(e.id for e in events) and len(applied) == 6


async def test_two_replicas_applying_overlapping_batches_at_once_apply_each_event_once(db, bus):
    """The redelivery that races: the same events in two transactions at once. The inbox's key decides; the
    loser's insert skips what the winner committed and its handler never sees those events."""
    events = [_event(100 + n) for n in range(8)]
    replicas = [InboxConsumer(db, messaging, Consumer("c-race", "yimen.test.>", record_effect), bus)
                for _ in range(2)]
    counts = await asyncio.gather(replicas[0].apply_batch(events[:6]), replicas[1].apply_batch(events[2:]))
    assert sum(counts) == len(events)
    applied = await effects(db)
    assert sorted(applied) == sorted(e.id for e in events), "each event once"


async def test_the_inbox_claim_returns_only_the_ids_new_to_this_consumer(db):
    first, second, third = _event(1), _event(2), _event(3)
    async with db.transaction() as s:
        assert await claim_in_inbox(s, messaging.inbox, "c-a", [first, second]) == {first.id, second.id}
    async with db.transaction() as s:
        assert await claim_in_inbox(s, messaging.inbox, "c-a", [second, third, first]) == {third.id}
        assert await claim_in_inbox(s, messaging.inbox, "c-a", [third]) == set(), "inside the same transaction"
        assert await claim_in_inbox(s, messaging.inbox, "c-b", [first]) == {first.id}, "another consumer's inbox"
    async with db.transaction() as s:
        rows = (await s.execute(select(messaging.inbox.c.consumer, messaging.inbox.c.event_id,
                                       messaging.inbox.c.event_type).order_by(messaging.inbox.c.consumer))).all()
    assert sorted(rows) == sorted([("c-a", first.id, first.type), ("c-a", second.id, second.type),
                                   ("c-a", third.id, third.type), ("c-b", first.id, first.type)])


async def test_events_of_one_transaction_take_seqs_in_the_order_they_were_written(db, bus):
    written = [_event(n) for n in range(7)]
    async with db.transaction() as s:
        await emit(s, written[0])
        await emit(s, written[1])
        await emit_many(s, written[2:5])  # after the two held ones, in one statement with them
        await emit(s, written[5])
        await emit(s, written[6])
    async with db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.event_id, messaging.outbox.c.payload,
                                       messaging.outbox.c.published_at).order_by(messaging.outbox.c.seq))).all()
    assert [r.event_id for r in rows] == [e.id for e in written]
    assert [json.loads(r.payload)["data"]["n"] for r in rows] == list(range(7))
    assert all(r.published_at is None for r in rows)


async def test_the_statements_are_one_text_whatever_the_batch_size(db, bus):
    """On PostgreSQL the inbox insert, the outbox insert and the relay's mark are each one text for 1, 2, 3 or 5
    rows, compiled once (the first time: the statements may be in the cache from an earlier test already); SQLite
    writes the outbox with one executemany text and marks with an expanded list."""
    consumer = InboxConsumer(db, messaging, Consumer("c-texts", "yimen.test.>", record_effect), bus)
    relay = OutboxRelay(db, bus, messaging)
    n = 0
    with _statements(db) as texts:
        for size in (1, 2, 3, 5):
            batch = [_event(n + k) for k in range(size)]
            n += size
            assert await consumer.apply_batch(batch) == size
            async with db.transaction() as s:
                for e in batch:
                    await emit(s, e)
            assert await relay.publish_pending() == size
    async with db.transaction() as s:
        unpublished = (await s.execute(select(func.count()).select_from(messaging.outbox)
                                       .where(messaging.outbox.c.published_at.is_(None)))).scalar_one()
    assert unpublished == 0
    assert len(_touching(texts, "INSERT INTO outbox")) == 1
    compiled = [t for t in texts if t.startswith("*") and ("outbox" in t or "inbox" in t)]
    if db.engine.dialect.name == "postgresql":
        assert len(compiled) <= 4, "the relay's read, its mark and the two inserts: once each"
        assert len(_touching(texts, "INSERT INTO inbox")) == 1
        assert len(_touching(texts, "UPDATE outbox")) == 1
        assert "unnest" in next(iter(_touching(texts, "INSERT INTO inbox")))
    else:
        assert len(_touching(texts, "UPDATE outbox")) == 4, "SQLite expands the list: one text per size"


async def _key_row(db, key: str):
    t = messaging.idempotency
    async with db.transaction() as s:
        return (await s.execute(select(t.c.status_code, t.c.response_body, t.c.completed_at)
                                .where(t.c.scope == "s", t.c.key == key))).one_or_none()


async def _claimed(db, key: str) -> None:
    async with db.transaction() as s:
        await s.execute(messaging.idempotency.insert().values(scope="s", key=key, request_hash="h",
                                                              created_at=utcnow()))


async def test_an_idempotency_key_completes_with_the_commit_inside_the_outbox_insert_or_not_at_all(db, bus):
    """The key's answer rides in the commit's outbox insert on PostgreSQL (one statement for both); a transaction
    with no events writes it alone; a rollback keeps neither the answer nor the events."""
    pg = db.engine.dialect.name == "postgresql"
    for key in ("with-events", "without", "rolled-back"):
        await _claimed(db, key)
    e = _event(1)
    with _statements(db) as texts:
        async with db.transaction() as s:
            await emit(s, e)
            complete_key_at_commit(s, messaging.idempotency, scope="s", key="with-events", status=201,
                                   body='{"a":1}')
    row = await _key_row(db, "with-events")
    assert (row.status_code, row.response_body) == (201, '{"a":1}') and row.completed_at is not None
    written = [" ".join(t.lstrip("*").split()) for t in texts]
    if pg:
        assert len(written) == 1 and written[0].startswith("WITH key_done AS (UPDATE idempotency_key"), written
        assert "INSERT INTO outbox" in written[0]
    async with db.transaction() as s:
        complete_key_at_commit(s, messaging.idempotency, scope="s", key="without", status=200, body="{}")
    assert (await _key_row(db, "without")).status_code == 200
    lost = _event(2)
    try:
        async with db.transaction() as s:
            await emit(s, lost)
            complete_key_at_commit(s, messaging.idempotency, scope="s", key="rolled-back", status=200, body="{}")
            raise RuntimeError("the work fails after the answer was noted")
    except RuntimeError:
        pass
    assert (await _key_row(db, "rolled-back")).completed_at is None
    async with db.transaction() as s:  # and the next transaction of the session's kind carries nothing over
        await emit(s, _event(3))
    assert (await _key_row(db, "rolled-back")).completed_at is None
    async with db.transaction() as s:
        ids = set((await s.execute(select(messaging.outbox.c.event_id))).scalars())
    assert e.id in ids and lost.id not in ids


async def test_a_relay_round_is_one_statement_on_postgresql(db, bus):
    """PostgreSQL's relay takes and marks its rows in one `UPDATE … RETURNING` (the publish comes before the
    commit, so a failed publish rolls the mark back: test_outbox_and_inbox); SQLite reads and then marks."""
    relay = OutboxRelay(db, bus, messaging)
    async with db.transaction() as s:
        for n in range(3):
            await emit(s, _event(500 + n))
    with _statements(db) as texts:
        assert await relay.publish_pending() == 3
    outbox = [t.lstrip("*") for t in texts if "outbox" in t]
    if db.engine.dialect.name == "postgresql":
        assert len(outbox) == 1 and outbox[0].startswith("UPDATE outbox") and "SKIP LOCKED" in outbox[0]
    else:
        assert [t.split()[0] for t in outbox] == ["SELECT", "UPDATE"]
    async with db.transaction() as s:
        left = (await s.execute(select(func.count()).select_from(messaging.outbox)
                                .where(messaging.outbox.c.published_at.is_(None)))).scalar_one()
    assert left == 0
