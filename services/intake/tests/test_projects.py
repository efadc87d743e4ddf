"""Projects through the running intake: registration (code checked or issued, negative list), one stage application
accepted once and dispatched to each department's item with its own limit, completion by the departments'
decisions, and the gate on the next stage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.intake.tests import factories as f
from shared.events import new_event
from shared.testing import eventually

BASE = "/intake/v1"
ORG = "91441781MA4W100042"


def stage_item(dept: str, name: str) -> dict[str, Any]:
    p = f.food_permit_item(name=name, department=dept, audience=["legal_person"], fully_online=False)
    p["form_fields"] = [{"name": "project_name", "label": "项目名称", "type": "text", "required": True},
                        {"name": "phone", "label": "联系电话", "type": "phone", "required": True}]
    p["materials"] = [
        {"code": "company_record", "name": "法人登记信息", "necessity": "required", "source": "registry",
         "registry": "legal_persons", "commitment_allowed": False},
        {"code": "promise", "name": "真实性承诺书", "necessity": "required", "source": "applicant",
         "commitment_allowed": True}]
    p["result"] = {"type": "document", "certificate_type": None, "name": f"{name}决定书"}
    return p


def project_type(key: str, stages: list[tuple[str, list[dict[str, Any]], list[int]]]) -> Any:
    data = {"key": key, "name": "企业投资项目", "published_at": datetime.now(UTC).isoformat(), "stages": [
        {"key": k, "name": k, "order": i + 1, "total_limit_days": 10,
         "items": [{"item_code": it["code"], "department": it["department"], "limit_days": d, "name": it["name"]}
                   for it, d in zip(items, days, strict=True)]}
        for i, (k, items, days) in enumerate(stages)]}
    return new_event("yimen.catalog.project_type.published", source="/yimen/catalog", subject=key, data=data)


def agent(tokens: Any, org: str = ORG) -> dict[str, str]:
    return tokens.headers("p-" + uuid.uuid4().hex[:8], kind="person", roles=["citizen"], org=org, name="王经办",
                          hid=f.ID_NUMBER)


def decided(app_id: str, outcome: str = "approved") -> Any:
    return new_event("yimen.workflow.application.decided", source="/yimen/workflow", subject=app_id,
                     data={"application_id": app_id, "outcome": outcome, "decided_at": datetime.now(UTC).isoformat()})


async def setup_type(intake: Any) -> tuple[str, list[dict[str, Any]]]:
    items = [await intake.publish_item(stage_item(d, n)) for d, n in
             [("LD-FGJ", "企业投资项目备案"), ("LD-ZRZYJ", "建设用地规划许可证核发"), ("LD-ZJJ", "建筑工程施工许可证核发")]]
    key = "t" + uuid.uuid4().hex[:10]
    await intake.bus.publish(project_type(key, [("approval_land", items[:2], [2, 7]),
                                                ("construction", items[2:], [3])]))

    async def kept() -> bool:
        from services.intake.store.tables import ProjectType

        async with intake.client.app.state.db.transaction() as s:
            return await s.get(ProjectType, key) is not None

    await eventually(kept)
    return key, items


BODY = {"name": "罗定市某食品有限公司淀粉制品生产线", "site": "罗定市双东街道环保工业园", "land_area_m2": "26800",
        "total_investment_wan": "12000.50", "industry_code": "C1391"}
STAGE = {"form": {"project_name": "淀粉制品生产线", "phone": "13800138000"},
         "materials": [{"code": "promise", "kind": "commitment", "statement": "本单位承诺所填信息真实。"}]}


async def test_register_apply_decide_and_gate(intake, tokens):
    key, items = await setup_type(intake)
    c, h = intake.client, agent(tokens)
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key})
    assert r.status_code == 201, r.text
    page = r.json()
    pid = page["id"]
    assert len(page["project_code"]) == 24 and page["status"] == "registered"
    assert [s["status"] for s in page["stages"]] == ["open", "locked"]
    assert page["conditions"][0]["code"] == "FL-201" and page["clock_url"] == f"/efficacy/v1/projects/{pid}/clock"
    registered = await intake.wait_event("yimen.intake.project.registered", pid)
    assert registered.data["owner_id"] == ORG and registered.data["project_code"] == page["project_code"]

    # The next stage is gated until the first completes.
    r = await c.post(f"{BASE}/projects/{pid}/stages/construction/applications", headers=h, json=STAGE)
    assert r.status_code == 409 and r.json()["type"].endswith("previous-stage-not-completed"), r.text

    # One form for the stage: what is missing is told at once, for every item.
    r = await c.post(f"{BASE}/projects/{pid}/stages/approval_land/applications", headers=h,
                     json={"form": {"project_name": "x"}, "materials": []})
    assert r.status_code == 422
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} == {
        ("body.form.phone", "required"), ("body.materials.promise", "required")}

    r = await c.post(f"{BASE}/projects/{pid}/stages/approval_land/applications", headers=h,
                     json={**STAGE, "form": {**STAGE["form"], "colour": "red", "phone": ["1"]}})
    assert r.status_code == 422
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} >= {("body.form.colour", "unknown_field"),
                                                                     ("body.form.phone", "type")}
    r = await c.post(f"{BASE}/projects/{pid}/stages/nope/applications", headers=h, json=STAGE)
    assert r.status_code == 404 and r.json()["type"].endswith("stage-not-found")
    r = await c.post(f"{BASE}/projects/{pid}/stages/approval_land/applications", headers=agent(tokens, org="91441781MA4W10001Q"),
                     json=STAGE)
    assert r.status_code == 404
    r = await c.post(f"{BASE}/projects/{pid}/stages/approval_land/applications", headers=h, json=STAGE)
    assert r.status_code == 201, r.text
    stage = r.json()["stages"][0]
    assert stage["status"] == "in_progress" and len(stage["applications"]) == 2
    assert {(a["department"], a["limit_days"]) for a in stage["applications"]} == {("LD-FGJ", 2), ("LD-ZRZYJ", 7)}
    assert all(a["status"] == "accepted" and a["held_by"] for a in stage["applications"])
    accepted = await intake.wait_event("yimen.intake.project.stage_accepted", pid)
    assert accepted.data["stage_key"] == "approval_land" and accepted.data["total_limit_days"] == 10
    assert {a["department"]: a["limit_days"] for a in accepted.data["applications"]} == {"LD-FGJ": 2, "LD-ZRZYJ": 7}
    for a in stage["applications"]:
        ev = await intake.wait_event("yimen.intake.application.accepted", a["application_id"])
        assert ev.data["project_id"] == pid and ev.data["stage_key"] == "approval_land"
        assert ev.data["promised_limit"] == {"value": a["limit_days"], "unit": "working_days"}

    r = await c.post(f"{BASE}/projects/{pid}/stages/approval_land/applications", headers=h, json=STAGE)
    assert r.status_code == 409 and r.json()["type"].endswith("stage-already-applied")

    first, second = (a["application_id"] for a in stage["applications"])
    await intake.bus.publish(decided(first))
    await eventually(lambda: intake.published("yimen.intake.application.delivered", first))
    assert not intake.published("yimen.intake.project.stage_completed", pid)
    await intake.bus.publish(decided(second))
    done = await intake.wait_event("yimen.intake.project.stage_completed", pid)
    assert done.data["stage_key"] == "approval_land"

    r = await c.get(f"{BASE}/projects/{pid}", headers=h)
    assert [s["status"] for s in r.json()["stages"]] == ["completed", "open"]
    r = await c.post(f"{BASE}/projects/{pid}/stages/construction/applications", headers=h, json=STAGE)
    assert r.status_code == 201, r.text
    (only,) = r.json()["stages"][1]["applications"]
    await intake.bus.publish(decided(only["application_id"]))
    completed = await intake.wait_event("yimen.intake.project.completed", pid)
    assert completed.data["project_id"] == pid
    r = await c.get(f"{BASE}/projects/{pid}", headers=h)
    assert r.json()["status"] == "completed"

    mine = await c.get(f"{BASE}/me/projects", headers=agent(tokens))
    assert pid in [p["id"] for p in mine.json()]
    other = await c.get(f"{BASE}/projects/{pid}", headers=agent(tokens, org="91441781MA4W10001Q"))
    assert other.status_code == 404


async def test_codes_negative_list_and_who_may_register(intake, tokens):
    key, _ = await setup_type(intake)
    c, h = intake.client, agent(tokens)
    code = "2026-445381-39-03-123452"
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "project_code": code[:-1] + "0"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.project_code"
    assert r.json()["errors"][0]["rule"] == "project_code.check_character"
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "project_code": "2026-445381-39-09-123452"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "project_code.type"
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "project_code": code})
    assert r.status_code == 201 and r.json()["project_code"] == code
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "project_code": code})
    assert r.status_code == 409
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "industry_code": "C3011"})
    assert r.status_code == 403 and r.json()["entry"]["code"] == "FL-101", r.text
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_project_type"
    r = await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key, "industry_code": "13"})
    assert r.status_code == 422
    r = await c.post(f"{BASE}/projects", headers=f.citizen(tokens), json={**BODY, "type_key": key})
    assert r.status_code == 403 and r.json()["type"].endswith("organisation-only")
    r = await c.get(f"{BASE}/projects/prj{'0' * 24}", headers=h)
    assert r.status_code == 404


async def test_two_stage_applications_at_once_make_one(intake, tokens):
    import asyncio

    key, _ = await setup_type(intake)
    c, h = intake.client, agent(tokens)
    pid = (await c.post(f"{BASE}/projects", headers=h, json={**BODY, "type_key": key})).json()["id"]
    url = f"{BASE}/projects/{pid}/stages/approval_land/applications"
    answers = await asyncio.gather(c.post(url, headers=h, json=STAGE), c.post(url, headers=h, json=STAGE))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    page = (await c.get(f"{BASE}/projects/{pid}", headers=h)).json()
    assert len(page["stages"][0]["applications"]) == 2
