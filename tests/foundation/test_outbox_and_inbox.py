"""The outbox, the relay, the inbox and the JetStream consumers keep every event, and apply it once."""

from __future__ import annotations

import asyncio
from collections import Counter

from nats.aio.msg import Msg
from sqlalchemy import func, select

from shared.bus import PullWorker
from shared.events import new_event
from shared.messaging import Consumer, InboxConsumer, OutboxRelay, emit
from shared.testing import eventually

from .conftest import effect, effects, messaging, record_effect


def _event(n: int = 0):
    return new_event("yimen.test.thing.happened", source="/yimen/test", subject=f"thing-{n}", data={"n": n})


async def _outbox_rows(db):
    async with db.transaction() as s:
        return (await s.execute(select(func.count()).select_from(messaging.outbox))).scalar_one()


class CrashBeforeMark(OutboxRelay):
    """A relay that dies after JetStream acked the publish and before the outbox row was marked."""

    async def _mark(self, session, seqs):
        raise RuntimeError("killed between publish and mark")


async def test_event_written_with_state_change_is_applied_once_although_relay_died_before_marking(db, bus):
    ev = _event(1)
    async with db.transaction() as s:
        await s.execute(effect.insert().values(consumer="producer", event_id="state-change"))
        await emit(s, ev)

    crashing = CrashBeforeMark(db, bus, messaging)
    try:
        await crashing.publish_pending()
    except RuntimeError:
        pass
    # The row is still unpublished, so the next relay publishes it again.
    relay = OutboxRelay(db, bus, messaging)
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0

    results: list[str] = []
    consumer = InboxConsumer(db, messaging, Consumer("c-once", "yimen.test.>", record_effect), bus, ack_wait=1,
                             on_result=results.append)
    worker = consumer.worker()
    task = asyncio.create_task(worker.run())
    try:
        # Evidence, not a pause: the stream holds one message and the consumer acknowledged it, so no second
        # copy is left to arrive.
        info = await bus.js.stream_info(bus.names.stream)
        assert info.state.messages == 1, "JetStream dropped the second publish as a duplicate"
        await eventually(lambda: results.count("ok") == 1)
        assert (await effects(db)).count(ev.id) == 1
    finally:
        worker.stop()
        await task


async def _has(db, event_id):
    return event_id in await effects(db)


async def test_republished_event_past_the_duplicate_window_is_dropped_by_the_inbox(db, bus):
    ev = _event(2)
    results: list[str] = []
    consumer = InboxConsumer(db, messaging, Consumer("c-window", "yimen.test.>", record_effect), bus,
                             on_result=results.append)
    # Two publishes with different message ids model a republish after JetStream forgot the first id.
    await bus.publish_raw(bus.names.subject(ev.type), ev.to_json(), ev.id)
    await bus.publish_raw(bus.names.subject(ev.type), ev.to_json(), ev.id + "-again")
    worker = consumer.worker()
    task = asyncio.create_task(worker.run())
    try:
        # Both copies acknowledged (the second after the inbox dropped it): nothing more can arrive.
        await eventually(lambda: results.count("ok") == 2)
        assert (await effects(db)).count(ev.id) == 1
    finally:
        worker.stop()
        await task


async def test_relay_republishes_a_time_range_after_a_bus_failure(db, bus):
    from datetime import timedelta

    from shared.types import utcnow

    async with db.transaction() as s:
        for n in range(3):
            await emit(s, _event(n))
    relay = OutboxRelay(db, bus, messaging)
    assert await relay.publish_pending() == 3
    assert await relay.republish(utcnow() - timedelta(minutes=1), utcnow() + timedelta(minutes=1)) == 3
    assert await relay.publish_pending() == 3
    assert await _outbox_rows(db) == 3


class LoseFirstAck(PullWorker):
    """The consumer applies and commits, then its ack is lost once: JetStream redelivers."""

    lost = 0

    async def _one(self, msg: Msg) -> None:
        if msg.metadata.num_delivered == 1:
            await self.handle(msg)
            LoseFirstAck.lost += 1
            return
        await super()._one(msg)


async def test_lost_ack_redelivers_and_the_inbox_makes_it_a_no_op(db, bus):
    ev = _event(3)
    await bus.publish(ev)
    inbox = InboxConsumer(db, messaging, Consumer("c-lost-ack", "yimen.test.>", record_effect), bus)
    delivered: list[int] = []

    async def handle(msg: Msg) -> None:
        delivered.append(msg.metadata.num_delivered)
        await inbox.handle_msg(msg)

    worker = LoseFirstAck(bus, "c-lost-ack", "yimen.test.>", handle, ack_wait=1.0)
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: len(delivered) >= 2, timeout=15)
        assert delivered[:2] == [1, 2], "the unacked delivery came again"
        assert (await effects(db)).count(ev.id) == 1
        await eventually(lambda: _acked(bus), timeout=5)
    finally:
        worker.stop()
        await task


async def _acked(bus):
    info = await bus.js.consumer_info(bus.names.stream, "c-lost-ack")
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_two_replicas_share_one_durable_consumer_and_apply_each_event_once(db, bus):
    handled_by: Counter[str] = Counter()

    def make(replica: str) -> PullWorker:
        async def handler(session, event):
            handled_by[replica] += 1
            await record_effect(session, event)
            await asyncio.sleep(0.01)

        return PullWorker(
            bus, "c-replicas", "yimen.test.>",
            InboxConsumer(db, messaging, Consumer("c-replicas", "yimen.test.>", handler), bus).handle_msg,
            batch=1,
        )

    workers = [make("a"), make("b")]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    events = [_event(100 + n) for n in range(40)]
    try:
        for ev in events:
            await bus.publish(ev)
        await eventually(lambda: _count(db, 40), timeout=20)
        applied = await effects(db)
        assert sorted(applied) == sorted(e.id for e in events)
        assert handled_by["a"] > 0 and handled_by["b"] > 0, handled_by
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)


async def _count(db, n):
    return len(await effects(db)) >= n


async def test_poison_event_goes_to_dead_letters_after_the_bound_and_replays_once_fixed(db, bus):
    ev = _event(4)
    await bus.publish(ev)
    fixed = asyncio.Event()
    attempts = 0

    async def fragile(session, event):
        nonlocal attempts
        attempts += 1
        if not fixed.is_set():
            raise ValueError("cannot handle this payload")
        await record_effect(session, event)

    worker = InboxConsumer(db, messaging, Consumer("c-poison", "yimen.test.>", fragile), bus, max_deliver=3).worker()
    task = asyncio.create_task(worker.run())
    try:
        letters = await eventually(lambda: bus.dead_letters("c-poison"), timeout=20)
        assert attempts == 3
        assert letters[0]["subject"] == bus.names.subject(ev.type)
        assert "cannot handle" in letters[0]["error"]
        assert await effects(db) == []

        fixed.set()
        assert await bus.replay_dead_letters("c-poison") == 1
        await eventually(lambda: _has(db, ev.id), timeout=10)
        assert await bus.dead_letters("c-poison") == []
    finally:
        worker.stop()
        await task


async def test_malformed_payload_is_dead_lettered_not_retried_forever(db, bus):
    await bus.publish_raw(bus.names.subject("yimen.test.thing.happened"), b"{not json", "garbage-1")
    worker = InboxConsumer(db, messaging, Consumer("c-garbage", "yimen.test.>", record_effect), bus,
                           max_deliver=2).worker()
    task = asyncio.create_task(worker.run())
    try:
        letters = await eventually(lambda: bus.dead_letters("c-garbage"), timeout=15)
        assert letters[0]["data"] == "{not json"
    finally:
        worker.stop()
        await task


async def test_a_database_outage_is_retried_past_the_bound_and_never_dead_letters_a_good_event(db, bus):
    ev = _event(5)
    await bus.publish(ev)
    outage = {"left": 3}  # with max_deliver=2, a counted failure would have parked it

    async def during_outage(session, event):
        if outage["left"] > 0:
            outage["left"] -= 1
            raise ConnectionRefusedError("database restarting")
        await record_effect(session, event)

    worker = InboxConsumer(db, messaging, Consumer("c-outage", "yimen.test.>", during_outage), bus,
                           max_deliver=2).worker()
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _has(db, ev.id), timeout=30)
        assert await bus.dead_letters("c-outage") == []
    finally:
        worker.stop()
        await task


async def test_an_outage_does_not_use_up_the_deliveries_a_later_failure_of_the_handler_is_allowed(db, bus):
    """The bound is on the event's own failures. JetStream's delivery count includes the outage's: an event that
    waited out a PostgreSQL restart was parked by the first error of its handler after it (`make chaos`)."""
    ev = _event(7)
    await bus.publish(ev)
    script = [ConnectionRefusedError("database restarting")] * 3 + [ValueError("a glitch of the handler")]

    async def outage_then_a_glitch(session, event):
        if script:
            raise script.pop(0)
        await record_effect(session, event)

    worker = InboxConsumer(db, messaging, Consumer("c-after-outage", "yimen.test.>", outage_then_a_glitch), bus,
                           max_deliver=2).worker()
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _has(db, ev.id), timeout=30)
        assert await bus.dead_letters("c-after-outage") == []
        assert script == []
    finally:
        worker.stop()
        await task


async def test_an_event_whose_type_is_not_its_subject_is_dead_lettered_at_once_and_never_applied(db, bus):
    """NATS permissions vouch for the subject only: an event wrapped in another subject is a forgery."""
    forged = new_event("yimen.test.other.happened", source="/yimen/test", subject="thing-6", data={"n": 6})
    await bus.publish_raw(bus.names.subject("yimen.test.thing.happened"), forged.to_json(), forged.id)
    honest = _event(7)
    await bus.publish(honest)
    worker = InboxConsumer(db, messaging, Consumer("c-forged", "yimen.test.>", record_effect), bus,
                           max_deliver=5).worker()
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: _has(db, honest.id), timeout=15)
        letters = await eventually(lambda: bus.dead_letters("c-forged"), timeout=15)
        assert len(letters) == 1 and "undeliverable" in letters[0]["error"] and forged.id in letters[0]["data"]
        assert letters[0]["subject"] == bus.names.subject("yimen.test.thing.happened")
        assert await effects(db) == [honest.id]
        info = await bus.js.consumer_info(bus.names.stream, "c-forged")
        assert info.num_redelivered == 0, "parked on its first delivery, not retried"
    finally:
        worker.stop()
        await task


async def test_an_idle_relay_slows_its_poll_but_still_publishes_what_no_commit_announced(db, bus):
    """Rows written by another process (a crashed replica's leftovers) raise no signal here: the backed-off poll
    still finds them within `idle_interval`."""
    from shared.db import Database

    relay = OutboxRelay(db, bus, messaging, interval=0.05, idle_interval=0.4)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.0)  # idle: the poll is now at its slowest
        other = Database(db.url, info={"messaging": messaging})  # another engine: its commit wakes no one here
        try:
            async with other.transaction() as s:
                await emit(s, _event(7))
        finally:
            await other.dispose()
        assert not db.committed.is_set()
        await eventually(lambda: _outbox_rows_published(db), timeout=5)
    finally:
        relay.stop()
        task.cancel()


async def _outbox_rows_published(db) -> bool:
    async with db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.published_at))).scalars().all()
    return bool(rows) and all(rows)


async def test_stopping_a_worker_ends_its_long_idle_pull_at_once(db, bus):
    consumer = InboxConsumer(db, messaging, Consumer("c-idle", "yimen.test.>", record_effect), bus)
    worker = consumer.worker()
    worker.idle_wait = 60.0
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(1.0)  # subscribed and waiting on the server
    worker.stop()
    await asyncio.wait_for(task, 5)  # not after the 60 s pull


async def test_an_idle_worker_applies_each_event_as_it_arrives_not_when_its_pull_ends(db, bus):
    """nats-py's batch fetch, once a first message came on a waiting pull, waits out its timeout for the rest of
    the batch; the worker's long idle pull must not hand that wait to the events (a case would stall for it)."""
    results: list[str] = []
    consumer = InboxConsumer(db, messaging, Consumer("c-prompt", "yimen.test.>", record_effect), bus,
                             on_result=results.append)
    worker = consumer.worker()
    worker.idle_wait = 30.0
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.0)  # subscribed, idle, its pull waiting on the server
        loop = asyncio.get_running_loop()
        for n in range(3):  # one event, then a burst of four, each after the worker went idle again
            started = loop.time()
            burst = [_event(10 * n + k) for k in range(1 if n == 0 else 4)]
            await asyncio.gather(*(bus.publish(e) for e in burst))
            await eventually(lambda b=burst: _all_applied(db, b), timeout=3)
            assert loop.time() - started < 3, "an event waited for the idle pull to end"
            await asyncio.sleep(0.5)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


async def _all_applied(db, events) -> bool:
    got = set(await effects(db))
    return all(e.id in got for e in events)


async def test_a_service_that_publishes_nothing_runs_no_relay_and_refuses_to_write_an_event(databases):
    """`ServiceSpec.publishes=False` (notify): no relay polls its outbox, so an event written there would never
    leave; `emit` and `emit_many` refuse instead, and the transaction writes nothing."""
    import pytest

    from shared.db import Database
    from shared.messaging import emit_many

    quiet = Database(databases.url("quiet"), info={"messaging": messaging, "service": "quiet", "publishes": False})
    try:
        async with quiet.engine.begin() as conn:
            await conn.run_sync(messaging.outbox.metadata.create_all)
        for write in (lambda s: emit(s, _event(1)), lambda s: emit_many(s, [_event(2)])):
            with pytest.raises(RuntimeError, match="no outbox relay"):
                async with quiet.transaction() as s:
                    await write(s)
        assert await _outbox_rows(quiet) == 0
    finally:
        await quiet.dispose()


async def test_an_idle_worker_asks_again_as_soon_as_the_bus_is_back_not_when_its_long_pull_ends(db):
    """A restarted server has forgotten the pull that was waiting on it: the worker, waiting up to `idle_wait`
    (30 s by default) for an answer that will never come, asks again when the connection is back, so an event
    published after the outage is applied at once."""
    from shared.bus import Bus
    from shared.testing import EmbeddedNats

    server = EmbeddedNats().start()  # its own server: this test restarts it
    bus = Bus(server.url, prefix="reconnect")
    await bus.connect(attempts=3)
    consumer = InboxConsumer(db, messaging, Consumer("c-back", "yimen.test.>", record_effect), bus)
    worker = consumer.worker()
    worker.idle_wait = 60.0
    task = asyncio.create_task(worker.run())
    try:
        first = _event(1)
        await bus.publish(first)
        await eventually(lambda: _all_applied(db, [first]), timeout=5)
        await asyncio.sleep(0.5)  # idle again: its next pull waits on the server
        server.stop()
        await asyncio.sleep(0.5)
        server.start()
        await eventually(lambda: bus.connected, timeout=10)
        second = _event(2)
        await bus.publish(second)
        await eventually(lambda: _all_applied(db, [second]), timeout=8)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)
        await bus.close()
        server.cleanup()
