"""Intake's consumers that lock the event's application apply a fetched batch in the order of the applications,
so that two consumers' batches never take the same two locks in opposite orders (a deadlock PostgreSQL finds only
after `deadlock_timeout`, 1 s, while both consumers stand still)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.intake.events import handlers
from services.intake.tests.public_view import mismatches
from services.intake.tests.test_public_status import _accepted
from shared.events import new_event
from shared.messaging import InboxConsumer

LOCKING = {"intake-review", "intake-certificate-issued"}


def _decided(app_id: str, department: str, at: datetime):
    return new_event("yimen.workflow.task.decided", source="/yimen/workflow", subject=app_id, data={
        "task_id": f"t-{department}", "application_id": app_id, "department": department, "outcome": "approve",
        "decided_at": at.isoformat()})


async def test_a_batch_is_applied_in_the_order_of_its_applications_each_ones_events_in_turn(intake, tokens):
    assert {c.name for c in handlers.CONSUMERS if c.batch_handler is not None} == LOCKING
    seen: list[tuple[str, str]] = []

    async def record(session, event):  # type: ignore[no-untyped-def]
        seen.append((event.data["application_id"], event.data["department"]))

    now = datetime.now(UTC)
    batch = [_decided("b", "1", now), _decided("a", "1", now), _decided("b", "2", now), _decided("a", "2", now)]
    async with intake.client.app.state.db.transaction() as s:
        await handlers.in_application_order(record)(s, batch)
    assert seen == [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")]


async def test_two_consumers_batches_over_the_same_applications_in_opposite_orders_both_commit(intake, tokens):
    first, _, _ = await _accepted(intake, tokens)
    second, _, _ = await _accepted(intake, tokens)
    app = intake.client.app
    now = datetime.now(UTC)
    by_name = {c.name: c for c in handlers.CONSUMERS}
    one = InboxConsumer(app.state.db, app.state.messaging, by_name["intake-review"], app.state.bus)
    other = InboxConsumer(app.state.db, app.state.messaging, by_name["intake-certificate-issued"], app.state.bus)
    decided = [_decided(first, "LD-WJJ", now), _decided(second, "LD-WJJ", now)]
    issued = [new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject=f"c-{a}", data={
        "certificate_number": f"c-{a}", "type_code": "T", "type_name": "证", "issuer_department": "LD-SCJGJ",
        "application_id": a}) for a in (second, first)]
    applied = await asyncio.wait_for(asyncio.gather(one.apply_batch(decided), other.apply_batch(issued)), 5)
    assert applied == [2, 2]
    assert await mismatches(app.state.db) == []
