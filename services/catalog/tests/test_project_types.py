"""Project types and their stages (issue 17) and service enterprises as providers: the demo type served publicly,
the per-department limit rule at save time, and the type announced to intake."""

from __future__ import annotations

import copy

import pytest_asyncio
from stdnum.cn import uscc

from services.catalog.app import create_app
from services.catalog.demo.items import ITEMS
from services.catalog.demo.projects import PROJECT_TYPES
from services.catalog.demo.reference import DEPARTMENTS
from services.catalog.domain.project_types import ProjectTypeContent, check_project_type
from services.catalog.tests.test_api import admin, problem, wait_event
from shared.testing import running_app

P = "/catalog/v1"
DEMO = "enterprise_investment"


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=True) as c:
        yield c


def test_every_provider_has_a_valid_credit_code_and_a_kind():
    for d in DEPARTMENTS:
        if d["code"] in ("LD-FGJ", "LD-ZRZYJ") or d["code"].startswith("QY-"):  # the ones issue 17 added
            assert uscc.is_valid(d["credit_code"]), d["code"]
        assert d["kind"] in ("government_department", "service_enterprise", "intermediary")
    enterprises = {d["code"] for d in DEPARTMENTS if d["kind"] == "service_enterprise"}
    assert enterprises == {"QY-GS", "QY-GD", "QY-RQ", "QY-DX"}
    assert {ITEMS[s][1]["department"] for s in ("water-connection", "power-connection", "gas-connection",
                                                 "telecom-connection")} == enterprises


def test_the_rule_names_the_department_whose_limit_exceeds_the_stage():
    content = ProjectTypeContent.model_validate(copy.deepcopy(PROJECT_TYPES[DEMO]))
    items = {i.item_code: i.department for s in content.stages for i in s.items}
    depts = frozenset(items.values())
    assert check_project_type(content, items, depts) == []
    content.stages[0].items[1].limit_days = content.stages[0].total_limit_days + 1
    content.stages[1].items[0].department = "LD-FGJ"
    errors = {(e.field, e.rule) for e in check_project_type(content, items, depts)}
    assert errors == {("body.stages[0].items[1].limit_days", "department_limit_within_stage"),
                      ("body.stages[1].items[0].department", "item_department")}


async def test_the_demo_type_is_public_with_its_stages_in_order(client):
    r = await client.get(f"{P}/project-types")
    assert r.status_code == 200 and [t["key"] for t in r.json()] == [DEMO]
    r = await client.get(f"{P}/project-types/{DEMO}")
    assert r.status_code == 200
    stages = r.json()["stages"]
    assert [s["key"] for s in stages][:3] == ["approval_land", "construction_permit", "construction"]
    construction = next(s for s in stages if s["key"] == "construction")
    assert {i["department"] for i in construction["items"]} >= {"LD-ZJJ", "QY-GS", "QY-GD", "QY-RQ", "QY-DX"}
    assert all(i["name"] and i["limit_days"] <= s["total_limit_days"] for s in stages for i in s["items"])
    assert (await client.get(f"{P}/project-types/nope")).status_code == 404
    r = await client.get(f"{P}/departments")
    kinds = {d["code"]: d["kind"] for d in r.json()}
    assert kinds["QY-GS"] == "service_enterprise" and kinds["LD-FGJ"] == "government_department"


async def test_admin_upsert_checks_the_limits_and_announces_the_type(client, tokens):
    body = copy.deepcopy(PROJECT_TYPES[DEMO])
    body["name"] = "小型工业项目"
    body["stages"][0]["items"][0]["limit_days"] = 30
    body["stages"][0]["items"].append({"item_code": "11441781MB0000001A4019999990000", "department": "LD-SCJGJ",
                                       "limit_days": 1})
    r = await client.put(f"{P}/project-types/small_industry", json=body, headers=admin(tokens))
    errors = {(e["field"], e["rule"]) for e in problem(r, 422)["errors"]}
    assert errors == {("body.stages[0].items[0].limit_days", "department_limit_within_stage"),
                      ("body.stages[0].items[2].item_code", "unknown_item")}
    body = copy.deepcopy(PROJECT_TYPES[DEMO])
    body["name"] = "小型工业项目"
    r = await client.put(f"{P}/project-types/small_industry", json=body,
                         headers=tokens.headers("ed", kind="staff", roles=["catalog_editor"], dept="LD-ZJJ"))
    assert r.status_code == 403
    r = await client.put(f"{P}/project-types/small_industry", json=body, headers=admin(tokens))
    assert r.status_code == 200, r.text
    ev = await wait_event(client.app.state.bus, "yimen.catalog.project_type.published", "small_industry")
    assert ev.data["name"] == "小型工业项目" and ev.data["stages"][0]["items"][0]["name"] == "企业投资项目备案"
