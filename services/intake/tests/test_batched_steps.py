"""A case's department steps applied in batches (one transaction, one inbox statement and one timeline statement per
batch) leave exactly what applying each event on its own leaves: the same timeline rows in the same order, the same
status and the same public view, wherever the batches are cut; and a batch delivered again changes nothing."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.intake.events import handlers
from services.intake.service import received
from services.intake.store.tables import Application, PublicStatusRow, TimelineEntry
from services.intake.tests import factories as f
from services.intake.tests.public_view import mismatches
from services.intake.tests.test_applications import BASE, _workflow, complete_draft, submit
from services.intake.tests.test_public_status import _accepted, _decided, _status
from services.intake.tests.test_submit_statements import counted
from shared.bus import subject_matches
from shared.events import Event, new_event
from shared.messaging import Consumer, InboxConsumer

#: The kinds of department steps, in the order `_interleaved` sends each kind of all the cases; one consumer takes them.
KINDS = ("yimen.workflow.task.assigned", "yimen.workflow.task.handler_assigned", "yimen.workflow.task.decided")
REVIEW = "intake-review"


def _case_events(app_id: str, t0: datetime) -> list[Event]:
    """A parallel review: three departments assigned at one instant, two handlers named, two approvals, a
    correction request (which moves the case) and a late approval, in the order workflow tells them."""
    def at(minutes: int) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat()

    out = [_workflow("yimen.workflow.task.assigned", app_id, task_id=f"t-{d}", department=d, step_name="并联审查",
                     assigned_at=at(0)) for d in ("LD-SCJGJ", "LD-XFJ", "LD-WJJ")]
    out += [_workflow("yimen.workflow.task.handler_assigned", app_id, task_id=f"t-{d}", department=d,
                      handler={"id": "s-9", "name": "钱审查", "office_phone": phone, "unit": "审批股"},
                      assigned_at=at(1)) for d, phone in (("LD-XFJ", "0766-3833333"), ("LD-WJJ", None))]
    out += [_workflow("yimen.workflow.task.decided", app_id, task_id=f"t-{d}", department=d, outcome="approve",
                      decided_by={"kind": "staff", "id": "s-9", "name": "钱审查", "unit": "审批股"},
                      decided_at=at(m)) for d, m in (("LD-XFJ", 2), ("LD-SCJGJ", 2))]
    out.append(_workflow("yimen.workflow.task.decided", app_id, task_id="t-LD-WJJ", department="LD-WJJ",
                         outcome="request_correction", reasons="缺少平面图", missing=[
                             {"material_code": "floor_plan", "reason": "缺少平面图"}], decided_at=at(3)))
    # A department that approves after the correction was asked for: noted, the case stays awaiting correction.
    out.append(_workflow("yimen.workflow.task.decided", app_id, task_id="t-LD-GTJ", department="LD-GTJ",
                         outcome="approve", decided_at=at(4)))
    return out


def _cut(events: list[Event], rng: random.Random | None) -> list[list[Event]]:
    """The events cut into batches: whole (rng None) or at random places (a batch may hold any kinds of step)."""
    if rng is None:
        return [events]
    out: list[list[Event]] = [[]]
    for e in events:
        if out[-1] and rng.random() < 0.5:
            out.append([])
        out[-1].append(e)
    return out


def _interleaved(apps: list[str], t0: datetime) -> list[Event]:
    """Several cases' events as they reach intake: each kind of step of all the cases together."""
    per_app = [_case_events(a, t0) for a in apps]
    out: list[Event] = []
    for kind in KINDS:
        for events in per_app:
            out += [e for e in events if e.type == kind]
    return out


async def _state(db: Any, app_id: str, t0: datetime) -> dict[str, Any]:
    """What the events left of one case: its status, its timeline from t0 (in the order shown) and the public view."""
    t, a, p = TimelineEntry.__table__, Application.__table__, PublicStatusRow.__table__
    async with db.engine.connect() as conn:
        status, notice = (await conn.execute(select(a.c.status, a.c.notice).where(a.c.id == app_id))).one()
        steps = (await conn.execute(
            select(t.c.at, t.c.status, t.c.step, t.c.unit, t.c.staff_name, t.c.staff_contact, t.c.note, t.c.code)
            .where(t.c.application_id == app_id, t.c.at >= t0).order_by(t.c.at, t.c.id))).all()
        body = json.loads((await conn.execute(select(p.c.body).where(p.c.application_id == app_id))).scalar_one())
    body.pop("receipt_number")
    # The steps before t0 are the submission's and the acceptance's, at their own times.
    body["timeline"] = [x for x in body["timeline"] if datetime.fromisoformat(x["at"]) >= t0]
    return {"status": status, "notice": notice, "steps": [tuple(s) for s in steps], "public": body}


async def test_any_cut_of_a_batch_equals_one_event_at_a_time_and_a_redelivered_batch_changes_nothing(intake, tokens):
    app = intake.client.app
    db = app.state.db
    review = InboxConsumer(db, app.state.messaging, _consumer(REVIEW), app.state.bus)
    t0 = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    one_by_one = [(await _accepted(intake, tokens))[0] for _ in range(3)]
    for event in _interleaved(one_by_one, t0):
        assert await review.apply(event)
    expected = [await _state(db, a, t0) for a in one_by_one]
    assert [e["status"] for e in expected] == ["awaiting_correction"] * 3
    assert len(expected[0]["steps"]) == 9

    for variant in (None, random.Random(1), random.Random(2), random.Random(3)):
        apps = [(await _accepted(intake, tokens))[0] for _ in range(3)]
        events = _interleaved(apps, t0)
        for batch in _cut(events, variant):
            assert await review.apply_batch(batch) == len(batch)
        got = [await _state(db, a, t0) for a in apps]
        assert got == expected, variant

        # Delivered again, whole or cut otherwise: nothing applies, nothing changes.
        assert await review.apply_batch(events) == 0
        for e in events:
            assert not await review.apply(e)
        assert [await _state(db, a, t0) for a in apps] == expected


async def test_a_cases_department_steps_in_one_batch_cost_one_statement_of_each_kind(intake, tokens):
    """Five departments' assignments of one case: one inbox insert, one move of the case (the later ones would change
    nothing: the transaction holds the row), one insert of the five steps and one guarded update of the view (on
    PostgreSQL one statement: the insert rides on the update)."""
    app = intake.client.app
    db = app.state.db
    app_id = (await _accepted(intake, tokens))[0]
    t0 = datetime.now(UTC) + timedelta(hours=1)
    events = [_workflow("yimen.workflow.task.assigned", app_id, task_id=f"t-{d}", department=d, step_name="并联审查",
                        assigned_at=t0.isoformat()) for d in ("LD-SCJGJ", "LD-XFJ", "LD-WJJ", "LD-ZJJ", "LD-GTJ")]
    consumer = InboxConsumer(db, app.state.messaging, _consumer(REVIEW), app.state.bus)
    with counted(db.engine.sync_engine) as seen:
        assert await consumer.apply_batch(events) == 5
    kinds = _kinds(seen)
    assert kinds.count("UPDATE application SET") == 1
    assert kinds.count("INSERT INTO inbox") == 1
    if db.engine.dialect.name == "postgresql":
        assert kinds.count("WITH steps AS (INSERT INTO timeline_entry UPDATE public_status SET") == 1
        assert not [k for k in kinds if k.startswith(("INSERT INTO timeline_entry", "UPDATE public_status"))]
    else:
        assert kinds.count("INSERT INTO timeline_entry") == 1
        assert kinds.count("UPDATE public_status SET") == 1
    assert not [k for k in kinds if k.startswith("SELECT application")]  # nothing rendered from the tables
    assert len((await _state(db, app_id, t0))["steps"]) == 5


def _consumer(name: str) -> Consumer:
    return next(c for c in handlers.CONSUMERS if c.name == name)


def _kinds(seen: list[str]) -> list[str]:
    """Each statement by its first three words (a CTE's by those of its insert and of its main statement)."""
    out = []
    for s in seen:
        if s in ("COMMITTING", "COMMIT"):
            continue
        words = s.split()
        if words[:3] == ["WITH", "steps", "AS"]:
            main = " ".join(words).split(") UPDATE ", 1)[1].split()
            out.append(" ".join(["WITH", "steps", "AS", "(INSERT", "INTO", "timeline_entry", "UPDATE", *main[:2]]))
        else:
            out.append(" ".join(words[:3]))
    return out


async def test_one_event_costs_its_inbox_insert_its_move_and_one_write_of_steps_and_view(intake, tokens):
    """A department's step that arrives alone (a batch of one, or the one-at-a-time fallback): its step is written
    as its transaction commits, on PostgreSQL in the statement that advances the view."""
    app = intake.client.app
    db = app.state.db
    app_id = (await _accepted(intake, tokens))[0]
    t0 = datetime.now(UTC) + timedelta(hours=1)
    consumer = assigned = InboxConsumer(db, app.state.messaging, _consumer(REVIEW), app.state.bus)
    event = _workflow("yimen.workflow.task.decided", app_id, task_id="t-LD-XFJ", department="LD-XFJ",
                      outcome="approve", decided_by={"kind": "staff", "id": "s-9", "name": "钱审查", "unit": "审批股",
                                                     "contact": "0766-1"}, decided_at=t0.isoformat())
    # The unit's name is known to this process already (its first step reads it once).
    assert await assigned.apply(_workflow("yimen.workflow.task.assigned", app_id, task_id="t-LD-XFJ",
                                          department="LD-XFJ", step_name="并联审查", assigned_at=t0.isoformat()))
    with counted(db.engine.sync_engine) as seen:
        assert await consumer.apply(event)
    kinds = _kinds(seen)
    if db.engine.dialect.name == "postgresql":
        assert kinds == ["INSERT INTO inbox", "UPDATE application SET",
                         "WITH steps AS (INSERT INTO timeline_entry UPDATE public_status SET"], kinds
    else:
        assert kinds == ["INSERT INTO inbox", "UPDATE application SET", "INSERT INTO timeline_entry",
                         "UPDATE public_status SET"], kinds
    state = await _state(db, app_id, t0)
    assert [s[2] for s in state["steps"]] == ["审查：并联审查", "部门审查通过"]
    assert [s["step"] for s in state["public"]["timeline"]] == ["审查：并联审查", "部门审查通过"]
    # Delivered again: nothing.
    with counted(db.engine.sync_engine) as seen:
        assert not await consumer.apply(event)
    assert _kinds(seen) == ["INSERT INTO inbox"]
    assert await _state(db, app_id, t0) == state


async def test_a_batch_of_many_cases_locks_moves_and_writes_their_views_together(intake, tokens):
    """Four cases' assignments in one batch: the four cases locked in one statement and moved into review in one
    more; on PostgreSQL their steps and their four views in one statement (no render from the tables), on SQLite
    rendered from the tables. Either way each case's view is what its tables show."""
    app = intake.client.app
    db = app.state.db
    apps = [(await _accepted(intake, tokens))[0] for _ in range(4)]
    t0 = datetime.now(UTC) + timedelta(hours=1)
    events = [_workflow("yimen.workflow.task.assigned", a, task_id=f"t-{a}-{d}", department=d, step_name="并联审查",
                        assigned_at=t0.isoformat()) for a in apps for d in ("LD-XFJ", "LD-WJJ")]
    consumer = InboxConsumer(db, app.state.messaging, _consumer(REVIEW), app.state.bus)
    with counted(db.engine.sync_engine) as seen:
        assert await consumer.apply_batch(events) == 8
    kinds = _kinds(seen)
    assert kinds.count("SELECT application.id, application.status,") == 1, kinds  # the lock of all four
    assert kinds.count("UPDATE application SET") == 1, kinds
    if db.engine.dialect.name == "postgresql":
        assert kinds.count("WITH steps AS (INSERT INTO timeline_entry UPDATE public_status SET") == 1, kinds
        assert not [k for k in kinds if k.startswith(("SELECT application.id AS", "INSERT INTO public_status",
                                                      "UPDATE public_status", "INSERT INTO timeline_entry"))]
    assert await mismatches(db) == []
    for a in apps:
        state = await _state(db, a, t0)
        assert [(s[2], s[3]) for s in state["steps"]] == [("审查：并联审查", "LD-XFJ"), ("审查：并联审查", "LD-WJJ")]
        assert [(x["step"], x["unit"]) for x in state["public"]["timeline"]] == [
            ("审查：并联审查", "LD-XFJ"), ("审查：并联审查", "LD-WJJ")]


async def test_held_steps_of_a_batch_whose_view_changed_meanwhile_are_rendered_from_the_tables(intake, tokens):
    """The concurrent departments' case (test_public_status) with the second department's step held to the commit:
    the body it read with the lock is stale on PostgreSQL, its guarded update writes nothing, and the view is
    rendered from the tables, which hold its step by then."""
    app_id, receipt, code = await _accepted(intake, tokens)
    db = intake.client.app.state.db
    now = datetime.now(UTC)

    async def second() -> None:
        async with db.transaction() as s, received.steps_together(s):
            await received.task_decided(s, _decided(app_id, "LD-XFJ", now + timedelta(seconds=2)))

    async with db.transaction() as s, received.steps_together(s):
        await received.task_decided(s, _decided(app_id, "LD-WJJ", now + timedelta(seconds=1)))
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)  # the second one is waiting for the application's lock (or SQLite's writer lock)
        assert not waiting.done()
    await waiting
    steps = (await _status(intake, receipt, code)).json()["timeline"]
    assert [x["unit"] for x in steps[-2:]] == ["LD-WJJ", "LD-XFJ"]
    assert await mismatches(db) == []


async def test_a_decision_reads_no_project_link_and_a_certificate_delivers_in_one_write_of_the_case(intake, tokens):
    """The decision moves the case and reads it (with whether a project dispatched it) in one statement; the
    certificate and the electronic hand-over it allows change and read the case in one statement too, and on
    PostgreSQL the `delivered` event rides on the statement that writes the steps and the view: three statements
    (five before). The view stays what the tables show, and the event is written once."""
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app_id = (await complete_draft(intake, me, item["code"]))["id"]
    receipt = (await submit(intake, me, app_id)).json()["receipt_number"]
    app = intake.client.app
    db = app.state.db
    by_name = {c.name: InboxConsumer(db, app.state.messaging, c, app.state.bus) for c in handlers.CONSUMERS}
    now = datetime.now(UTC).isoformat()
    assert await by_name[REVIEW].apply(_workflow(
        "yimen.workflow.task.assigned", app_id, task_id="t1", department="LD-WJJ", step_name="并联审查", assigned_at=now))
    with counted(db.engine.sync_engine) as seen:
        assert await by_name[REVIEW].apply(_workflow(
            "yimen.workflow.application.decided", app_id, receipt_number=receipt, outcome="approved",
            decided_at=now, department="LD-SCJGJ"))
    assert not [k for k in _kinds(seen) if "project" in k], _kinds(seen)
    assert _kinds(seen) == ["INSERT INTO inbox", "UPDATE application SET", *_STEPS_AND_VIEW[db.engine.dialect.name]]
    issued = new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-1", data={
        "certificate_number": "JY1", "type_code": f.FOOD_PERMIT, "type_name": "食品经营许可证",
        "issuer_department": "LD-SCJGJ", "application_id": app_id})
    with counted(db.engine.sync_engine) as seen:
        assert await by_name["intake-certificate-issued"].apply(issued)
    events = [] if db.engine.dialect.name == "postgresql" else ["INSERT INTO outbox"]  # SQLite: at the commit
    assert _kinds(seen) == ["INSERT INTO inbox", "UPDATE application SET", *_STEPS_AND_VIEW[db.engine.dialect.name],
                            *events], _kinds(seen)
    got = (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()
    assert got["status"] == "delivered" and got["result"]["certificate_number"] == "JY1"
    assert [(t["step"], t["status"]) for t in got["timeline"][-2:]] == [
        ("电子证照已签发：食品经营许可证", "decided"), ("电子证照送达", "delivered")]
    assert await mismatches(db) == []
    assert await intake.emitted("yimen.intake.application.delivered", app_id) == 1
    delivered = (await intake.wait_event("yimen.intake.application.delivered", app_id)).data
    assert delivered["certificate_number"] == "JY1" and delivered["method"] == "electronic"
    # Announced again under another event id: the certificate is attached already, nothing changes.
    again = new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-1",
                      data=issued.data)
    assert await by_name["intake-certificate-issued"].apply(again)
    assert (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()["timeline"] == got["timeline"]
    assert await intake.emitted("yimen.intake.application.delivered", app_id) == 1


async def test_a_certificate_for_a_result_collected_at_a_window_is_handed_over_as_before(intake, tokens):
    """The one-statement hand-over is the electronic one: a decided case whose result is collected at a window is
    read and handed over as before (the certificate attached, the case in the point's collection queue), and a
    certificate that reaches a case before its decision waits on it."""
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = intake.client.app
    db = app.state.db
    by_name = {c.name: InboxConsumer(db, app.state.messaging, c, app.state.bus) for c in handlers.CONSUMERS}
    apps = []
    for _ in range(2):
        app_id = (await complete_draft(intake, me, item["code"],
                                       delivery={"method": "pickup", "service_point": "LD-CENTRE"}))["id"]
        apps.append((app_id, (await submit(intake, me, app_id)).json()["receipt_number"]))

    def decided(app_id: str, receipt: str) -> Event:
        return _workflow("yimen.workflow.application.decided", app_id, receipt_number=receipt, outcome="approved",
                         decided_at=datetime.now(UTC).isoformat(), department="LD-SCJGJ")

    def issued(app_id: str) -> Event:
        return new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject=app_id, data={
            "certificate_number": f"JY-{app_id}", "type_code": f.FOOD_PERMIT, "type_name": "食品经营许可证",
            "application_id": app_id})

    (first, first_receipt), (second, second_receipt) = apps
    assert await by_name[REVIEW].apply(decided(first, first_receipt))
    assert await by_name["intake-certificate-issued"].apply(issued(first))
    assert await by_name["intake-certificate-issued"].apply(issued(second))
    assert await by_name[REVIEW].apply(decided(second, second_receipt))
    for app_id in (first, second):
        got = (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()
        assert got["status"] == "awaiting_pickup" and got["result"]["certificate_number"] == f"JY-{app_id}"
        assert sum(t["step"] == "电子证照已签发：食品经营许可证" for t in got["timeline"]) == 1
        assert got["timeline"][-1]["step"].startswith("结果已出，请到")
        assert await intake.emitted("yimen.intake.application.ready_for_collection", app_id) == 1
        assert await intake.emitted("yimen.intake.application.delivered", app_id) == 0
    assert await mismatches(db) == []


async def test_a_certificate_before_the_decision_is_kept_in_the_write_that_reads_the_case(intake, tokens):
    """Datashare may issue the certificate before intake applies the decision: it is kept by the write that locks
    and reads the case (not a read and then a write), and the decision then delivers it, once."""
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app_id = (await complete_draft(intake, me, item["code"]))["id"]
    receipt = (await submit(intake, me, app_id)).json()["receipt_number"]
    app = intake.client.app
    db = app.state.db
    by_name = {c.name: InboxConsumer(db, app.state.messaging, c, app.state.bus) for c in handlers.CONSUMERS}
    issued = new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-2", data={
        "certificate_number": "JY2", "type_code": f.FOOD_PERMIT, "type_name": "食品经营许可证",
        "issuer_department": "LD-SCJGJ", "application_id": app_id})
    with counted(db.engine.sync_engine) as seen:
        assert await by_name["intake-certificate-issued"].apply(issued)
    # One write keeps the certificate (no hand-over: the case is not decided).
    assert _kinds(seen) == ["INSERT INTO inbox", "UPDATE application SET",
                            *_STEPS_AND_VIEW[db.engine.dialect.name]], _kinds(seen)
    got = (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()
    assert got["status"] == "accepted" and got["result"]["certificate_number"] == "JY2"
    assert (got["timeline"][-1]["step"], got["timeline"][-1]["status"]) == ("电子证照已签发：食品经营许可证", "accepted")
    # Announced again under another event id: kept already, nothing changes.
    assert await by_name["intake-certificate-issued"].apply(new_event(
        "yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-2", data=issued.data))
    assert (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()["timeline"] == got["timeline"]
    assert await by_name[REVIEW].apply(_workflow(
        "yimen.workflow.application.decided", app_id, receipt_number=receipt, outcome="approved",
        decided_at=datetime.now(UTC).isoformat(), department="LD-SCJGJ"))
    got = (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()
    assert got["status"] == "delivered" and got["result"]["certificate_number"] == "JY2"
    assert sum(t["step"] == "电子证照已签发：食品经营许可证" for t in got["timeline"]) == 1
    assert got["timeline"][-1]["step"] == "电子证照送达"
    assert await mismatches(db) == []
    assert await intake.emitted("yimen.intake.application.delivered", app_id) == 1


#: The statements that write a transaction's held steps and advance its view, by dialect.
_STEPS_AND_VIEW = {"postgresql": ["WITH steps AS (INSERT INTO timeline_entry UPDATE public_status SET"],
                   "sqlite": ["INSERT INTO timeline_entry", "UPDATE public_status SET"]}


async def test_what_one_workflow_transaction_announces_of_a_case_is_one_batch_of_one_consumer(intake, tokens):
    """Workflow writes a department's decision with what it sets off in one transaction: the last parallel decision
    with the decision step's assignment, and that step's decision with the case's `application.decided`. One
    consumer takes all four types (the server filters the rest out), so each pair is one batch: one transaction, one
    inbox insert, and the view advanced in place, never rendered again from the tables."""
    app = intake.client.app
    db = app.state.db
    review = _consumer(REVIEW)
    for kind in (*KINDS, "yimen.workflow.application.decided"):
        assert [c.name for c in handlers.CONSUMERS if subject_matches(c.subject, kind) and c.wants(kind)] == [REVIEW]
    consumer = InboxConsumer(db, app.state.messaging, review, app.state.bus)
    worker = consumer.worker()
    if (app.state.bus.nc.connected_server_version.major, app.state.bus.nc.connected_server_version.minor) >= (2, 10):
        assert set(worker.filters()) == {app.state.bus.names.subject(t) for t in (
            "yimen.workflow.task.assigned", "yimen.workflow.task.decided", "yimen.workflow.task.handler_assigned",
            "yimen.workflow.application.decided")}
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app_id = (await complete_draft(intake, me, item["code"]))["id"]
    receipt = (await submit(intake, me, app_id)).json()["receipt_number"]
    t0 = datetime.now(UTC) + timedelta(hours=1)
    assert await consumer.apply(_workflow("yimen.workflow.task.assigned", app_id, task_id="t-joint",
                                          department="LD-SCJGJ", step_name="并联审查", assigned_at=t0.isoformat()))
    stage_done = [
        _workflow("yimen.workflow.task.decided", app_id, task_id="t-joint", department="LD-SCJGJ", outcome="approve",
                  decided_at=(t0 + timedelta(seconds=1)).isoformat()),
        _workflow("yimen.workflow.task.assigned", app_id, task_id="t-decision", department="LD-SCJGJ",
                  step_name="决定", assigned_at=(t0 + timedelta(seconds=1)).isoformat())]
    decision = [
        _workflow("yimen.workflow.task.decided", app_id, task_id="t-decision", department="LD-SCJGJ",
                  outcome="approve", decided_at=(t0 + timedelta(seconds=2)).isoformat()),
        _workflow("yimen.workflow.application.decided", app_id, receipt_number=receipt, outcome="approved",
                  decided_at=(t0 + timedelta(seconds=2)).isoformat(), department="LD-SCJGJ")]
    for pair in (stage_done, decision):
        with counted(db.engine.sync_engine) as seen:
            assert await consumer.apply_batch(pair) == 2
        kinds = _kinds(seen)
        assert seen.count("COMMIT") == 1 and kinds.count("INSERT INTO inbox") == 1, kinds
        assert not [k for k in kinds if k.startswith(("SELECT application.id AS", "INSERT INTO public_status"))], kinds
    got = (await intake.client.get(f"{BASE}/applications/{app_id}", headers=me)).json()
    assert got["status"] == "decided" and got["outcome"] == "approved"
    assert [t["step"] for t in got["timeline"] if datetime.fromisoformat(t["at"]) >= t0] == [
        "审查：并联审查", "部门审查通过", "审查：决定", "部门审查通过", "审批通过"]
    assert await mismatches(db) == []


async def test_a_departments_decision_before_its_assignment_in_one_batch_is_noted_as_when_apart(intake, tokens):
    """The stream's order follows cause, but a batch that failed is applied again one event at a time, and a retried
    event comes back after later ones: a department's decision can reach the review consumer before its assignment.
    In one batch or apart, both steps are noted, the case is in review, and the view is what the tables show."""
    app = intake.client.app
    db = app.state.db
    consumer = InboxConsumer(db, app.state.messaging, _consumer(REVIEW), app.state.bus)
    t0 = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    states = []
    for together in (False, True):
        app_id = (await _accepted(intake, tokens))[0]
        events = [_workflow("yimen.workflow.task.decided", app_id, task_id="t-1", department="LD-XFJ",
                            outcome="approve", decided_at=(t0 + timedelta(seconds=1)).isoformat()),
                  _workflow("yimen.workflow.task.assigned", app_id, task_id="t-1", department="LD-XFJ",
                            step_name="并联审查", assigned_at=t0.isoformat())]
        if together:
            assert await consumer.apply_batch(events) == 2
        else:
            for e in events:
                assert await consumer.apply(e)
        states.append(await _state(db, app_id, t0))
    assert states[0] == states[1]
    assert states[0]["status"] == "in_review"
    assert [s[2] for s in states[0]["steps"]] == ["审查：并联审查", "部门审查通过"]
    assert await mismatches(db) == []
