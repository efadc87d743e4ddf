"""What departments, supervisors and applicants see: the inbox with filters and cursor pages, one task,
reassignment within the department, the case view and its access rules."""

from __future__ import annotations

import uuid

from services.workflow.tests.helpers import (
    define_item,
    parallel_step,
    reviewer,
    start_case,
    supervisor,
    system,
    tasks_of,
)
from shared.testing import eventually

DEPTS = ["LD-ZJJ", "LD-JYJ"]


async def _cases(client, tokens, n: int):  # type: ignore[no-untyped-def]
    code = "VIEW-" + uuid.uuid4().hex[:6]
    await define_item(client, tokens, code, 1, [parallel_step(DEPTS, limit_days=3)])
    return code, [await start_case(client, tokens, code, applicant_id=f"applicant-{i}") for i in range(n)]


async def test_a_department_inbox_lists_its_own_tasks_in_cursor_pages(client, tokens):
    code, cases = await _cases(client, tokens, 3)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"item_code": code, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/workflow/v1/tasks", params=params, headers=reviewer(tokens, "LD-ZJJ"))
        assert r.status_code == 200, r.text
        page = r.json()
        assert all(t["department"] == "LD-ZJJ" and t["item_code"] == code for t in page["items"])
        seen += [t["id"] for t in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(tasks_of(c)["LD-ZJJ"]["id"] for c in cases)
    assert len(set(seen)) == 3
    first = (await client.get("/workflow/v1/tasks", params={"item_code": code, "state": "open"},
                              headers=system(tokens, "LD-JYJ"))).json()["items"]
    assert len(first) == 3 and all(t["due_at"] and t["state"] == "open" for t in first)
    decided = await client.get("/workflow/v1/tasks", params={"item_code": code, "state": "decided"},
                               headers=system(tokens, "LD-JYJ"))
    assert decided.json()["items"] == []
    everyone = await client.get("/workflow/v1/tasks", params={"item_code": code}, headers=supervisor(tokens))
    assert {t["department"] for t in everyone.json()["items"]} == set(DEPTS)
    one_dept = await client.get("/workflow/v1/tasks", params={"item_code": code, "department": "LD-JYJ"},
                                headers=supervisor(tokens))
    assert {t["department"] for t in one_dept.json()["items"]} == {"LD-JYJ"}


async def test_inbox_refuses_outsiders_and_bad_parameters(client, tokens):
    assert (await client.get("/workflow/v1/tasks")).status_code == 401
    citizen = await client.get("/workflow/v1/tasks", headers=tokens.headers("p-1"))
    assert citizen.status_code == 403 and citizen.headers["content-type"] == "application/problem+json"
    peek = await client.get("/workflow/v1/tasks", params={"department": "LD-JYJ"}, headers=reviewer(tokens, "LD-ZJJ"))
    assert peek.status_code == 403
    bad_state = await client.get("/workflow/v1/tasks", params={"state": "done"}, headers=reviewer(tokens, "LD-ZJJ"))
    assert bad_state.status_code == 422 and bad_state.json()["errors"][0]["field"] == "query.state"
    bad_cursor = await client.get("/workflow/v1/tasks", params={"cursor": "!!"}, headers=reviewer(tokens, "LD-ZJJ"))
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["rule"] == "cursor"
    bad_limit = await client.get("/workflow/v1/tasks", params={"limit": 0}, headers=reviewer(tokens, "LD-ZJJ"))
    assert bad_limit.status_code == 422 and bad_limit.json()["errors"][0]["field"] == "query.limit"


async def test_a_task_is_visible_to_its_department_only(client, tokens):
    _, (c,) = await _cases(client, tokens, 1)
    task = tasks_of(c)["LD-ZJJ"]
    own = await client.get(f"/workflow/v1/tasks/{task['id']}", headers=reviewer(tokens, "LD-ZJJ"))
    assert own.status_code == 200 and own.json()["id"] == task["id"]
    other = await client.get(f"/workflow/v1/tasks/{task['id']}", headers=reviewer(tokens, "LD-JYJ"))
    assert other.status_code == 404
    assert (await client.get(f"/workflow/v1/tasks/{task['id']}", headers=supervisor(tokens))).status_code == 200


async def test_a_task_is_reassigned_within_its_department(client, tokens):
    _, (c,) = await _cases(client, tokens, 1)
    task = tasks_of(c)["LD-ZJJ"]
    r = await client.post(f"/workflow/v1/tasks/{task['id']}/assignee", json={"assignee": "staff-7"},
                          headers=reviewer(tokens, "LD-ZJJ"))
    assert r.status_code == 200 and r.json()["assignee"] == "staff-7"
    other = await client.post(f"/workflow/v1/tasks/{task['id']}/assignee", json={"assignee": "x"},
                              headers=reviewer(tokens, "LD-JYJ"))
    assert other.status_code == 404
    empty = await client.post(f"/workflow/v1/tasks/{task['id']}/assignee", json={"assignee": ""},
                              headers=reviewer(tokens, "LD-ZJJ"))
    assert empty.status_code == 422 and empty.json()["errors"][0]["rule"] == "string_too_short"
    await client.post(f"/workflow/v1/tasks/{task['id']}/decision", json={"outcome": "approve"},
                      headers=reviewer(tokens, "LD-ZJJ"))
    late = await client.post(f"/workflow/v1/tasks/{task['id']}/assignee", json={"assignee": "staff-8"},
                             headers=reviewer(tokens, "LD-ZJJ"))
    assert late.status_code == 409


async def test_a_case_is_visible_to_its_applicant_involved_departments_and_supervisors(client, tokens):
    _, (c,) = await _cases(client, tokens, 1)
    app_id = c["application_id"]
    url = f"/workflow/v1/cases/{app_id}"
    assert (await client.get(url, headers=tokens.headers("applicant-0"))).status_code == 200
    assert (await client.get(url, headers=tokens.headers("applicant-9"))).status_code == 404
    assert (await client.get(url, headers=reviewer(tokens, "LD-ZJJ"))).status_code == 200
    assert (await client.get(url, headers=reviewer(tokens, "LD-GAJ"))).status_code == 404
    body = (await client.get(url, headers=supervisor(tokens))).json()
    assert body["state"] == "running" and body["stages"][0]["kind"] == "parallel"
    assert (await client.get("/workflow/v1/cases/nope", headers=supervisor(tokens))).status_code == 404
    assert (await client.get(url)).status_code == 401


async def test_an_organisation_agent_sees_the_organisation_case(client, tokens):
    code = "VIEW-" + uuid.uuid4().hex[:6]
    await define_item(client, tokens, code, 1, [parallel_step(["LD-ZJJ"])])
    org = {"kind": "organisation", "id": "91441781MA4W000001", "holder_id": "91441781MA4W000001",
           "name": "罗定市某某餐饮店", "agent_id": "agent-1"}
    c = await start_case(client, tokens, code, applicant=org)
    url = f"/workflow/v1/cases/{c['application_id']}"
    agent = tokens.headers("agent-2", roles=["org_agent"], org="91441781MA4W000001")
    assert (await client.get(url, headers=agent)).status_code == 200
    stranger = tokens.headers("agent-3", roles=["org_agent"], org="91441781MA4W000002")
    assert (await client.get(url, headers=stranger)).status_code == 404


async def test_openapi_documents_the_public_paths(client):
    spec = (await client.get("/workflow/openapi.json")).json()
    for path in ["/workflow/v1/tasks", "/workflow/v1/tasks/{task_id}", "/workflow/v1/tasks/{task_id}/decision",
                 "/workflow/v1/cases/{application_id}", "/workflow/v1/departments/{code}/webhook",
                 "/workflow/v1/departments/{code}/deliveries"]:
        assert path in spec["paths"], path
    decision = spec["paths"]["/workflow/v1/tasks/{task_id}/decision"]["post"]
    assert {"403", "409", "422"} <= set(decision["responses"])


async def test_who_holds_a_task_and_who_decided_it_reach_the_bus_with_name_office_phone_and_unit(client, tokens, recorder):
    _, (c,) = await _cases(client, tokens, 1)
    task = tasks_of(c)["LD-ZJJ"]
    me = tokens.headers("reviewer-zhou", kind="staff", roles=["department_reviewer"], dept="LD-ZJJ", name="周审查",
                        phone="0766-3811111", unit="行政审批股")
    r = await client.post(f"/workflow/v1/tasks/{task['id']}/assignee", json={"assignee": "reviewer-zhou"}, headers=me)
    assert r.status_code == 200 and r.json()["assignee"] == "reviewer-zhou"
    # A colleague, named in the body.
    other = tasks_of(c)["LD-JYJ"]
    r = await client.post(f"/workflow/v1/tasks/{other['id']}/assignee", headers=reviewer(tokens, "LD-JYJ"),
                          json={"assignee": "staff-9", "name": "吴老师", "office_phone": "0766-3877777"})
    assert r.status_code == 200
    held = await eventually(lambda: len(recorder.of("task.handler_assigned", c["application_id"])) == 2
                            and recorder.of("task.handler_assigned", c["application_id"]))
    by_task = {e.data["task_id"]: e.data["handler"] for e in held}
    assert by_task[task["id"]] == {"id": "reviewer-zhou", "name": "周审查", "office_phone": "0766-3811111",
                                   "unit": "行政审批股"}
    assert by_task[other["id"]] == {"id": "staff-9", "name": "吴老师", "office_phone": "0766-3877777", "unit": None}
    r = await client.post(f"/workflow/v1/tasks/{task['id']}/decision", json={"outcome": "approve"}, headers=me)
    assert r.status_code == 200, r.text
    decided = await eventually(lambda: recorder.of("task.decided", c["application_id"]))
    assert decided[0].data["decided_by"] == {"kind": "staff", "id": "reviewer-zhou", "name": "周审查",
                                             "contact": "0766-3811111", "unit": "行政审批股"}
