"""What one submission costs the database (issue #14): statements are the cost of every request, so the submit
path's are counted here, on the engine, for the request alone (the relay and the consumers run in tasks of their
own and are not counted)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from services.intake.store import repository as repo
from services.intake.tests import factories as f
from shared.testing import eventually

BASE = "/intake/v1"

_counting: ContextVar[list[str] | None] = ContextVar("counting", default=None)


@contextmanager
def counted(engine) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The statements run by this task and the tasks it starts, while open; `COMMITTING` marks where a
    transaction's commit hooks begin (the outbox's insert, and whatever else renders at commit), `COMMIT` its
    end."""
    seen: list[str] = []

    def statement(conn, cursor, text, *args):  # type: ignore[no-untyped-def]
        if (out := _counting.get()) is not None:
            out.append(text)

    def committing(session):  # type: ignore[no-untyped-def]
        if (out := _counting.get()) is not None:
            out.append("COMMITTING")

    def commit(conn):  # type: ignore[no-untyped-def]
        if (out := _counting.get()) is not None:
            out.append("COMMIT")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(Session, "before_commit", committing, insert=True)
    event.listen(engine, "commit", commit)
    token = _counting.set(seen)
    try:
        yield seen
    finally:
        _counting.reset(token)
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(Session, "before_commit", committing)
        event.remove(engine, "commit", commit)


def work_of(seen: list[str]) -> list[str]:
    """The statements the use cases ran, without those of the commit hooks."""
    out, hooks = [], False
    for s in seen:
        if s in ("COMMITTING", "COMMIT"):
            hooks = s == "COMMITTING"
        elif not hooks:
            out.append(s)
    return out


async def test_a_fully_online_submission_costs_few_statements_and_the_serial_is_taken_after_every_read(intake, tokens):
    # As the bench's item: fully online, nothing asked of the applicant or of datashare.
    item = await intake.publish_item(f.food_permit_item(fully_online=True, materials=[], form_fields=[]))
    me = f.citizen(tokens)
    drafts = []
    for _ in range(2):
        r = await intake.client.post(f"{BASE}/applications", headers=me, json={
            "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE", "form": {}})
        assert r.status_code == 201, r.text
        drafts.append(r.json()["id"])
    # The first submission of the process may read the item version; the second finds it in memory.
    first = await intake.client.post(f"{BASE}/applications/{drafts[0]}/submit",
                                     headers={**me, "Idempotency-Key": f"s-{drafts[0]}"})
    assert first.status_code == 200, first.text
    with counted(intake.client.app.state.db.engine.sync_engine) as seen:
        r = await intake.client.post(f"{BASE}/applications/{drafts[1]}/submit",
                                     headers={**me, "Idempotency-Key": f"s-{drafts[1]}"})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert r.json()["receipt_number"] != first.json()["receipt_number"]
    statements = work_of(seen)
    pg = intake.client.app.state.db.engine.dialect.name == "postgresql"
    # One transaction: the key's claim; the application locked with its version's withdrawal and its materials;
    # (SQLite: the serial;) one update; the timeline's two steps in one insert, which on PostgreSQL also reads the
    # answer's timeline; then, at commit, the outbox's one insert, which on PostgreSQL also completes the key. On
    # SQLite the key's claim commits alone first (a repeat would otherwise wait for the whole submission behind the
    # one writer instead of hearing 409), after a look for the key: a repeat's write would wait for that writer,
    # its read does not; its completion is a statement of its own at commit.
    assert len(statements) <= (4 if pg else 7), "\n".join(statements)
    assert seen.count("COMMIT") == (1 if pg else 2)
    assert sum("INSERT INTO timeline_entry" in s for s in statements) == 1
    assert not any(s.startswith("SELECT attachment") for s in statements), statements
    # At the commit: the outbox's insert and the public status view's upsert, rendered from what the answer read
    # (under the lock, after the last change) instead of from the tables again. On PostgreSQL one statement: the
    # upsert, with the outbox's insert and the key's completion as its CTEs.
    hooks = [s for s in seen if s not in ("COMMITTING", "COMMIT") and s not in statements]
    assert len(hooks) == (1 if pg else 3) and not any("JOIN timeline_entry" in s for s in hooks), "\n".join(hooks)
    assert sum("INSERT INTO outbox" in s for s in seen) == 1
    assert sum("UPDATE idempotency_key" in s for s in seen) == 1
    if pg:
        assert all("UPDATE idempotency_key" in s and "INSERT INTO outbox" in s and "INSERT INTO public_status" in s
                   for s in hooks), "\n".join(hooks)
    assert not any(re.search(r"\bFROM item_version\b", s) and "payload" in s for s in statements)
    serial = [i for i, s in enumerate(statements) if "receipt_counter" in s]
    if pg:
        # The serial commits on a connection apart (not this engine's), so the counter row is not held by the
        # submission's transaction: test_receipt_serials.py shows the next submission taking its serial meanwhile.
        assert not serial, statements
    else:
        # SQLite's one writer: the serial is in the transaction, and only writes follow it until the commit.
        after = [s for s in statements[serial[0] + 1:] if not s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
        assert len(after) <= 1, after  # the answer's timeline


async def test_a_material_attached_while_the_submission_waits_for_the_lock_is_in_its_answer(intake, tokens):
    # The materials come with the application's lock, in one statement. A statement that waits for the lock gets
    # the row as the holder committed it but, on PostgreSQL, the materials as they were before that commit: the
    # submission must notice and read them again, or it would check and announce the case without this one.
    optional = [m for m in f.food_permit_item()["materials"] if m["necessity"] == "optional"][:1]
    item = await intake.publish_item(f.food_permit_item(fully_online=True, materials=optional, form_fields=[]))
    me = f.citizen(tokens)
    r = await intake.client.post(f"{BASE}/applications", headers=me, json={
        "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE", "form": {}})
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    db = intake.client.app.state.db
    pg = db.engine.dialect.name == "postgresql"
    async with db.transaction() as s:
        app = await repo.get_application(s, app_id, for_update=True)
        assert app is not None and await repo.move(s, app, from_states=[app.status])  # SQLite: now the writer
        submitting = asyncio.create_task(intake.client.post(
            f"{BASE}/applications/{app_id}/submit", headers={**me, "Idempotency-Key": f"s-{app_id}"}))
        if pg:
            await eventually(lambda: _waiting_for_a_lock(db))
        else:
            await asyncio.sleep(0.3)  # SQLite: its claim waits for this transaction, the one writer
        assert not submitting.done()
        await repo.put_attachment(s, application_id=app_id, material_code=optional[0]["code"], kind="certificate_ref",
                                  reference="441781600099999")
    r = await submitting
    assert r.status_code == 200, r.text
    assert [m["material_code"] for m in r.json()["materials"]] == [optional[0]["code"]]
    accepted = await intake.wait_event("yimen.intake.application.accepted", app_id)
    assert [m["code"] for m in accepted.data["materials"]] == [optional[0]["code"]]


async def _waiting_for_a_lock(db) -> bool:  # type: ignore[no-untyped-def]
    async with db.engine.connect() as conn:
        waiting = await conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
    return bool(waiting)


async def _draft(intake, me, code):  # type: ignore[no-untyped-def]
    r = await intake.client.post(f"{BASE}/applications", headers=me, json={
        "item_code": code, "channel": "online", "service_point": "LD-CENTRE", "form": {}})
    return r


async def test_a_draft_reads_its_item_version_once_and_writes_its_step_with_the_answers_read(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True, materials=[], form_fields=[]))
    me = f.citizen(tokens)
    assert (await _draft(intake, me, item["code"])).status_code == 201  # finds the item's current version
    with counted(intake.client.app.state.db.engine.sync_engine) as seen:
        r = await _draft(intake, me, item["code"])
    assert r.status_code == 201, r.text
    assert [t["step"] for t in r.json()["timeline"]] == ["创建申请草稿"]
    statements = work_of(seen)
    pg = intake.client.app.state.db.engine.dialect.name == "postgresql"
    # The application's insert, which checks in itself that the version is still the current one (not read
    # again); the step's insert and the answer's timeline (one statement on PostgreSQL).
    assert len(statements) == (2 if pg else 3), "\n".join(statements)
    assert statements[0].startswith("INSERT INTO application") and "item_version.withdrawn_at IS NULL" in statements[0]
    assert seen.count("COMMIT") == 1


async def test_a_draft_cites_the_version_current_at_its_insert_not_the_one_found_before(intake, tokens):
    code = f.item_code()
    await intake.publish_item(f.food_permit_item(code))
    me = f.citizen(tokens)
    r = await _draft(intake, me, code)
    assert r.status_code == 201 and r.json()["item_version"] == 1, r.text
    # A newer version: the one remembered is no longer current, and the draft is made against the new one.
    await intake.publish_item(f.food_permit_item(code, version=2, name="食品经营许可（新）"))
    r = await _draft(intake, me, code)
    assert r.status_code == 201, r.text
    assert (r.json()["item_version"], r.json()["item_name"]) == (2, "食品经营许可（新）")
    # Withdrawn: the version remembered is refused at the insert, and no version is left.
    await intake.bus.publish(f.withdrawn(code, 2))
    await intake.bus.publish(f.withdrawn(code, 1))

    async def withdrawn() -> bool:
        row = await intake.item_kept(code, 2)
        row1 = await intake.item_kept(code, 1)
        return bool(row and row.withdrawn_at and row1 and row1.withdrawn_at)

    await eventually(withdrawn)
    r = await _draft(intake, me, code)
    assert r.status_code == 422 and "unknown_item" in r.text, r.text
    async with intake.client.app.state.db.transaction() as s:
        stored = (await s.execute(text("SELECT item_version, first_responder, result FROM application "
                                       "WHERE item_code = :c ORDER BY item_version"), {"c": code})).all()
    # Two drafts, and the columns a draft leaves empty are SQL NULL (as the ORM's insert left them).
    assert [(v, fr, res) for v, fr, res in stored] == [(1, None, None), (2, None, None)]
