"""Inbox rows and `Idempotency-Key` records are deleted once past their retention, in batches, and not before: an
event applied within the retention is still refused a second time after a purge. The settings refuse an inbox
retention that an event's redelivery could outlive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from shared.events import new_event
from shared.messaging import Consumer, InboxConsumer, purge_expired
from shared.settings import STREAM_MAX_AGE_DAYS, PlatformSettings
from shared.types import utcnow

from .conftest import effects, messaging, record_effect


def _event(n: int):
    return new_event("yimen.test.thing.happened", source="/yimen/test", subject=f"thing-{n}", data={"n": n})


async def _count(db, table) -> int:
    async with db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def test_rows_past_retention_go_in_batches_and_recent_ones_keep_refusing_redelivery(db, bus):
    consumer = InboxConsumer(db, messaging, Consumer("c-purge", "yimen.test.>", record_effect), bus)
    old, recent = [_event(n) for n in range(7)], [_event(n) for n in range(7, 10)]
    assert await consumer.apply_batch(old + recent) == 10
    now = utcnow()
    ib, ik = messaging.inbox, messaging.idempotency
    async with db.transaction() as s:
        await s.execute(update(ib).where(ib.c.event_id.in_([e.id for e in old]))
                        .values(applied_at=now - timedelta(days=40)))
        await s.execute(ik.insert(), [
            {"scope": "t", "key": f"k{i}", "request_hash": "h", "status_code": 201, "response_body": "{}",
             "created_at": now - timedelta(days=age), "completed_at": now - timedelta(days=age)}
            for i, age in enumerate([45, 31, 29, 1])])

    done = await purge_expired(db, messaging, inbox_older_than=timedelta(days=31),
                               idempotency_older_than=timedelta(days=30), batch=3)

    assert done == {"inbox": 7, "idempotency_key": 2}, "7 old inbox rows in batches of 3; keys 45 and 31 days old"
    assert await _count(db, ib) == 3 and await _count(db, ik) == 2
    async with db.transaction() as s:
        kept = set((await s.execute(select(ik.c.key))).scalars())
    assert kept == {"k2", "k3"}
    assert await consumer.apply_batch(recent) == 0, "a recent event is still refused after the purge"
    assert len(await effects(db)) == 10
    assert await purge_expired(db, messaging, inbox_older_than=timedelta(days=31),
                               idempotency_older_than=timedelta(days=30)) == {"inbox": 0, "idempotency_key": 0}


@pytest.mark.parametrize("settings, rule", [
    ({"inbox_retention_days": int(STREAM_MAX_AGE_DAYS)}, "stream's age limit"),
    ({"inbox_retention_days": 40, "outbox_retention_days": 40}, "outbox_retention_days"),
])
def test_an_inbox_retention_a_redelivery_could_outlive_is_refused(settings, rule):
    with pytest.raises(ValidationError, match=rule):
        PlatformSettings(**settings)


def test_the_default_inbox_retention_outlives_the_stream_and_the_outbox():
    p = PlatformSettings()
    assert p.inbox_retention_days > max(STREAM_MAX_AGE_DAYS, p.outbox_retention_days)
