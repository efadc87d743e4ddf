"""The project clock through the running service: intake's project events and the applications' events published
on the real bus as intake and workflow publish them, the clock read over HTTP from the real database."""

from __future__ import annotations

import pytest_asyncio

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.tests.helpers import accepted, at, decided, ev, new_id, task_decided
from shared.events import new_event
from shared.testing import eventually, running_app

OWNER = "91441781MA4W5X0Q2K"
STAFF = {"sub": "sup-1", "kind": "staff", "roles": ["supervisor"]}


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    config = EfficacyConfig(evaluation_interval_seconds=3600)
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens, config=config) as c:
        yield c


def project_event(type_: str, project_id: str, **data: object):  # type: ignore[no-untyped-def]
    return new_event(f"yimen.intake.project.{type_}", source="/yimen/intake", subject=project_id,
                     data={"project_id": project_id, **data})


async def test_the_owner_reads_the_project_clock_with_the_correction_apart_and_per_department_kpis(client, tokens):
    bus = client.app.state.bus
    pid = new_id("P")
    a, b = new_id(), new_id()
    owner = tokens.headers(sub="agent-1", kind="person", roles=["org_agent"], org=OWNER)
    await bus.publish(project_event("registered", pid, project_code="2026-441781-04-01-123456", owner_id=OWNER,
                                    name="罗定某厂新建厂房", registered_at=at("2026-11-01 10:00")))
    await bus.publish(project_event(
        "stage_accepted", pid, stage_key="planning", stage_name="立项用地规划许可", total_limit_days=10,
        accepted_at=at("2026-11-02 09:00"),
        applications=[{"application_id": a, "item_code": "ITEM-A", "department": "LD-ZJJ", "limit_days": 5},
                      {"application_id": b, "item_code": "ITEM-B", "department": "LD-XFJ", "limit_days": 8}]))
    for app_id, dept in ((a, "LD-ZJJ"), (b, "LD-XFJ")):
        event = accepted(app_id, "2026-11-02 09:00", department=dept, org=OWNER)
        event.data.update(project_id=pid, stage_key="planning")
        await bus.publish(event)
    # B's department asks for a correction (补正) and the owner answers it three working days later.
    await bus.publish(task_decided(b, "T-B", "2026-11-04 10:00", outcome="request_correction", department="LD-XFJ"))
    await bus.publish(ev("yimen.intake.application.corrected", b, receipt_number="R" + b, task_id="T-B",
                         corrected_at=at("2026-11-09 10:00"), project_id=pid, stage_key="planning"))
    await bus.publish(decided(a, "2026-11-06 11:00"))
    await bus.publish(decided(b, "2026-11-12 16:00"))
    await bus.publish(project_event("stage_completed", pid, stage_key="planning", completed_at=at("2026-11-12 16:00")))
    await bus.publish(project_event("completed", pid, completed_at=at("2026-11-12 16:00")))

    async def settled():  # type: ignore[no-untyped-def]
        r = await client.get(f"/efficacy/v1/projects/{pid}/clock", headers=owner)
        if r.status_code != 200:
            return None
        body = r.json()
        deps = body["stages"][0]["departments"] if body["stages"] else []
        done = body["state"] == "completed" and body["outside"]["owner_correction"] == 3 and all(
            d["state"] == "decided" for d in deps) and len(deps) == 2
        return body if done else None

    body = await eventually(settled)
    assert body["project_code"] == "2026-441781-04-01-123456" and body["name"] == "罗定某厂新建厂房"
    assert body["elapsed_days"] == 8 and body["government_days"] == 5
    assert body["outside"] == {"total": 3, "owner_correction": 3, "intermediary": 0}
    assert body["total_limit_days"] == 10 and body["card"] is None
    stage = body["stages"][0]
    assert (stage["stage_key"], stage["used_days"], stage["limit_days"], stage["state"]) == ("planning", 5, 10,
                                                                                             "completed")
    by_dept = {d["department"]: d for d in stage["departments"]}
    assert (by_dept["LD-ZJJ"]["used_days"], by_dept["LD-ZJJ"]["limit_days"]) == (4, 5)
    assert (by_dept["LD-XFJ"]["used_days"], by_dept["LD-XFJ"]["outside_days"]) == (5, 3)

    # Staff read it too; another organisation and a citizen do not learn the project exists.
    assert (await client.get(f"/efficacy/v1/projects/{pid}/clock", headers=tokens.headers(**STAFF))).status_code == 200
    other = tokens.headers(sub="agent-2", kind="person", roles=["org_agent"], org="91441781MA4W5X0R0X")
    assert (await client.get(f"/efficacy/v1/projects/{pid}/clock", headers=other)).status_code == 404
    assert (await client.get(f"/efficacy/v1/projects/{pid}/clock")).status_code == 401
    assert (await client.get("/efficacy/v1/projects/nope/clock", headers=owner)).status_code == 404


async def test_a_running_project_over_its_total_limit_gets_a_red_card(client, tokens):
    bus = client.app.state.bus
    pid = new_id("P")
    await bus.publish(project_event("registered", pid, project_code="2026-441781-04-01-654321", owner_id=OWNER,
                                    name="仓库", registered_at=at("2026-11-01 10:00")))
    await bus.publish(project_event(
        "stage_accepted", pid, stage_key="permit", stage_name="施工许可", total_limit_days=3,
        accepted_at=at("2026-11-02 09:00"), applications=[]))
    owner = tokens.headers(sub="agent-1", kind="person", roles=["org_agent"], org=OWNER)

    async def red():  # type: ignore[no-untyped-def]
        r = await client.get(f"/efficacy/v1/projects/{pid}/clock", headers=owner)
        return r.json() if r.status_code == 200 and r.json()["stages"] else None

    body = await eventually(red)
    assert body["state"] == "running" and body["card"] == "red" and body["stages"][0]["over_limit"]


async def test_each_department_of_a_parallel_stage_has_its_own_clock_against_its_own_limit(client, tokens):
    """Workflow announces each department's own limit and due date (明确部门办理时限); each task clock counts
    against it, so one department runs over while another in the same stage is within its limit."""
    from services.efficacy.tests.helpers import assigned

    bus = client.app.state.bus
    app_id = new_id()
    await bus.publish(accepted(app_id, "2026-11-02 09:00", days=10))
    await bus.publish(assigned(app_id, "T-WJJ", "2026-11-02 09:00", department="LD-WJJ", limit_days=2))
    await bus.publish(assigned(app_id, "T-XFJ", "2026-11-02 09:00", department="LD-XFJ", limit_days=6))

    async def clocks():  # type: ignore[no-untyped-def]
        r = await client.get(f"/efficacy/v1/clocks/{app_id}", params={"as_of": at("2026-11-05 10:00")},
                             headers=tokens.headers(**STAFF))
        return r.json() if r.status_code == 200 and len(r.json()["tasks"]) == 2 else None

    body = await eventually(clocks)
    by_dept = {t["department"]: t for t in body["tasks"]}
    assert by_dept["LD-WJJ"]["limit"]["value"] == 2 and by_dept["LD-WJJ"]["overdue"] is True
    assert by_dept["LD-XFJ"]["limit"]["value"] == 6 and by_dept["LD-XFJ"]["overdue"] is False
    assert by_dept["LD-WJJ"]["deadline_on"] < by_dept["LD-XFJ"]["deadline_on"]
