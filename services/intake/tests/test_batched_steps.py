"""A case's department steps applied in batches (one transaction, one inbox statement and one timeline statement per
batch) leave exactly what applying each event on its own leaves: the same timeline rows in the same order, the same
status and the same public view, wherever the batches are cut; and a batch delivered again changes nothing."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.intake.events import handlers
from services.intake.store.tables import Application, PublicStatusRow, TimelineEntry
from services.intake.tests.test_applications import _workflow
from services.intake.tests.test_public_status import _accepted
from services.intake.tests.test_submit_statements import counted
from shared.events import Event
from shared.messaging import InboxConsumer

CONSUMER_OF = {"yimen.workflow.task.assigned": "intake-task-assigned",
               "yimen.workflow.task.handler_assigned": "intake-task-handler-assigned",
               "yimen.workflow.task.decided": "intake-task-decided"}


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


def _runs(events: list[Event]) -> list[tuple[str, list[Event]]]:
    """The events as each consumer receives them: consecutive events of one consumer form a run."""
    runs: list[tuple[str, list[Event]]] = []
    for e in events:
        name = CONSUMER_OF[e.type]
        if runs and runs[-1][0] == name:
            runs[-1][1].append(e)
        else:
            runs.append((name, [e]))
    return runs


def _cut(events: list[Event], rng: random.Random | None) -> list[list[Event]]:
    """A run cut into batches: whole (rng None) or at random places."""
    if rng is None:
        return [events]
    out: list[list[Event]] = [[]]
    for e in events:
        if out[-1] and rng.random() < 0.5:
            out.append([])
        out[-1].append(e)
    return out


def _interleaved(apps: list[str], t0: datetime) -> list[Event]:
    """Two cases' events as they reach intake: each kind of step of both cases together."""
    per_app = [_case_events(a, t0) for a in apps]
    out: list[Event] = []
    for kind in CONSUMER_OF:
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
    by_name = {c.name: InboxConsumer(db, app.state.messaging, c, app.state.bus) for c in handlers.CONSUMERS}
    t0 = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    one_by_one = [(await _accepted(intake, tokens))[0] for _ in range(2)]
    for event in _interleaved(one_by_one, t0):
        assert await by_name[CONSUMER_OF[event.type]].apply(event)
    expected = [await _state(db, a, t0) for a in one_by_one]
    assert [e["status"] for e in expected] == ["awaiting_correction"] * 2
    assert len(expected[0]["steps"]) == 9

    for variant in (None, random.Random(1), random.Random(2), random.Random(3)):
        apps = [(await _accepted(intake, tokens))[0] for _ in range(2)]
        events = _interleaved(apps, t0)
        batches = [(name, batch) for name, run in _runs(events) for batch in _cut(run, variant)]
        for name, batch in batches:
            assert await by_name[name].apply_batch(batch) == len(batch)
        got = [await _state(db, a, t0) for a in apps]
        assert got == expected, variant

        # Delivered again, whole or cut otherwise: nothing applies, nothing changes.
        for name, run in _runs(events):
            assert await by_name[name].apply_batch(run) == 0
            for e in run:
                assert not await by_name[name].apply(e)
        assert [await _state(db, a, t0) for a in apps] == expected


async def test_a_cases_department_steps_in_one_batch_cost_one_statement_of_each_kind(intake, tokens):
    """Five departments' assignments of one case: one inbox insert, one move of the case (the later ones would change
    nothing: the transaction holds the row), one insert of the five steps and one guarded update of the view."""
    app = intake.client.app
    db = app.state.db
    app_id = (await _accepted(intake, tokens))[0]
    t0 = datetime.now(UTC) + timedelta(hours=1)
    events = [_workflow("yimen.workflow.task.assigned", app_id, task_id=f"t-{d}", department=d, step_name="并联审查",
                        assigned_at=t0.isoformat()) for d in ("LD-SCJGJ", "LD-XFJ", "LD-WJJ", "LD-ZJJ", "LD-GTJ")]
    consumer = InboxConsumer(db, app.state.messaging, next(c for c in handlers.CONSUMERS
                                                           if c.name == "intake-task-assigned"), app.state.bus)
    with counted(db.engine.sync_engine) as seen:
        assert await consumer.apply_batch(events) == 5
    kinds = [" ".join(s.split()[:3]) for s in seen if s not in ("COMMITTING", "COMMIT")]
    assert kinds.count("INSERT INTO timeline_entry") == 1
    assert kinds.count("UPDATE application SET") == 1
    assert kinds.count("INSERT INTO inbox") == 1
    assert kinds.count("UPDATE public_status SET") == 1
    assert len((await _state(db, app_id, t0))["steps"]) == 5
