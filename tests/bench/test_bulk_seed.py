"""The bench's bulk seed (bench/bulk.py) hands each event a service writes to the next consumers and leaves it
published in the outbox, applies an event once per consumer, and gives a copied case's identifiers the same new
value in every service."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bench.bulk import Stores, cascade, derive
from services.workflow.tests.helpers import application_accepted, item_published
from shared.bus import subject_matches
from shared.messaging import InboxConsumer
from shared.migrate import upgrade


def test_consumer_subjects_match_as_nats_filters_them():
    assert subject_matches("yimen.>", "yimen.workflow.task.assigned")
    assert subject_matches("yimen.workflow.task.*", "yimen.workflow.task.assigned")
    assert not subject_matches("yimen.workflow.task.*", "yimen.workflow.task.assigned.extra")
    assert not subject_matches("yimen.intake.>", "yimen.intake")
    assert subject_matches("yimen.intake.application.accepted", "yimen.intake.application.accepted")
    assert not subject_matches("yimen.intake.application.accepted", "yimen.intake.application.submitted")


def test_a_copied_identifier_is_the_same_everywhere_and_new_in_each_copy():
    app_id = "0f3c" * 8
    assert derive(app_id, 1) == derive(app_id, 1)
    assert len({app_id, derive(app_id, 1), derive(app_id, 2)}) == 3
    receipt = "LD-SCJGJ-20261130-000123456"
    assert derive(receipt, 7)[:-12] == receipt[:-12] and derive(receipt, 7) != receipt
    assert len(derive("批量12", 3)) == len("批量12")


async def test_a_bulk_transaction_hands_on_its_events_and_leaves_them_published(databases):
    url = databases.url("bulkseed_workflow")
    await asyncio.to_thread(upgrade, "workflow", url)
    stores = Stores({"workflow": url}, services=("workflow",))
    store = stores.by_name["workflow"]
    try:
        steps = [{"key": "review", "name": "审查", "kind": "review", "departments": ["LD-SCJGJ"], "limit_days": 5}]
        published = item_published("ITEM-BULK", 1, steps)
        # Three cases in one consumer transaction: each case's events are taken by the statement that opens it, so
        # a transaction takes its held events more than once (the bulk seed must sink every take, not the first).
        accepted = [application_accepted("ITEM-BULK", 1) for _ in range(3)]
        by_name = {c.name: c for c in store.consumers}
        for name, events in (("workflow-item-published", [published]), ("workflow-application-accepted", accepted)):
            inbox = InboxConsumer(store.db, store.messaging, by_name[name], None)  # type: ignore[arg-type]
            assert await inbox.apply_batch(events) == len(events)
        handed_on = store.take_events()
        outbox = store.messaging.outbox
        async with store.db.transaction() as s:
            rows = (await s.execute(select(outbox.c.event_id, outbox.c.type, outbox.c.published_at))).all()
        assert sum(r.type == "yimen.workflow.task.assigned" for r in rows) == 3
        assert sorted(e.id for e in handed_on) == sorted(r.event_id for r in rows)
        assert all(r.published_at is not None for r in rows), "a relay would publish these again"

        # Through the whole cascade again: every consumer has applied them already (its inbox), so nothing.
        assert set((await cascade(stores, [published, *accepted])).values()) == {0}
        assert store.take_events() == []
    finally:
        await stores.close()
