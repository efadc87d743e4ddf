"""OWASP API Top 10 against a running workflow (real database, real bus): a department reaching another
department's task (read, decide, reassign), a citizen on department routes, another applicant's case,
deciding twice, and SSRF through the webhook registration route (refused unless the deployment allows
private addresses)."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.tests.helpers import define_item, parallel_step, reviewer, start_case, system, tasks_of
from tests.security.conftest import serve

BASE = "/workflow/v1"
PROBLEM = "application/problem+json"
DEPTS = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ"]


@pytest_asyncio.fixture(scope="module")
async def workflow(settings_for, tokens):
    config = WorkflowConfig(webhook_allow_private=False, webhook_poll_seconds=0.2)
    async with serve(create_app, settings_for("workflow"), tokens=tokens, config=config) as served:
        yield served


@pytest_asyncio.fixture(scope="module")
async def case(workflow, tokens):
    code = "SEC-" + uuid.uuid4().hex[:8]
    await define_item(workflow.client, tokens, code, 1, [parallel_step(DEPTS)])
    return await start_case(workflow.client, tokens, code, applicant_id="owner-1")


async def test_a_department_reaches_no_other_departments_task(workflow, tokens, case):
    fire = tasks_of(case)["LD-XFJ"]
    wrong = []
    for who in (reviewer(tokens, "LD-WJJ"), system(tokens, "LD-WJJ"), reviewer(tokens, "LD-MZJ")):
        for method, suffix, body in (("GET", "", None), ("POST", "/decision", {"outcome": "approve", "reasons": ["ok"]}),
                                     ("POST", "/assignee", {"assignee": "staff-x"})):
            r = await workflow.client.request(method, f"{BASE}/tasks/{fire['id']}{suffix}", headers=who, json=body)
            if r.status_code not in (403, 404) or r.headers["content-type"] != PROBLEM:
                wrong.append(f"{method} {suffix or '/'} as {who} → {r.status_code} {r.text[:120]}")
        r = await workflow.client.get(f"{BASE}/tasks", headers=who, params={"department": "LD-XFJ"})
        if r.status_code != 403:
            wrong.append(f"GET /tasks?department=LD-XFJ → {r.status_code}")
    assert not wrong, "\n".join(wrong)
    still = await workflow.client.get(f"{BASE}/tasks/{fire['id']}", headers=reviewer(tokens, "LD-XFJ"))
    assert still.status_code == 200 and still.json()["state"] == "open"


async def test_a_citizen_reaches_no_department_route_and_not_another_applicants_case(workflow, tokens, case):
    task = tasks_of(case)["LD-WJJ"]
    owner = tokens.headers("owner-1", roles=["citizen"], hid="440000199001011234")
    stranger = tokens.headers("stranger-1", roles=["citizen"], hid="445381198502020021")
    wrong = []
    for method, path, body in (
        ("GET", "/tasks", None), ("GET", f"/tasks/{task['id']}", None),
        ("POST", f"/tasks/{task['id']}/decision", {"outcome": "approve", "reasons": ["ok"]}),
        ("POST", f"/tasks/{task['id']}/assignee", {"assignee": "me"}),
        ("PUT", "/departments/LD-WJJ/webhook", {"url": "https://8.8.8.8/hook"}),
        ("GET", "/departments/LD-WJJ/webhook", None), ("GET", "/departments/LD-WJJ/deliveries", None),
        ("POST", "/departments/LD-WJJ/deliveries/replay", {}),
    ):
        r = await workflow.client.request(method, BASE + path, headers=owner, json=body)
        if r.status_code not in (403, 404) or r.headers["content-type"] != PROBLEM:
            wrong.append(f"{method} {path} → {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert (await workflow.client.get(f"{BASE}/cases/{case['application_id']}", headers=owner)).status_code == 200
    other = await workflow.client.get(f"{BASE}/cases/{case['application_id']}", headers=stranger)
    assert other.status_code in (403, 404) and other.headers["content-type"] == PROBLEM


async def test_deciding_a_task_twice_is_409_and_the_first_decision_stands(workflow, tokens, case):
    task = tasks_of(case)["LD-SCJGJ"]
    url = f"{BASE}/tasks/{task['id']}/decision"
    first = await workflow.client.post(url, headers=reviewer(tokens, "LD-SCJGJ"),
                                       json={"outcome": "approve", "reasons": ["符合"]})
    assert first.status_code == 200, first.text
    again = await workflow.client.post(url, headers=system(tokens, "LD-SCJGJ"),
                                       json={"outcome": "reject", "reasons": ["改主意"], "legal_basis": "《行政许可法》"})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    got = (await workflow.client.get(f"{BASE}/tasks/{task['id']}", headers=reviewer(tokens, "LD-SCJGJ"))).json()
    assert got["outcome"] == "approve"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hooks", "http://localhost:8104/workflow/v1/tasks", "http://10.0.0.1/x",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/x", "http://[::ffff:127.0.0.1]/x",
    "http://0.0.0.0:8000/", "http://2130706433/", "http://127.1/", "http://192.168.0.1/", "http://172.16.0.1/",
    "https://[fe80::1]/x",
    # Shared address space (RFC 6598), used inside clouds: Alibaba Cloud's instance metadata is 100.100.100.200.
    "http://100.64.0.1/", "http://100.100.100.200/latest/meta-data/",
])
async def test_a_webhook_url_to_an_internal_address_is_refused(workflow, tokens, url):
    r = await workflow.client.put(f"{BASE}/departments/LD-JYJ/webhook", json={"url": url},
                                  headers=system(tokens, "LD-JYJ"))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (url, r.status_code, r.text)
    assert r.json()["errors"][0]["field"] == "body.url"
    kept = await workflow.client.get(f"{BASE}/departments/LD-JYJ/webhook", headers=system(tokens, "LD-JYJ"))
    assert kept.status_code == 404 or kept.json()["url"] != url


async def test_the_deployment_may_allow_private_webhook_urls(settings_for, tokens):
    config = WorkflowConfig(webhook_allow_private=True)
    async with serve(create_app, settings_for("workflow"), tokens=tokens, config=config) as served:
        r = await served.client.put(f"{BASE}/departments/LD-JYJ/webhook", json={"url": "http://127.0.0.1:9/hooks"},
                                    headers=system(tokens, "LD-JYJ"))
        assert r.status_code == 200, r.text


def test_the_private_address_switch_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE", "true")
    assert WorkflowConfig().webhook_allow_private is True
    monkeypatch.delenv("YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE")
    assert WorkflowConfig().webhook_allow_private is False
