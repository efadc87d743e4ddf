"""Per-department limits in a parallel stage and joint reviews (联合审图 / 联合验收) through the running service:
real database, real bus, REST as department systems call it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.workflow.tests.helpers import (
    case,
    define_item,
    parallel_step,
    publish,
    reviewer,
    start_case,
    supervisor,
    system,
    tasks_of,
)
from shared.events import new_event
from shared.testing import eventually

JOINT = ["LD-ZJJ", "LD-XFJ", "LD-STHJJ"]


def joint_step(departments: list[str] = JOINT, *, kind: str = "acceptance") -> dict:
    return {"key": "joint", "name": "竣工联合验收", "kind": "joint_review", "review_kind": kind,
            "departments": departments, "lead_department": departments[0], "limit_days": 8}


def decision_step() -> dict:
    return {"key": "decision", "name": "决定", "kind": "decision", "departments": ["LD-ZJJ"], "limit_days": 1}


def new_code() -> str:
    return "JOINT-" + uuid.uuid4().hex[:8]


def today() -> str:
    return (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()


async def test_each_department_of_a_parallel_stage_gets_its_own_limit_and_due_date(client, tokens, recorder):
    code = new_code()
    step = parallel_step(["LD-SCJGJ", "LD-WJJ", "LD-XFJ"], limit_days=6)
    step["department_limits"] = {"LD-WJJ": 2}
    await define_item(client, tokens, code, 1, [step])
    c = await start_case(client, tokens, code)
    tasks = tasks_of(c)
    assert tasks["LD-WJJ"]["limit_days"] == 2 and tasks["LD-SCJGJ"]["limit_days"] == tasks["LD-XFJ"]["limit_days"] == 6
    assert tasks["LD-WJJ"]["due_at"] < tasks["LD-XFJ"]["due_at"] == tasks["LD-SCJGJ"]["due_at"]
    assigned = await eventually(lambda: len(recorder.of("task.assigned", c["application_id"])) == 3
                                and recorder.of("task.assigned", c["application_id"]))
    by_dept = {e.data["department"]: e.data for e in assigned}
    assert by_dept["LD-WJJ"]["limit_days"] == 2 and by_dept["LD-XFJ"]["limit_days"] == 6
    assert by_dept["LD-WJJ"]["due_at"] != by_dept["LD-XFJ"]["due_at"]


async def _review_of(client, tokens, app_id):  # type: ignore[no-untyped-def]
    async def found():  # type: ignore[no-untyped-def]
        r = await client.get("/workflow/v1/joint-reviews", params={"application_id": app_id},
                             headers=supervisor(tokens))
        return r.json()[0] if r.status_code == 200 and r.json() else None

    return await eventually(found)


async def test_a_joint_acceptance_fails_a_point_goes_back_once_and_reinspects_only_that_point(client, tokens, recorder):
    code = new_code()
    await define_item(client, tokens, code, 1, [joint_step(), decision_step()])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    # One task, the lead's, carries the joint review in the process.
    assert list(tasks_of(c)) == ["LD-ZJJ"] and tasks_of(c)["LD-ZJJ"]["stage_kind"] == "joint_review"
    review = await _review_of(client, tokens, app_id)
    rid, task_id = review["id"], review["task_id"]
    assert review["state"] == "awaiting_schedule" and review["departments"] == JOINT
    opened = await eventually(lambda: recorder.of("joint_review.opened", app_id))
    assert opened[0].data["round"] == 1 and opened[0].data["eligible"] == JOINT

    # The lead's task is settled by consolidation, not by a decision.
    r = await client.post(f"/workflow/v1/tasks/{task_id}/decision", json={"outcome": "approve"},
                          headers=system(tokens, "LD-ZJJ"))
    assert r.status_code == 409, r.text
    # Only the lead schedules; a participant cannot give an opinion before the schedule.
    body = {"date": today(), "mode": "on_site", "place": "素龙工业园 8 号（项目现场）"}
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json=body, headers=system(tokens, "LD-XFJ"))
    assert r.status_code == 403, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                          headers=system(tokens, "LD-XFJ"))
    assert r.status_code == 409, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json={**body, "date": "2020-01-01"},
                          headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.date", r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json=body, headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 200, r.text
    assert r.json()["rounds"][0]["participants"] == JOINT and r.json()["pending"] == JOINT
    scheduled = await eventually(lambda: recorder.of("joint_review.scheduled", app_id))
    assert scheduled[0].data["participants"] == JOINT and scheduled[0].data["mode"] == "on_site"

    # Opinions: one per department, a fail names its points.
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "fail"},
                          headers=system(tokens, "LD-XFJ"))
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "required_for_fail", r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                          headers=system(tokens, "LD-GAJ"))
    assert r.status_code == 403, r.text
    for dept, opinion in (
        ("LD-ZJJ", {"verdict": "pass"}),
        ("LD-XFJ", {"verdict": "fail", "failed_points": [{"point": "消防车通道", "reason": "净宽不足 4 米"}]}),
    ):
        r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json=opinion, headers=system(tokens, dept))
        assert r.status_code == 200, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                          headers=system(tokens, "LD-XFJ"))
    assert r.status_code == 409, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/consolidation", json={},
                          headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 409 and "LD-STHJJ" in r.json()["detail"], r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions",
                          json={"verdict": "pass_with_conditions", "conditions": ["雨污分流井盖标识"]},
                          headers=reviewer(tokens, "LD-STHJJ"))
    assert r.status_code == 200 and r.json()["pending"] == [], r.text
    recorded = await eventually(lambda: len(recorder.of("joint_review.opinion_recorded", app_id)) == 3
                                and recorder.of("joint_review.opinion_recorded", app_id))
    assert recorded[-1].data["pending"] == []

    # An outsider sees nothing; the consolidation sends the failed point to the owner as one correction notice.
    r = await client.get(f"/workflow/v1/joint-reviews/{rid}", headers=system(tokens, "LD-GAJ"))
    assert r.status_code == 404
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/consolidation", json={},
                          headers=reviewer(tokens, "LD-XFJ"))
    assert r.status_code == 403
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/consolidation", json={"summary": "汇总"},
                          headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "awaiting_correction" and r.json()["rounds"][0]["result"] == "correction_required"
    decided = await eventually(lambda: recorder.of("task.decided", app_id))
    assert decided[0].data["outcome"] == "request_correction" and decided[0].data["task_id"] == task_id
    assert [m["reason"] for m in decided[0].data["missing"]] == ["LD-XFJ：消防车通道——净宽不足 4 米"]
    consolidated = await eventually(lambda: recorder.of("joint_review.consolidated", app_id))
    assert consolidated[0].data["result"] == "correction_required"
    assert consolidated[0].data["conditions"] == ["LD-STHJJ：雨污分流井盖标识"]

    # The owner corrects (intake's event): a re-inspection of that point only, with only the department that failed it.
    await publish(client, new_event("yimen.intake.application.corrected", source="/yimen/intake", subject=app_id,
                                    data={"application_id": app_id, "receipt_number": c["receipt_number"],
                                          "task_id": task_id, "corrected_at": datetime.now(UTC).isoformat()}))
    reopened = await eventually(lambda: [e for e in recorder.of("joint_review.opened", app_id) if e.data["round"] == 2])
    assert reopened[0].data["eligible"] == ["LD-XFJ"]
    assert [p["point"] for p in reopened[0].data["points"]] == ["消防车通道"]
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule",
                          json={**body, "participants": ["LD-XFJ", "LD-STHJJ"]}, headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 422, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json=body, headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 200 and r.json()["rounds"][1]["participants"] == ["LD-XFJ"], r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                          headers=system(tokens, "LD-STHJJ"))
    assert r.status_code == 403, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                          headers=system(tokens, "LD-XFJ"))
    assert r.status_code == 200, r.text
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/consolidation", json={},
                          headers=system(tokens, "LD-ZJJ"))
    assert r.status_code == 200 and r.json()["state"] == "passed", r.text
    view = r.json()
    assert [(x["number"], x["reinspection"], x["result"]) for x in view["rounds"]] == [
        (1, False, "correction_required"), (2, True, "passed")]

    # The case moves on to the decision step.
    async def decision_open():  # type: ignore[no-untyped-def]
        cur = await case(client, tokens, app_id)
        return cur if len(cur["stages"]) == 2 else None

    moved = await eventually(decision_open)
    assert moved["stages"][0]["outcome"] == "approved" and list(tasks_of(moved, 1)) == ["LD-ZJJ"]


async def test_the_applicant_reads_the_joint_review_and_a_stranger_does_not(client, tokens):
    code = new_code()
    await define_item(client, tokens, code, 1, [joint_step(kind="drawing_review")])
    c = await start_case(client, tokens, code, applicant_id="org-77",
                         applicant={"kind": "organisation", "id": "org-77", "holder_id": "91441781MA4W0000XX",
                                    "name": "罗定某厂", "agent_id": "agent-1"})
    review = await _review_of(client, tokens, c["application_id"])
    owner = tokens.headers("agent-1", kind="person", roles=["org_agent"], org="org-77")
    stranger = tokens.headers("person-9", kind="person", roles=["citizen"])
    assert (await client.get(f"/workflow/v1/joint-reviews/{review['id']}", headers=owner)).status_code == 200
    assert (await client.get(f"/workflow/v1/joint-reviews/{review['id']}", headers=stranger)).status_code == 404
    assert review["review_kind"] == "drawing_review"


async def test_opinions_given_at_once_are_counted_one_after_the_other_so_the_last_sees_none_pending(client, tokens,
                                                                                                     recorder):
    import asyncio

    code = new_code()
    departments = ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"]
    await define_item(client, tokens, code, 1, [joint_step(departments)])
    c = await start_case(client, tokens, code)
    rid = (await _review_of(client, tokens, c["application_id"]))["id"]
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json={"date": today(), "place": "现场"},
                          headers=system(tokens, "LD-ZJJ"))
    assert r.status_code == 200, r.text
    answers = await asyncio.gather(*(client.post(f"/workflow/v1/joint-reviews/{rid}/opinions", json={"verdict": "pass"},
                                                 headers=system(tokens, d)) for d in departments))
    assert [a.status_code for a in answers] == [200] * 4
    recorded = await eventually(lambda: len(recorder.of("joint_review.opinion_recorded", c["application_id"])) == 4
                                and recorder.of("joint_review.opinion_recorded", c["application_id"]))
    assert sorted(len(e.data["pending"]) for e in recorded) == [0, 1, 2, 3]


async def test_a_withdrawn_case_cancels_its_joint_review(client, tokens):
    code = new_code()
    await define_item(client, tokens, code, 1, [joint_step()])
    c = await start_case(client, tokens, code)
    app_id = c["application_id"]
    rid = (await _review_of(client, tokens, app_id))["id"]
    await publish(client, new_event("yimen.intake.application.withdrawn", source="/yimen/intake", subject=app_id,
                                    data={"application_id": app_id, "receipt_number": c["receipt_number"],
                                          "withdrawn_at": datetime.now(UTC).isoformat()}))

    async def cancelled():  # type: ignore[no-untyped-def]
        r = await client.get(f"/workflow/v1/joint-reviews/{rid}", headers=supervisor(tokens))
        return r.json() if r.json()["state"] == "cancelled" else None

    review = await eventually(cancelled)
    assert review["closed_at"]
    r = await client.post(f"/workflow/v1/joint-reviews/{rid}/schedule", json={"date": today(), "place": "现场"},
                          headers=system(tokens, "LD-ZJJ"))
    assert r.status_code == 409, r.text
