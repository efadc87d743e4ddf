"""A case through its process: fan-out of a parallel stage, decisions by REST and by the bus, fan-in,
corrections, sequential and flattened processes, deemed approval — on the real database and bus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.workflow.app import deem_overdue_round
from services.workflow.tests.helpers import (
    FOOD_DEPARTMENTS,
    application_accepted,
    case,
    define_item,
    department_decision,
    item_published,
    parallel_step,
    publish,
    reviewer,
    start_case,
    supervisor,
    system,
    tasks_of,
)
from shared.events import new_event
from shared.testing import eventually, recording_statements

REJECT = {"outcome": "reject", "reasons": ["场所不符合要求"], "legal_basis": "《食品经营许可管理办法》第十一条"}


def new_code() -> str:
    return "ITEM-" + uuid.uuid4().hex[:8]


async def decide(client, headers, task_id, body=None):  # type: ignore[no-untyped-def]
    return await client.post(f"/workflow/v1/tasks/{task_id}/decision", json=body or {"outcome": "approve"},
                             headers=headers)


async def test_accepted_application_fans_out_one_task_per_department(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(FOOD_DEPARTMENTS, limit_days=5)])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    assert len(c["stages"]) == 1
    tasks = tasks_of(c)
    assert sorted(tasks) == sorted(FOOD_DEPARTMENTS)
    assert all(t["state"] == "open" for t in tasks.values())
    assert tasks["LD-SCJGJ"]["lead"] and not tasks["LD-WJJ"]["lead"]
    assigned = await eventually(lambda: len(recorder.of("task.assigned", app_id)) == 4 and recorder.of("task.assigned", app_id))
    one = assigned[0].data
    assert set(one) >= {"task_id", "application_id", "receipt_number", "item_code", "department", "step_key",
                        "step_name", "stage_kind", "lead", "limit_days", "due_at", "assigned_at"}
    assert one["stage_kind"] == "parallel" and one["limit_days"] == 5
    assert {e.data["task_id"] for e in assigned} == {t["id"] for t in tasks.values()}
    # Due at the end of a working day in Asia/Shanghai: 23:59:59 local is 15:59:59 UTC.
    assert datetime.fromisoformat(one["due_at"]).astimezone(UTC).strftime("%H:%M:%S") == "15:59:59"


async def test_the_same_accepted_application_twice_starts_one_process(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    event = application_accepted(code, 1)
    app_id = event.data["application_id"]
    await publish(client, event)
    # Published again by a retrying relay (new event id, same application) and redelivered (same id).
    again = application_accepted(code, 1, application_id=app_id)
    await publish(client, again)
    await client.app.state.bus.publish_raw(client.app.state.bus.names.subject(event.type), event.to_json(),
                                           "redelivery-" + event.id)
    await eventually(lambda: len(recorder.of("task.assigned", app_id)) >= 2)
    marker = await start_case(client, tokens, code)  # processed after the duplicates
    await eventually(lambda: recorder.of("task.assigned", marker["application_id"]))
    c = await case(client, tokens, app_id)
    assert len(c["stages"]) == 1 and len(c["stages"][0]["tasks"]) == 2
    assert len(recorder.of("task.assigned", app_id)) == 2


async def test_an_application_accepted_before_its_item_version_arrives_is_started_when_it_does(client, tokens):
    code = new_code()
    accepted = application_accepted(code, 1)
    await publish(client, accepted)
    await publish(client, item_published(code, 1, [parallel_step(["LD-MZJ"])]))
    c = await eventually(
        lambda: _case_if_started(client, tokens, accepted.data["application_id"]), timeout=15
    )
    assert tasks_of(c)["LD-MZJ"]["state"] == "open"


async def _case_if_started(client, tokens, app_id):  # type: ignore[no-untyped-def]
    r = await client.get(f"/workflow/v1/cases/{app_id}", headers=supervisor(tokens))
    return r.json() if r.status_code == 200 else None


async def test_a_case_runs_under_the_version_it_was_accepted_with(client, tokens):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ"])])
    await define_item(client, tokens, code, 2, [parallel_step(["LD-XFJ", "LD-GAJ"])])
    v1 = await start_case(client, tokens, code, 1)
    v2 = await start_case(client, tokens, code, 2)
    assert sorted(tasks_of(v1)) == ["LD-WJJ"]
    assert sorted(tasks_of(v2)) == ["LD-GAJ", "LD-XFJ"]
    assert v1["item_version"] == 1 and v2["item_version"] == 2


async def test_all_departments_approve_by_rest_and_the_case_is_approved_once(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(FOOD_DEPARTMENTS)])
    c = await start_case(client, tokens, code, applicant_id="person-approve")
    app_id = c["application_id"]
    for dept, task in tasks_of(c).items():
        r = await decide(client, reviewer(tokens, dept) if dept != "LD-XFJ" else system(tokens, dept), task["id"])
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "decided" and r.json()["outcome"] == "approve"
    done = await case(client, tokens, app_id)
    assert done["state"] == "approved" and done["stages"][0]["outcome"] == "approved"
    decided = await eventually(lambda: recorder.of("application.decided", app_id))
    await eventually(lambda: len(recorder.of("task.decided", app_id)) == 4)
    data = decided[0].data
    assert data["outcome"] == "approved" and data["item_version"] == 1
    assert data["applicant"]["id"] == "person-approve"
    assert data["result"] == {"type": "certificate", "certificate_type": "11441781MB0000001A002", "name": "食品经营许可证"}
    assert [e.data["outcome"] for e in recorder.of("stage.completed", app_id)] == ["approved"]
    # The applicant sees their own case, a stranger does not.
    own = await client.get(f"/workflow/v1/cases/{app_id}", headers=tokens.headers("person-approve"))
    assert own.status_code == 200
    other = await client.get(f"/workflow/v1/cases/{app_id}", headers=tokens.headers("person-other"))
    assert other.status_code == 404


async def test_decision_checks_department_state_and_rules(client, tokens):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    task = tasks_of(c)["LD-WJJ"]
    wrong = await decide(client, reviewer(tokens, "LD-XFJ"), task["id"])
    assert wrong.status_code == 403 and wrong.headers["content-type"] == "application/problem+json"
    citizen = await decide(client, tokens.headers("person-1"), task["id"])
    assert citizen.status_code == 403
    anonymous = await decide(client, {}, task["id"])
    assert anonymous.status_code == 401
    no_basis = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"], {"outcome": "reject", "reasons": "x"})
    assert no_basis.status_code == 422
    assert {(e["field"], e["rule"]) for e in no_basis.json()["errors"]} == {("body.legal_basis", "required_for_reject")}
    bare = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"], {"outcome": "reject"})
    assert {e["rule"] for e in bare.json()["errors"]} == {"required_for_reject"} and len(bare.json()["errors"]) == 2
    nothing_missing = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"], {"outcome": "request_correction"})
    assert nothing_missing.json()["errors"][0]["field"] == "body.missing"
    bad_outcome = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"], {"outcome": "maybe"})
    assert bad_outcome.status_code == 422 and bad_outcome.json()["errors"][0]["field"] == "body.outcome"
    unknown_field = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"], {"outcome": "approve", "x": 1})
    assert unknown_field.status_code == 422
    missing_task = await decide(client, reviewer(tokens, "LD-WJJ"), "no-such-task")
    assert missing_task.status_code == 404
    ok = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"])
    assert ok.status_code == 200
    twice = await decide(client, reviewer(tokens, "LD-WJJ"), task["id"])
    assert twice.status_code == 409 and twice.json()["type"].endswith("/conflict")


async def test_any_rejection_rejects_the_case_with_reasons_and_legal_basis(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-SCJGJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    tasks = tasks_of(c)
    assert (await decide(client, reviewer(tokens, "LD-SCJGJ"), tasks["LD-SCJGJ"]["id"])).status_code == 200
    assert (await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"], REJECT)).status_code == 200
    decided = await eventually(lambda: recorder.of("application.decided", app_id))
    assert decided[0].data["outcome"] == "rejected"
    assert decided[0].data["reasons"] == REJECT["reasons"][0]
    assert decided[0].data["legal_basis"] == REJECT["legal_basis"]


async def test_the_lead_department_arbitrates_when_the_stage_says_so(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1,
                      [parallel_step(["LD-SCJGJ", "LD-XFJ"], lead="LD-SCJGJ", on_reject="lead_arbitrates")])
    c = await start_case(client, tokens, code)
    tasks = tasks_of(c)
    await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"], REJECT)
    await decide(client, reviewer(tokens, "LD-SCJGJ"), tasks["LD-SCJGJ"]["id"])
    decided = await eventually(lambda: recorder.of("application.decided", c["application_id"]))
    assert decided[0].data["outcome"] == "approved"


async def test_decisions_by_bus_event_have_one_effect_and_the_same_checks(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    tasks = tasks_of(c)
    # The wrong department's system: refused, the task stays open.
    await publish(client, department_decision("LD-XFJ", tasks["LD-WJJ"]["id"]))
    refused = await eventually(lambda: [e for e in recorder.of("decision.refused")
                                        if e.data["task_id"] == tasks["LD-WJJ"]["id"]])
    assert refused[0].data["status"] == 403 and refused[0].data["application_id"] == app_id
    # A rejection without legal basis: refused with 422.
    await publish(client, department_decision("LD-WJJ", tasks["LD-WJJ"]["id"], "reject", reasons="不符合"))
    await eventually(lambda: [e for e in recorder.of("decision.refused")
                              if e.data["task_id"] == tasks["LD-WJJ"]["id"] and e.data["status"] == 422])
    assert (await case(client, tokens, app_id))["stages"][0]["tasks"][0]["state"] == "open"
    # The right one, delivered twice: one decision.
    event = department_decision("LD-WJJ", tasks["LD-WJJ"]["id"])
    await publish(client, event)
    await client.app.state.bus.publish_raw(client.app.state.bus.names.subject(event.type), event.to_json(),
                                           "again-" + event.id)
    await eventually(lambda: recorder.of("task.decided", app_id))
    await publish(client, department_decision("LD-XFJ", tasks["LD-XFJ"]["id"]))
    await eventually(lambda: recorder.of("application.decided", app_id))
    assert len([e for e in recorder.of("task.decided", app_id) if e.data["department"] == "LD-WJJ"]) == 1
    late = [e for e in recorder.of("decision.refused") if e.data["task_id"] == tasks["LD-WJJ"]["id"]
            and e.data["status"] == 409]
    assert late == []  # the second copy carried the same event id: the inbox dropped it, nothing to refuse
    done = await case(client, tokens, app_id)
    assert tasks_of(done)["LD-WJJ"]["decided_by"]["kind"] == "department_system"


async def test_correction_pauses_the_task_and_reopens_it_after_the_applicant_answers(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    tasks = tasks_of(c)
    wjj = tasks["LD-WJJ"]["id"]
    missing = [{"material_code": "floor-plan", "reason": "平面图未标注消防通道"}]
    r = await decide(client, reviewer(tokens, "LD-WJJ"), wjj, {"outcome": "request_correction", "missing": missing})
    assert r.status_code == 200 and r.json()["state"] == "awaiting_correction"
    asked = await eventually(lambda: recorder.of("task.decided", app_id))
    assert asked[0].data["outcome"] == "request_correction" and asked[0].data["missing"][0]["material_code"] == "floor-plan"
    assert (await decide(client, reviewer(tokens, "LD-WJJ"), wjj)).status_code == 409
    await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"])
    assert (await case(client, tokens, app_id))["state"] == "running"
    corrected = new_event("yimen.intake.application.corrected", source="/yimen/intake", subject=app_id,
                          data={"application_id": app_id, "receipt_number": "R1", "task_id": wjj,
                                "corrected_at": datetime.now(UTC).isoformat()})
    await publish(client, corrected)
    await publish(client, corrected)  # the same event again: one reopening
    reopened = await eventually(lambda: recorder.of("task.reopened", app_id))
    assert reopened[0].data["task_id"] == wjj
    assert (await decide(client, reviewer(tokens, "LD-WJJ"), wjj)).status_code == 200
    decided = await eventually(lambda: recorder.of("application.decided", app_id))
    assert decided[0].data["outcome"] == "approved"
    assert len(recorder.of("task.reopened", app_id)) == 1


async def test_sequential_steps_run_in_order_and_a_skipped_step_is_flattened(client, tokens, recorder):
    code = new_code()
    steps = [
        {"key": "pre-review", "name": "初审", "kind": "review", "departments": ["LD-ZSJ"], "skip": True},
        {"key": "review", "name": "审查", "kind": "review", "departments": ["LD-WJJ"], "limit_days": 3},
        parallel_step(["LD-XFJ", "LD-STHJJ"]),
        {"key": "decide", "name": "决定", "kind": "decision", "limit_days": 2},
    ]
    await define_item(client, tokens, code, 1, steps)
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    assert [s["step_key"] for s in c["stages"]] == ["review"]
    await decide(client, reviewer(tokens, "LD-WJJ"), tasks_of(c)["LD-WJJ"]["id"])
    c = await case(client, tokens, app_id)
    assert [s["step_key"] for s in c["stages"]] == ["review", "joint-review"]
    for dept, t in tasks_of(c, 1).items():
        await decide(client, reviewer(tokens, dept), t["id"])
    c = await case(client, tokens, app_id)
    assert c["stages"][2]["step_key"] == "decide" and list(tasks_of(c, 2)) == ["LD-SCJGJ"]
    assert c["state"] == "running"
    await decide(client, reviewer(tokens, "LD-SCJGJ"), tasks_of(c, 2)["LD-SCJGJ"]["id"])
    await eventually(lambda: recorder.of("application.decided", app_id))
    assert [e.data["step_key"] for e in recorder.of("stage.completed", app_id)] == ["review", "joint-review", "decide"]


async def test_a_single_decision_step_process_works(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [{"key": "decide", "name": "决定", "kind": "decision"}])
    c = await start_case(client, tokens, code)
    await decide(client, system(tokens, "LD-SCJGJ"), tasks_of(c)["LD-SCJGJ"]["id"])
    decided = await eventually(lambda: recorder.of("application.decided", c["application_id"]))
    assert decided[0].data["outcome"] == "approved"


async def test_overdue_tasks_of_a_deemed_approval_stage_are_approved_as_deemed(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-RSJ", "LD-YBJ"], limit_days=1, deemed=True)])
    old = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    c = await start_case(client, tokens, code, accepted_at=old)
    app_id = c["application_id"]
    decided = await eventually(lambda: recorder.of("application.decided", app_id), timeout=10)
    assert decided[0].data["outcome"] == "approved"
    tasks = tasks_of(await case(client, tokens, app_id))
    assert all(t["deemed"] and t["decided_by"]["kind"] == "system" for t in tasks.values())
    assert all(e.data["deemed"] for e in recorder.of("task.decided", app_id))


async def test_overdue_tasks_without_deemed_approval_stay_open(client, tokens):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-JYJ"], limit_days=1)])
    c = await start_case(client, tokens, code, accepted_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # A deemed-approval round, run here rather than hoped for after a pause: it leaves the task open.
    await deem_overdue_round(client.app.state.ctx)
    assert tasks_of(await case(client, tokens, c["application_id"]))["LD-JYJ"]["state"] == "open"


async def test_a_withdrawn_application_cancels_its_undecided_tasks(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ", "LD-GAJ"])])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    tasks = tasks_of(c)
    await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])
    await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"],
                 {"outcome": "request_correction", "missing": [{"reason": "缺少营业执照"}]})
    withdrawn = new_event("yimen.intake.application.withdrawn", source="/yimen/intake", subject=app_id,
                          data={"application_id": app_id, "receipt_number": "R", "withdrawn_at": datetime.now(UTC).isoformat()})
    await publish(client, withdrawn)
    await publish(client, withdrawn)
    cancelled = await eventually(lambda: len(recorder.of("task.cancelled", app_id)) == 2 and recorder.of("task.cancelled", app_id))
    assert {e.data["department"] for e in cancelled} == {"LD-XFJ", "LD-GAJ"}
    done = await case(client, tokens, app_id)
    assert done["state"] == "withdrawn"
    assert {d: t["state"] for d, t in tasks_of(done).items()} == {
        "LD-WJJ": "decided", "LD-XFJ": "cancelled", "LD-GAJ": "cancelled"}
    late = await decide(client, reviewer(tokens, "LD-GAJ"), tasks["LD-GAJ"]["id"])
    assert late.status_code == 409
    assert recorder.of("application.decided", app_id) == []


async def test_an_immediate_item_is_decided_by_its_acceptance_and_opens_no_task(client, tokens, recorder):
    """即办件: intake decided it at the window; workflow records that decision (datashare issues the
    certificate from it) and no department task can decide it a second time."""
    code = new_code()
    steps = [{"key": "decision", "name": "审核办结（即办）", "kind": "decision", "departments": ["LD-SCJGJ"],
              "limit_days": 0}]
    await define_item(client, tokens, code, 1, steps)
    event = application_accepted(code, 1)
    event.data["case_kind"] = "immediate"
    await publish(client, event)
    app_id = event.data["application_id"]
    decided = await eventually(lambda: recorder.of("application.decided", app_id))
    assert [e.data["outcome"] for e in decided] == ["approved"]
    c = await case(client, tokens, app_id)
    assert c["outcome"] == "approved" and all(not s["tasks"] for s in c["stages"])
    assert not recorder.of("task.assigned", app_id)


async def test_a_decision_is_one_update_of_the_task_and_a_refused_one_says_why(client, tokens):
    """Issue 14: the task's department, state and kind are the conditions of the decision's UPDATE, so deciding
    reads no task; a refused decision reads it only to answer 404/403/409 as before."""
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(FOOD_DEPARTMENTS)])
    tasks = tasks_of(await start_case(client, tokens, code))
    with recording_statements(client.app.state.db.engine) as log:
        r = await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])
    statements = log.statements
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "decided" and body["outcome"] == "approve" and body["department"] == "LD-WJJ"
    assert body["decided_by"]["id"] == "reviewer-LD-WJJ" and body["receipt_number"] == tasks["LD-WJJ"]["receipt_number"]
    # (The deemed-approval job's periodic query of overdue tasks may run meanwhile: it reads no task by id.)
    assert not [s for s in statements if s.startswith("SELECT") and "FROM TASK WHERE TASK.ID =" in s]
    assert len([s for s in statements if "UPDATE TASK SET" in s]) == 1
    # Refusals keep their statuses: another department's task, a decided one, none at all.
    assert (await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-WJJ"]["id"])).status_code == 403
    assert (await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])).status_code == 409
    assert (await decide(client, reviewer(tokens, "LD-WJJ"), "no-such-task")).status_code == 404
    assert (await decide(client, reviewer(tokens, "LD-XFJ"), "no-such-task", {"outcome": "reject"})).status_code == 404
    r = await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"], {"outcome": "reject"})
    assert r.status_code == 422 and (await case(client, tokens, body["application_id"]))["stages"][0]["tasks"]


async def test_a_decision_counted_after_waiting_for_the_other_completes_the_stage_once(client, tokens, recorder):
    """Issue 14: a decision counts itself in its stage in one statement, which brings the stage's decided tasks
    along when the count reaches the total. When the last two decisions interleave, the
    second waits for the stage row held by the first; once the first commits, the second's count reaches the
    total though its statement began before the first's task was decided: fan-in reads the tasks again, and the
    stage and the case complete exactly once."""
    import asyncio

    from services.workflow.domain.process import Outcome
    from services.workflow.service.tasks import Decider, DecisionInput, decide_task
    from shared.testing import emitted

    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    tasks = tasks_of(c)
    db = client.app.state.db

    async def decide_now(session, department):  # type: ignore[no-untyped-def]
        return await decide_task(session, tasks[department]["id"],
                                 Decider(kind="staff", id=f"reviewer-{department}", name=None, department=department),
                                 DecisionInput(Outcome.APPROVE, [], None, []))

    async def second() -> None:
        async with db.transaction() as s:
            await decide_now(s, "LD-XFJ")

    async with db.transaction() as s:
        await decide_now(s, "LD-WJJ")
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)  # the second decision's statement has begun and waits for the stage row
    await waiting
    app_id = c["application_id"]
    assert await emitted(client.app, "yimen.workflow.stage.completed", app_id) == 1
    assert await emitted(client.app, "yimen.workflow.application.decided", app_id) == 1
    done = await case(client, tokens, app_id)
    assert done["state"] == "approved" and done["stages"][0]["outcome"] == "approved"


async def test_a_decision_locks_its_stage_row_last_so_the_others_wait_for_its_commit_alone(client, tokens, recorder):
    """Issue 14: the count of a decision in its stage locks the stage row until the transaction ends, and the
    stage's other decisions wait for that lock (most of workflow's PostgreSQL time in the bench was that wait). So
    the count is the decision's last statement: its event is written before it (with it, on PostgreSQL), and the
    commit follows at once. The event is written all the same, once."""
    from shared.testing import emitted

    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(FOOD_DEPARTMENTS)])
    tasks = tasks_of(await start_case(client, tokens, code))
    with recording_statements(client.app.state.db.engine, commits=True) as log:
        r = await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])
    assert r.status_code == 200, r.text
    by_connection = log.by_connection()
    counts = [(run, i) for run in by_connection.values() for i, s in enumerate(run)
              if "UPDATE STAGE SET DECIDED" in s]
    assert len(counts) == 1, by_connection
    run, i = counts[0]
    # On PostgreSQL the statement is a transaction of its own (autocommit: no COMMIT of the client's follows it).
    assert run[i + 1:i + 2] == ([] if client.app.state.db.engine.dialect.name == "postgresql" else ["COMMIT"]), run[i:]
    assert any("INSERT INTO OUTBOX" in s for s in run[:i + 1]), run
    assert await emitted(client.app, "yimen.workflow.task.decided", tasks["LD-WJJ"]["id"]) == 1


async def test_a_decision_that_does_not_complete_its_stage_holds_the_stage_row_no_longer_than_its_statement(
        client, tokens, monkeypatch):
    """Issue 14: on PostgreSQL a REST decision that does not complete its stage is one statement that is its own
    transaction, so the stage row its count locks is free again when the statement ends, not after the request's
    commit (under load, the stage's other decisions waited 10–60 ms each for it). Seen while the request is still
    rendering its answer: the stage row can be locked at once, the decision and its event are committed. The
    decision that completes the stage still moves the case on in one transaction, its event written once."""
    from sqlalchemy import text

    from services.workflow import service
    from shared.testing import emitted

    db = client.app.state.db
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"], lead="LD-WJJ"),
                                                parallel_step(["LD-GAJ"], key="second")])
    c = await start_case(client, tokens, code)
    tasks = tasks_of(c)
    seen: list[tuple[str, str, int]] = []

    async def look(task_id: str) -> None:
        async with db.engine.connect() as other:
            stage_id = (await other.execute(text("SELECT stage_id FROM task WHERE id = :t"), {"t": task_id})).scalar()
            locked = "free"
            try:
                async with other.begin_nested():
                    await other.execute(text("SELECT id FROM stage WHERE id = :s FOR UPDATE NOWAIT"), {"s": stage_id})
            except Exception:  # noqa: BLE001 — the lock is held by the request's transaction
                locked = "locked"
            state = (await other.execute(text("SELECT state FROM task WHERE id = :t"), {"t": task_id})).scalar()
            events = (await other.execute(text("SELECT count(*) FROM outbox WHERE type = 'yimen.workflow.task.decided' "
                                               "AND payload LIKE :p"), {"p": f'%"{task_id}"%'})).scalar()
            await other.rollback()
        seen.append((locked, state, events))

    real = service.decide

    async def decide_and_look(*args, **kwargs):  # type: ignore[no-untyped-def]
        task = await real(*args, **kwargs)
        if db.engine.dialect.name == "postgresql":
            await look(task.id)  # the request's transaction has not ended yet
        return task

    monkeypatch.setattr(service, "decide", decide_and_look)
    r = await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"])
    assert r.status_code == 200, r.text
    if db.engine.dialect.name == "postgresql":
        assert seen == [("free", "decided", 1)]
    monkeypatch.setattr(service, "decide", real)
    r = await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])
    assert r.status_code == 200, r.text
    app_id = c["application_id"]
    assert await emitted(client.app, "yimen.workflow.task.decided", tasks["LD-WJJ"]["id"]) == 1
    assert await emitted(client.app, "yimen.workflow.task.decided", tasks["LD-XFJ"]["id"]) == 1
    assert await emitted(client.app, "yimen.workflow.stage.completed", app_id) == 1
    done = await case(client, tokens, app_id)
    assert done["stages"][0]["outcome"] == "approved" and done["stages"][0]["completed_at"]
    assert [t["department"] for t in done["stages"][1]["tasks"]] == ["LD-GAJ"]
    # A decision again: refused as before, and nothing written.
    r = await decide(client, reviewer(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"])
    assert r.status_code == 409, r.text
    assert await emitted(client.app, "yimen.workflow.task.decided", tasks["LD-XFJ"]["id"]) == 1


async def test_a_rest_decision_that_waited_for_a_concurrent_one_and_completes_the_stage_moves_the_case_on_once(
        client, tokens):
    """Issue 14: a REST decision is first tried as a statement of its own (PostgreSQL), which leaves a task alone when
    its snapshot sees the stage waiting for it only. Here its snapshot sees room (the other decision has not
    committed), its count waits for the other's stage row lock and then completes the stage: the statement fails and
    changes nothing, and the decision is taken again in one transaction with the fan-in. Exactly one completion,
    one event per decision, the next stage opened."""
    import asyncio

    from services.workflow.service import tasks as use_cases
    from shared.testing import emitted

    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"], lead="LD-WJJ"),
                                                parallel_step(["LD-GAJ"], key="second")])
    c = await start_case(client, tokens, code)
    first, last = tasks_of(c)["LD-WJJ"], tasks_of(c)["LD-XFJ"]
    db = client.app.state.ctx.db  # type: ignore[attr-defined]
    async with db.transaction() as holding:
        await use_cases.decide_task(holding, first["id"], use_cases.Decider(
            kind="department_system", id="department:LD-WJJ", name=None, department="LD-WJJ"),
            use_cases.DecisionInput(use_cases.Outcome.APPROVE, ["ok"], None, []))
        waiting = asyncio.ensure_future(decide(client, reviewer(tokens, "LD-XFJ"), last["id"]))
        await asyncio.sleep(0.5)  # its statement has taken its snapshot and waits for the stage row
    r = await waiting
    assert r.status_code == 200, r.text
    app_id = c["application_id"]
    assert await emitted(client.app, "yimen.workflow.task.decided", last["id"]) == 1
    assert await emitted(client.app, "yimen.workflow.task.decided", first["id"]) == 1
    assert await emitted(client.app, "yimen.workflow.stage.completed", app_id) == 1
    done = await case(client, tokens, app_id)
    assert done["stages"][0]["outcome"] == "approved" and done["stages"][0]["completed_at"]
    assert [t["department"] for t in done["stages"][1]["tasks"]] == ["LD-GAJ"]


async def test_the_decision_of_a_task_alone_in_its_stage_is_one_decision_statement(client, tokens):
    """Issue 14: a task this process opened alone in its stage completes the stage when decided, so its decision is
    not first tried as a statement of its own (which would leave it alone and cost a statement more)."""
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-GAJ"], key="only")])
    c = await start_case(client, tokens, code)
    with recording_statements(client.app.state.db.engine) as log:
        r = await decide(client, reviewer(tokens, "LD-GAJ"), tasks_of(c)["LD-GAJ"]["id"])
    assert r.status_code == 200, r.text
    assert len([s for _, s in log.entries if "UPDATE task SET" in s]) == 1, log.entries
    assert (await case(client, tokens, c["application_id"]))["state"] == "approved"


async def test_the_decision_that_waited_for_another_completes_the_stage_with_both_decisions(client, tokens,
                                                                                          monkeypatch):
    """Issue 14: the last decision of a stage waits for the stage row a concurrent one holds; its statement's
    snapshot of the tasks predates that one's commit. On PostgreSQL the stage row carries every counted decision,
    so the fan-in has them all without reading the tasks again (on SQLite, one writer, it reads them)."""
    import asyncio

    from services.workflow.service import tasks as use_cases
    from services.workflow.store import repository

    reads: list[int] = []
    read = repository.decided_tasks_of_stage

    async def decided_tasks_of_stage(session, stage_id):  # type: ignore[no-untyped-def]
        reads.append(stage_id)
        return await read(session, stage_id)

    monkeypatch.setattr(repository, "decided_tasks_of_stage", decided_tasks_of_stage)
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"], lead="LD-WJJ"),
                                                parallel_step(["LD-GAJ"], key="second")])
    c = await start_case(client, tokens, code)
    first, last = tasks_of(c)["LD-WJJ"], tasks_of(c)["LD-XFJ"]
    db = client.app.state.ctx.db  # type: ignore[attr-defined]
    approve = use_cases.DecisionInput(use_cases.Outcome.APPROVE, ["ok"], None, [])

    def decider(dept: str) -> use_cases.Decider:
        return use_cases.Decider(kind="department_system", id=f"department:{dept}", name=None, department=dept)

    async with db.transaction() as holding:
        await use_cases.decide_task(holding, first["id"], decider("LD-WJJ"), approve)

        async def decide_last() -> None:
            async with db.transaction() as s:
                await use_cases.decide_task(s, last["id"], decider("LD-XFJ"), approve)

        waiting = asyncio.create_task(decide_last())
        await asyncio.sleep(0.5)  # the last decision has taken its snapshot and waits for the stage row
    await waiting
    done = await case(client, tokens, c["application_id"])
    assert done["stages"][0]["outcome"] == "approved" and done["stages"][0]["completed_at"]
    assert [t["department"] for t in done["stages"][1]["tasks"]] == ["LD-GAJ"]
    if db.engine.dialect.name == "postgresql":
        assert reads == []
