"""Intake's one review consumer (`intake-review`) took over from the department steps' three consumers and the
decision's: its migration gives it their inbox rows, so the new durable, which starts at the stream's beginning, is
refused every event they had applied. On the backend under test, from the revision before to head."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.intake.events import handlers
from services.intake.store.tables import messaging
from shared.events import new_event
from shared.messaging import claim_in_inbox
from shared.migrate import alembic_config, upgrade
from shared.testing import DatabaseProvider

#: The replaced consumers and the type each applied.
OLD = {"intake-task-assigned": "yimen.workflow.task.assigned", "intake-task-decided": "yimen.workflow.task.decided",
       "intake-task-handler-assigned": "yimen.workflow.task.handler_assigned",
       "intake-application-decided": "yimen.workflow.application.decided"}


def _event(type_: str):  # type: ignore[no-untyped-def]
    return new_event(type_, source="/yimen/workflow", subject="a1", data={"application_id": "a1"})


async def test_the_review_consumer_inherits_what_the_four_old_ones_applied(databases: DatabaseProvider) -> None:
    review = next(c for c in handlers.CONSUMERS if c.name == "intake-review")
    assert review.types == set(OLD.values())
    url = databases.url("review_consumer_inbox")
    scripts = ScriptDirectory.from_config(alembic_config("intake", url))
    inherit = next(r for r in scripts.walk_revisions() if r.module.__file__.endswith("_review_consumer_inbox.py"))
    await asyncio.to_thread(command.upgrade, alembic_config("intake", url), inherit.down_revision)
    applied = {name: _event(t) for name, t in OLD.items()}
    other = _event("yimen.catalog.item.published")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            rows = [(name, e.id) for name, e in applied.items()]
            rows += [("intake-task-decided", applied["intake-task-assigned"].id),  # one id under two old names
                     ("intake-item-published", other.id)]
            for consumer, event_id in rows:
                await conn.execute(text(
                    "INSERT INTO inbox (consumer, event_id, event_type, applied_at) "
                    "VALUES (:c, :e, 't', CURRENT_TIMESTAMP)"), {"c": consumer, "e": event_id})
        await asyncio.to_thread(upgrade, "intake", url)
        async with engine.connect() as conn:
            inherited = set((await conn.execute(text(
                "SELECT event_id FROM inbox WHERE consumer = 'intake-review'"))).scalars())
            old = (await conn.execute(text(
                "SELECT count(*) FROM inbox WHERE consumer <> 'intake-review'"))).scalar()
        assert inherited == {e.id for e in applied.values()}, "each event once, and none of another consumer's"
        assert old == len(rows), "the old rows stay (a downgrade runs the old consumers again)"
        # Redelivered to the new consumer, what the old ones applied is refused; a new event is not.
        new = _event("yimen.workflow.task.decided")
        async with AsyncSession(engine) as session, session.begin():
            fresh = await claim_in_inbox(session, messaging.inbox, review.name, [*applied.values(), new])
        assert fresh == {new.id}
    finally:
        await engine.dispose()
