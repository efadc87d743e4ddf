"""Efficacy's one case-event consumer (`efficacy-cases`) took over from `efficacy-intake` and `efficacy-workflow`:
its migration gives it their inbox rows, so the new durable, which starts at the stream's beginning, is refused
every event they had applied. On the backend under test, from the revision before to head."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import alembic_config, upgrade
from shared.testing import DatabaseProvider


async def test_the_new_consumer_inherits_what_the_two_old_ones_applied(databases: DatabaseProvider) -> None:
    url = databases.url("case_consumer_inbox")
    scripts = ScriptDirectory.from_config(alembic_config("efficacy", url))
    inherit = next(r for r in scripts.walk_revisions() if r.module.__file__.endswith("_case_consumer_inbox.py"))
    await asyncio.to_thread(command.upgrade, alembic_config("efficacy", url), inherit.down_revision)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for consumer, event in [("efficacy-intake", "e1"), ("efficacy-workflow", "e2"),
                                    ("efficacy-workflow", "e1"), ("efficacy-catalog", "e3")]:
                await conn.execute(text(
                    "INSERT INTO inbox (consumer, event_id, event_type, applied_at) "
                    "VALUES (:c, :e, 't', CURRENT_TIMESTAMP)"), {"c": consumer, "e": event})
        await asyncio.to_thread(upgrade, "efficacy", url)
        async with engine.connect() as conn:
            inherited = set((await conn.execute(text(
                "SELECT event_id FROM inbox WHERE consumer = 'efficacy-cases'"))).scalars())
            old = (await conn.execute(text(
                "SELECT count(*) FROM inbox WHERE consumer IN ('efficacy-intake', 'efficacy-workflow')"))).scalar()
        assert inherited == {"e1", "e2"}, "each event once, and none of another consumer's"
        assert old == 3, "the old rows stay (a downgrade runs the old consumers again)"
    finally:
        await engine.dispose()
