"""Workflow's OpenAPI document as a front end reads it: typed responses, enums for fixed sets, bearer security,
examples in the formats the platform issues."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.workflow.app import create_app


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app().openapi()


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def test_every_route_has_a_typed_success_response_and_the_bearer(doc):
    for path, item in doc["paths"].items():
        if not path.startswith("/workflow/v1"):
            continue
        for method, op in item.items():
            assert op["security"] == [{"HTTPBearer": []}], (method, path)
            # 200, or 201 where the call records something new (a joint review's opinion).
            ok = op["responses"].get("200") or op["responses"]["201"]
            assert ok["content"]["application/json"]["schema"], (method, path)


def test_fixed_sets_are_enums(doc):
    assert set(_schema(doc, "TaskState")["enum"]) == {"open", "awaiting_correction", "decided", "cancelled"}
    assert set(_schema(doc, "Outcome")["enum"]) == {"approve", "reject", "request_correction"}
    assert set(_schema(doc, "CaseState")["enum"]) == {"running", "approved", "rejected", "withdrawn"}
    assert set(_schema(doc, "StageKind")["enum"]) == {"review", "parallel", "decision", "joint_review"}
    assert set(_schema(doc, "DeliveryState")["enum"]) == {"pending", "delivered", "failed", "missed"}
    task = _schema(doc, "TaskRead")["properties"]
    assert task["state"] == {"$ref": "#/components/schemas/TaskState"}
    inbox = doc["paths"]["/workflow/v1/tasks"]["get"]["parameters"]
    state = next(p for p in inbox if p["name"] == "state")
    assert {"$ref": "#/components/schemas/TaskState"} in state["schema"]["anyOf"]


def test_examples_use_codes_and_ids_the_platform_issues(doc):
    decisions = _schema(doc, "DecisionCreate")["examples"]
    materials = [m["material_code"] for d in decisions for m in d.get("missing", [])]
    assert materials == ["floor_plan"]  # a material of the demo catalogue's food permit (食品经营许可)
    (assignee,) = _schema(doc, "AssigneeUpdate")["examples"]
    assert re.fullmatch(r"[0-9a-f]{32}", assignee["assignee"])  # identity's account ids
