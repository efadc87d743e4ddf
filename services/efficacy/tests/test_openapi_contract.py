"""Efficacy's OpenAPI document as a front end reads it: typed responses, enums for fixed sets, declared headers,
public routes without security, examples in the formats the platform issues; and the headers a create sends."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from shared.testing import running_app

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app().openapi()


def _op(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][f"/efficacy/v1{path}"][method]


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def test_every_success_response_has_a_schema(doc):
    for path, item in doc["paths"].items():
        if not path.startswith("/efficacy/v1"):
            continue
        for method, op in item.items():
            for code, resp in op["responses"].items():
                if code.startswith("2") and code != "204":
                    assert resp.get("content", {}).get("application/json", {}).get("schema"), (method, path, code)


def test_fixed_sets_are_enums(doc):
    level = _schema(doc, "RatingCreate")["properties"]["level"]
    assert {"very_satisfied", "非常满意", "不满意", "非常不满意"} <= set(level["enum"])
    assert set(_schema(doc, "LevelName")["enum"]) == {"非常满意", "满意", "基本满意", "不满意", "非常不满意"}
    assert set(_schema(doc, "Colour")["enum"]) == {"yellow", "red"}
    assert "statutory_limit_exceeded" in _schema(doc, "CardReason")["enum"]
    assert "data_access_anomaly" in _schema(doc, "SupervisionKind")["enum"]
    assert set(_schema(doc, "ComplaintState")["enum"]) == {"open", "answered", "closed"}
    assert set(_schema(doc, "ClockKind")["enum"]) == {"application", "acceptance", "task"}
    assert "adjusted_workday" in _schema(doc, "DayKind")["enum"]


@pytest.mark.parametrize("path", ["/ratings", "/complaints"])
def test_creates_declare_location_etag_and_the_replay_header(doc, path):
    headers = _op(doc, "post", path)["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotent-Replayed"} <= set(headers)


@pytest.mark.parametrize("path", ["/kpis", "/calendar/workdays", "/ratings/departments", "/ratings/items",
                                  "/complaints/departments", "/recommendations"])
def test_public_routes_declare_no_security(doc, path):
    assert _op(doc, "get", path)["security"] == []


@pytest.mark.parametrize(("method", "path"), [("post", "/complaints"), ("post", "/complaints/{complaint_id}/rating")])
def test_anonymous_complaint_routes_declare_the_token_optional(doc, method, path):
    assert _op(doc, method, path)["security"] == [{}, {"HTTPBearer": []}]


def test_a_complaint_is_read_with_a_token_or_its_secret(doc):
    """401 with neither: the secret is a credential of its own (`?secret=`), not an optional token."""
    assert _op(doc, "get", "/complaints/{complaint_id}")["security"] == [{"HTTPBearer": []}, {"ComplaintSecret": []}]
    assert doc["components"]["securitySchemes"]["ComplaintSecret"]["in"] == "query"


def test_token_routes_declare_the_bearer(doc):
    assert _op(doc, "post", "/ratings")["security"] == [{"HTTPBearer": []}]
    assert _op(doc, "get", "/dashboard")["security"] == [{"HTTPBearer": []}]


def test_the_rating_example_uses_an_application_id_in_the_format_intake_issues(doc):
    (example,) = _schema(doc, "RatingCreate")["examples"]
    assert HEX_ID.match(example["application_id"])


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens,
                           config=EfficacyConfig(evaluation_interval_seconds=3600)) as c:
        yield c


async def test_a_created_complaint_answers_with_its_location_and_an_etag_that_a_replay_repeats(client):
    body = {"about": {"kind": "department", "ref": "LD-SCJGJ"}, "text": "窗口要求提供办事指南以外的材料。"}
    key = {"Idempotency-Key": "etag-check-1"}
    first = await client.post("/efficacy/v1/complaints", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/efficacy/v1/complaints/{first.json()['complaint_id']}"
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["etag"])
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/efficacy/v1/complaints", json=body, headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"] and again.headers["location"] == first.headers["location"]
    assert (await client.get(first.headers["location"], params={"secret": first.json()["secret"]})).status_code == 200
