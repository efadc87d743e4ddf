"""A fetched batch of events is applied in one transaction with its inbox rows, and still exactly once:
events applied before are skipped, a failure anywhere in the batch commits nothing of it (the worker then
goes through it one message at a time), and a redelivered batch is a no-op. A consumer that declares the
event types it needs acknowledges the others without a transaction."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from shared.events import new_event
from shared.messaging import Consumer, InboxConsumer
from shared.testing import eventually

from .conftest import effects, messaging, record_effect


def _event(n: int, kind: str = "thing.happened"):
    return new_event(f"yimen.test.{kind}", source="/yimen/test", subject=f"thing-{n}", data={"n": n})


async def _inbox_rows(db, consumer: str) -> int:
    async with db.transaction() as s:
        return (await s.execute(select(func.count()).select_from(messaging.inbox)
                                .where(messaging.inbox.c.consumer == consumer))).scalar_one()


async def test_a_batch_applies_each_new_event_once_and_skips_those_applied_before(db, bus):
    consumer = InboxConsumer(db, messaging, Consumer("c-batch", "yimen.test.>", record_effect), bus)
    first, second, third = _event(1), _event(2), _event(3)
    assert await consumer.apply(first)
    # The same event twice in one batch (redelivered while the batch was fetched) and one applied before.
    assert await consumer.apply_batch([first, second, second, third]) == 2
    assert sorted(await effects(db)) == sorted([first.id, second.id, third.id])
    assert await consumer.apply_batch([first, second, third]) == 0, "a redelivered batch is a no-op"
    assert len(await effects(db)) == 3
    assert await _inbox_rows(db, "c-batch") == 3


async def test_a_failure_in_the_middle_of_a_batch_commits_nothing_of_it(db, bus):
    events = [_event(n) for n in range(4)]

    async def fails_on_the_third(session, event):
        await record_effect(session, event)
        if event.data["n"] == 2:
            raise RuntimeError("crash in the middle of the batch")

    consumer = InboxConsumer(db, messaging, Consumer("c-crash", "yimen.test.>", fails_on_the_third), bus)
    try:
        await consumer.apply_batch(events)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert await effects(db) == [], "the effects of the events before the failure were rolled back too"
    assert await _inbox_rows(db, "c-crash") == 0, "and so were their inbox rows: they will be applied again"


async def test_a_worker_falls_back_to_one_by_one_and_applies_every_good_event_exactly_once(db, bus):
    """Published together, fetched as one batch; one poison event among them. The batch fails, the worker
    applies the good ones one at a time, and the poison one ends in the dead-letter subject."""
    events = [_event(n) for n in range(6)]
    poison = events[3].id
    calls: dict[str, int] = {}

    async def handler(session, event):
        calls[event.id] = calls.get(event.id, 0) + 1
        if event.id == poison:
            raise ValueError("cannot handle this payload")
        await record_effect(session, event)

    for e in events:
        await bus.publish(e)
    worker = InboxConsumer(db, messaging, Consumer("c-mixed", "yimen.test.>", handler), bus, max_deliver=2).worker()
    task = asyncio.create_task(worker.run())
    try:
        good = sorted(e.id for e in events if e.id != poison)
        await eventually(lambda: _effects_are(db, good), timeout=20)
        letters = await eventually(lambda: bus.dead_letters("c-mixed"), timeout=20)
        assert len(letters) == 1 and poison in letters[0]["data"]
        assert sorted(await effects(db)) == good, "each good event applied exactly once"
        assert calls[events[0].id] >= 2, "the first try was the batch, rolled back; then one by one"
    finally:
        worker.stop()
        await task


async def _effects_are(db, expected):
    return sorted(await effects(db)) == expected


async def test_a_consumer_acknowledges_the_types_it_does_not_need_without_a_transaction(db, bus):
    seen: list[str] = []

    async def handler(session, event):
        seen.append(event.type)
        await record_effect(session, event)

    wanted, other = _event(1, "thing.happened"), _event(2, "thing.ignored")
    consumer = Consumer("c-types", "yimen.test.>", handler, types=frozenset({"yimen.test.thing.happened"}))
    await bus.publish(other)
    await bus.publish(wanted)
    worker = InboxConsumer(db, messaging, consumer, bus).worker()
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _effects_are(db, [wanted.id]), timeout=15)
        await eventually(lambda: _all_acked(bus, "c-types"), timeout=10)
        assert seen == ["yimen.test.thing.happened"]
        assert await _inbox_rows(db, "c-types") == 1, "no inbox row for an event that was not applied"
    finally:
        worker.stop()
        await task


async def _all_acked(bus, durable):
    info = await bus.js.consumer_info(bus.names.stream, durable)
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_each_handler_of_a_batch_reads_what_the_one_before_wrote_not_a_stale_object(db, bus):
    """Handlers of one batch share a transaction, not their loaded objects: a row changed by a core UPDATE in
    one handler is read fresh by the next (as in a session of its own)."""
    from sqlalchemy import Column, Integer, String, update
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    class Counter(Base):
        __tablename__ = "batch_counter"
        id = Column(String(20), primary_key=True)
        value = Column(Integer, nullable=False)

    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.transaction() as s:
        s.add(Counter(id="c", value=0))
    seen: list[int] = []
    held: list[Counter] = []  # something keeps the loaded object alive (a relationship, a cache, a list)

    async def bump(session, event):
        row = (await session.execute(select(Counter).where(Counter.id == "c"))).scalar_one()
        held.append(row)
        seen.append(row.value)
        await session.execute(update(Counter).where(Counter.id == "c").values(value=row.value + 1)
                              .execution_options(synchronize_session=False))

    consumer = InboxConsumer(db, messaging, Consumer("c-fresh", "yimen.test.>", bump), bus)
    assert await consumer.apply_batch([_event(n) for n in range(3)]) == 3
    assert seen == [0, 1, 2]


async def test_a_batch_handler_gets_the_new_events_at_once_and_the_fallback_goes_one_by_one(db, bus):
    """A consumer with a batch handler is handed a batch's new events in one call, in order, in the batch's
    transaction (redelivered ones and those applied before left out); a failure rolls back all of it, inbox rows
    included, and a single event (the worker's fallback) goes to the per-event handler."""
    calls: list[list[int]] = []
    singles: list[int] = []

    async def each(session, event):
        singles.append(event.data["n"])
        await record_effect(session, event)

    async def together(session, events):
        calls.append([e.data["n"] for e in events])
        for e in events:
            await record_effect(session, e)
        if any(e.data["n"] == 99 for e in events):
            raise RuntimeError("crash after the effects of the batch")

    consumer = InboxConsumer(db, messaging, Consumer("c-together", "yimen.test.>", each, batch_handler=together),
                             bus)
    first, second, third = _event(1), _event(2), _event(3)
    assert await consumer.apply(first)
    assert singles == [1], "one event alone goes to the per-event handler"
    assert await consumer.apply_batch([first, second, second, third]) == 2
    assert calls == [[2, 3]], "one call, in order, without the event applied before nor the duplicate"
    assert await consumer.apply_batch([first, second, third]) == 0
    assert calls == [[2, 3]], "a redelivered batch does not reach the handler"

    poison = _event(99)
    fourth = _event(4)
    try:
        await consumer.apply_batch([fourth, poison])
    except RuntimeError:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert sorted(await effects(db)) == sorted([first.id, second.id, third.id]), "nothing of the failed batch"
    assert await _inbox_rows(db, "c-together") == 3
    assert await consumer.apply(fourth), "the fallback applies the good one alone"
    assert singles == [1, 4]
    assert sorted(await effects(db)) == sorted([first.id, second.id, third.id, fourth.id])


def _recording():
    """A consumer's two handlers that record each call's events (`[n]` one at a time, `[n, …]` a batch) and apply
    them: what a test of batching compares."""
    calls: list[list[int]] = []

    async def each(session, event):
        calls.append([event.data["n"]])
        await record_effect(session, event)

    async def together(session, events):
        calls.append([e.data["n"] for e in events])
        for e in events:
            await record_effect(session, e)

    return calls, each, together


async def test_a_consumer_that_gathers_applies_a_burst_in_one_batch(db, bus):
    """`Consumer.gather`: once busy, a batch is what arrives within that many seconds, so events published a
    little apart (a case's task events) are applied in one transaction; each still exactly once."""
    calls, each, together = _recording()

    consumer = Consumer("c-gather", "yimen.test.>", each, batch_handler=together, gather=3.0)
    worker = InboxConsumer(db, messaging, consumer, bus).worker()
    task = asyncio.create_task(worker.run())
    try:
        first = _event(0)
        await bus.publish(first)
        await eventually(lambda: _effects_are(db, [first.id]), timeout=15)
        burst = [_event(n) for n in range(1, 4)]
        for e in burst:
            await bus.publish(e)
            await asyncio.sleep(0.2)  # four times a busy pull's wait: without gathering, three transactions
        await eventually(lambda: _effects_are(db, sorted(e.id for e in [first, *burst])), timeout=15)
        assert calls == [[0], [1, 2, 3]], calls
    finally:
        worker.stop()
        await task


async def test_a_consumer_takes_as_many_events_in_one_batch_as_it_declares(db, bus):
    """`Consumer.batch`: a gathering consumer whose batch costs one statement for all its events takes more than
    the worker's default of 20 in one transaction (a five-department case alone is 17 events); each still once."""
    calls, each, together = _recording()

    consumer = Consumer("c-big", "yimen.test.>", each, batch_handler=together, gather=3.0, batch=60)
    worker = InboxConsumer(db, messaging, consumer, bus).worker()
    assert worker.batch == 60
    task = asyncio.create_task(worker.run())
    try:
        first = _event(0)
        await bus.publish(first)
        await eventually(lambda: _effects_are(db, [first.id]), timeout=15)
        burst = [_event(n) for n in range(1, 46)]
        await bus.publish_batch([(bus.names.subject(e.type), e.to_json(), e.id) for e in burst])
        await eventually(lambda: _effects_are(db, sorted(e.id for e in [first, *burst])), timeout=15)
        assert calls == [[0], list(range(1, 46))], calls
        assert await _inbox_rows(db, "c-big") == 46
    finally:
        worker.stop()
        await task


async def test_a_gathering_window_is_one_pull_request_however_its_burst_arrives(db, bus):
    """A gathered window asks the server once and takes what arrives until it ends: a burst arriving in parts (a
    case's tasks assigned, then decided one by one) cost a pull request and its status reply per part, as each
    `no_wait` fetch ended once what was there had been handed over."""
    calls, each, together = _recording()

    consumer = Consumer("c-one-pull", "yimen.test.>", each, batch_handler=together, gather=2.0, batch=50)
    worker = InboxConsumer(db, messaging, consumer, bus).worker()
    pulls: list[float] = []
    publish = bus.nc.publish

    async def counting(subject, *args, **kwargs):
        if subject.startswith("$JS.API.CONSUMER.MSG.NEXT"):
            pulls.append(asyncio.get_running_loop().time())
        return await publish(subject, *args, **kwargs)

    bus.nc.publish = counting
    task = asyncio.create_task(worker.run())
    try:
        first = _event(0)
        await bus.publish(first)
        await eventually(lambda: _effects_are(db, [first.id]), timeout=15)
        await asyncio.sleep(0.1)  # the window after the first has begun
        started, asked = asyncio.get_running_loop().time(), len(pulls)
        parts = [[_event(n) for n in range(1 + 3 * p, 4 + 3 * p)] for p in range(3)]
        for part in parts:
            await bus.publish_batch([(bus.names.subject(e.type), e.to_json(), e.id) for e in part])
            await asyncio.sleep(0.3)
        burst = [e for part in parts for e in part]
        await eventually(lambda: _effects_are(db, sorted(e.id for e in [first, *burst])), timeout=15)
        assert calls == [[0], [e.data["n"] for e in burst]], calls
        during = [t for t in pulls[asked:] if t < started + 1.5]
        assert len(during) <= 1, f"{len(during)} pull requests for one window"
    finally:
        worker.stop()
        await task
        bus.nc.publish = publish


async def test_what_a_window_leaves_behind_is_applied_by_the_next(db, bus):
    """A window shorter than the server's answer: what the server delivers after its reader stopped waiting, and
    the status reply that ends the request, wait in the queue; the next window applies the messages (each once) and
    drops the status."""
    from shared.bus import PullWorker

    seen: list[int] = []

    async def each(session, event):
        seen.append(event.data["n"])
        await record_effect(session, event)

    worker = InboxConsumer(db, messaging, Consumer("c-late", "yimen.test.>", each), bus).worker()
    sub = await worker._subscribe()
    events = [_event(n) for n in range(5)]
    await bus.publish_batch([(bus.names.subject(e.type), e.to_json(), e.id) for e in events])
    got = await PullWorker._within(sub, 10, 0.3)  # five there, then the window's end (its 408)
    await asyncio.sleep(0.5)
    got += await PullWorker._within(sub, 10, 0.3)
    assert sorted(m.metadata.sequence.stream for m in got) == sorted({m.metadata.sequence.stream for m in got})
    assert len(got) == 5
    for m in got:
        await worker._one(m)
    assert sorted(seen) == list(range(5))


def _filters_by_type(bus) -> bool:
    version = bus.nc.connected_server_version
    return (version.major, version.minor) >= (2, 10)


async def test_a_typed_consumer_is_delivered_only_its_types_where_the_server_filters_by_several_subjects(db, bus):
    """A message nobody applies still costs a delivery, a parse and an ack: nats-server 2.10+ filters a durable by
    each needed type, so the others never leave the server. An existing durable over the whole subject is
    narrowed when a worker binds it again; an older server keeps the broad filter and the worker skips."""
    seen: list[str] = []

    async def handler(session, event):
        seen.append(event.type)
        await record_effect(session, event)

    wanted = "yimen.test.thing.happened"
    broad = InboxConsumer(db, messaging, Consumer("c-filter", "yimen.test.>", handler), bus).worker()
    await broad._subscribe()  # the durable as an earlier release made it: the whole subject
    typed = Consumer("c-filter", "yimen.test.>", handler,
                     types=frozenset({wanted, "yimen.test.thing.moved", "yimen.elsewhere.thing.happened"}))
    worker = InboxConsumer(db, messaging, typed, bus).worker()
    events = [_event(1, "thing.ignored"), _event(2), _event(3, "thing.ignored"), _event(4, "thing.moved")]
    for e in events:
        await bus.publish(e)
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _effects_are(db, sorted([events[1].id, events[3].id])), timeout=15)
        await eventually(lambda: _all_acked(bus, "c-filter"), timeout=10)
        assert seen == [wanted, "yimen.test.thing.moved"], "in the stream's order"
        info = await bus.js.consumer_info(bus.names.stream, "c-filter")
        if _filters_by_type(bus):
            assert sorted(info.config.filter_subjects or []) == sorted(
                bus.names.subject(t) for t in (wanted, "yimen.test.thing.moved")), "the type outside stays out"
            assert info.delivered.consumer_seq == 2, "the ignored events were never delivered"
        else:
            assert info.config.filter_subject == bus.names.subject("yimen.test.>")
        assert await _inbox_rows(db, "c-filter") == 2
    finally:
        worker.stop()
        await task


def test_subject_patterns_match_like_nats():
    from shared.bus import subject_matches

    assert subject_matches("yimen.>", "yimen.intake.application.accepted")
    assert not subject_matches("yimen.>", "yimen")
    assert subject_matches("yimen.workflow.task.*", "yimen.workflow.task.decided")
    assert not subject_matches("yimen.workflow.task.*", "yimen.workflow.task.decided.again")
    assert not subject_matches("yimen.workflow.task.*", "yimen.workflow.stage.completed")
    assert subject_matches("p.yimen.department.*.decision", "p.yimen.department.LD-WJJ.decision")
    assert not subject_matches("yimen.intake.>", "yimen.intakes.x")
