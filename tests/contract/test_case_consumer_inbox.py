"""A consumer that took over from others inherits their inbox rows in a migration, so the new durable, which starts
at the stream's beginning, is refused every event they had applied: efficacy's one case-event consumer
(`efficacy-cases`, after `efficacy-intake` and `efficacy-workflow`; then `efficacy-case-events`, after
`efficacy-cases` and `efficacy-certificates`) and intake's one review consumer
(`intake-review`, after the department steps' three consumers and the decision's). On the backend under test, from
the revision before to head."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared.events import new_event
from shared.messaging import claim_in_inbox
from shared.migrate import alembic_config, upgrade
from shared.testing import DatabaseProvider


@dataclass(frozen=True)
class TakeOver:
    service: str
    #: How the migration's file name ends.
    migration: str
    new: str
    #: The replaced consumers and a type each applied (the new one applies it now).
    old: dict[str, str]
    #: A consumer of the same service that was not replaced.
    other: str
    #: The consumer that applies those types today, when a later take-over replaced `new` in turn.
    applies_now: str | None = None


TAKE_OVERS = [
    TakeOver("efficacy", "_case_consumer_inbox.py", "efficacy-cases",
             {"efficacy-intake": "yimen.intake.application.accepted",
              "efficacy-workflow": "yimen.workflow.task.decided"}, "efficacy-catalog",
             applies_now="efficacy-case-events"),
    TakeOver("efficacy", "_certificates_in_case_consumer.py", "efficacy-case-events",
             {"efficacy-cases": "yimen.intake.application.accepted",
              "efficacy-certificates": "yimen.datashare.certificate.issued"}, "efficacy-catalog"),
    TakeOver("intake", "_review_consumer_inbox.py", "intake-review",
             {"intake-task-assigned": "yimen.workflow.task.assigned", "intake-task-decided": "yimen.workflow.task.decided",
              "intake-task-handler-assigned": "yimen.workflow.task.handler_assigned",
              "intake-application-decided": "yimen.workflow.application.decided"}, "intake-item-published"),
]


@pytest.mark.parametrize("case", TAKE_OVERS, ids=lambda c: c.new)
async def test_the_new_consumer_inherits_what_the_old_ones_applied(databases: DatabaseProvider, case: TakeOver) -> None:
    consumer = next(c for c in importlib.import_module(f"services.{case.service}.events.handlers").CONSUMERS
                    if c.name == (case.applies_now or case.new))
    assert all(consumer.wants(t) for t in case.old.values())
    inbox = importlib.import_module(f"services.{case.service}.store.tables").messaging.inbox
    url = databases.url(f"{case.service}_consumer_inbox")
    scripts = ScriptDirectory.from_config(alembic_config(case.service, url))
    inherit = next(r for r in scripts.walk_revisions() if r.module.__file__.endswith(case.migration))
    await asyncio.to_thread(command.upgrade, alembic_config(case.service, url), inherit.down_revision)
    applied = {name: new_event(t, source="/yimen/test", subject="a1", data={}) for name, t in case.old.items()}
    first = next(iter(case.old))
    rows = [(name, e.id) for name, e in applied.items()]
    rows += [(next(n for n in case.old if n != first), applied[first].id),  # one id under two old names
             (case.other, "not-theirs")]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for name, event_id in rows:
                await conn.execute(text(
                    "INSERT INTO inbox (consumer, event_id, event_type, applied_at) "
                    "VALUES (:c, :e, 't', CURRENT_TIMESTAMP)"), {"c": name, "e": event_id})
        await asyncio.to_thread(upgrade, case.service, url)
        async with engine.connect() as conn:
            inherited = set((await conn.execute(text(
                "SELECT event_id FROM inbox WHERE consumer = :c"), {"c": case.new})).scalars())
            # (Counted by name: a later take-over copies the new one's rows under its own.)
            old = (await conn.execute(text("SELECT count(*) FROM inbox WHERE consumer IN ({})".format(
                ", ".join(f"'{name}'" for name, _ in rows))))).scalar()
        assert inherited == {e.id for e in applied.values()}, "each event once, and none of another consumer's"
        assert old == len(rows), "the old rows stay (a downgrade runs the old consumers again)"
        # Delivered again to the new consumer, what the old ones applied is refused; a new event is not.
        fresh = new_event(next(iter(case.old.values())), source="/yimen/test", subject="a2", data={})
        async with AsyncSession(engine) as session, session.begin():
            assert await claim_in_inbox(session, inbox, case.new, [*applied.values(), fresh]) == {fresh.id}
    finally:
        await engine.dispose()
