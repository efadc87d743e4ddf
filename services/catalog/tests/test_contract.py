"""The catalog's OpenAPI document is a contract a front end can trust: a typed guide with the form fields and
the certificates to hold first (and who issues them), enums for fixed sets, every response header declared and
sent, preconditions declared as required, public reads without security, and every example accepted by the
running service with the demo catalogue."""

from __future__ import annotations

import re
from typing import Any

import pytest_asyncio

from services.catalog.api.schemas import Guide
from services.catalog.app import create_app
from services.catalog.demo.items import (
    BIRTH_CERTIFICATE,
    BUSINESS_LICENCE,
    FOOD_PERMIT,
    HOUSEHOLD_REGISTER,
    ITEMS,
)
from services.catalog.tests.test_api import P, admin
from shared.testing import running_app

FOOD = ITEMS["food-permit"][0]
METHODS = ("get", "put", "post", "delete", "patch")


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=True) as c:
        yield c


@pytest_asyncio.fixture(scope="module")
async def openapi(client) -> dict[str, Any]:
    r = await client.get("/catalog/openapi.json")
    assert r.status_code == 200
    return r.json()


def op(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][f"{P}{path}"][method]


# --- the guide --------------------------------------------------------------------------------------------


async def test_the_guide_carries_the_form_fields_and_the_certificates_with_the_items_that_issue_them(client):
    guide = (await client.get(f"{P}/items/{FOOD}/guide")).json()
    Guide.model_validate(guide)
    item = (await client.get(f"{P}/items/{FOOD}")).json()
    assert guide["form_fields"] == item["form_fields"]
    assert [f["name"] for f in guide["form_fields"]] == ["business_name", "business_address", "business_scope", "phone"]
    assert guide["form_fields"][1] == {"name": "business_address", "label": "经营场所", "type": "address",
                                       "required": True, "options": [], "min_length": None, "max_length": None}
    [licence] = guide["certificates"]
    assert licence["certificate_type"] == BUSINESS_LICENCE and licence["name"] == "营业执照"
    assert licence["materials"] == ["business_licence"] and licence["necessity"] == "required"
    assert licence["issued_by"] == [
        {"code": ITEMS["individual-licence"][0], "name": "个体工商户注册登记（营业执照）"},
        {"code": ITEMS["company-licence"][0], "name": "企业设立登记（营业执照）"},
    ]


async def test_a_certificate_no_item_issues_has_no_issuer_and_an_item_is_never_its_own_prerequisite(client):
    guide = (await client.get(f"{P}/items/{ITEMS['birth-registration'][0]}/guide")).json()
    by_type = {c["certificate_type"]: c for c in guide["certificates"]}
    assert list(by_type) == [BIRTH_CERTIFICATE, HOUSEHOLD_REGISTER]
    assert by_type[BIRTH_CERTIFICATE]["issued_by"] == [{"code": ITEMS["birth-certificate"][0], "name": "出生医学证明签发"}]
    assert by_type[HOUSEHOLD_REGISTER]["issued_by"] == []
    change = (await client.get(f"{P}/items/{ITEMS['food-permit-change'][0]}/guide")).json()
    [permit] = change["certificates"]
    assert permit["certificate_type"] == FOOD_PERMIT and [i["code"] for i in permit["issued_by"]] == [FOOD]
    # A conditional certificate (结婚证 only for spouses) says so.
    move = (await client.get(f"{P}/items/{ITEMS['household-move'][0]}/guide")).json()
    assert {c["name"]: c["necessity"] for c in move["certificates"]} == {"居民户口簿": "required", "结婚证": "conditional"}


async def test_the_guide_component_describes_the_guide(openapi):
    schemas = openapi["components"]["schemas"]
    ok = op(openapi, "get", "/items/{code}/guide")["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Guide"}
    assert {"form_fields", "certificates", "materials", "offered_at", "process"} <= set(schemas["Guide"]["properties"])
    assert schemas["Guide"]["properties"]["certificates"]["items"] == {"$ref": "#/components/schemas/RequiredCertificate"}
    assert set(schemas["RequiredCertificate"]["properties"]["issued_by"]["items"].values()) == {
        "#/components/schemas/ItemRef"}
    # What an editor writes into an item's guide is a different thing with a different name.
    assert "form_fields" not in schemas["GuideDetails"]["properties"]


# --- enums, headers, preconditions, security --------------------------------------------------------------


def _enum(schema: dict[str, Any]) -> list[str] | None:
    for s in [schema, *schema.get("anyOf", [])]:
        if "enum" in s:
            return s["enum"]
    return None


async def test_values_from_a_fixed_set_are_enums(openapi):
    schemas = openapi["components"]["schemas"]
    assert _enum(schemas["ItemRead"]["properties"]["status"]) == ["draft", "in_review", "published", "superseded",
                                                                  "withdrawn"]
    assert _enum(schemas["Guide"]["properties"]["status"])
    assert "01" in _enum(schemas["ItemSummary"]["properties"]["kind"])
    assert _enum(schemas["ItemSummary"]["properties"]["case_kind"]) == ["immediate", "promised"]
    assert _enum(schemas["ServicePointRead"]["properties"]["level"]) == ["city", "town", "village"]
    assert _enum(schemas["NegativeAnswer"]["properties"]["verdict"])
    assert _enum(schemas["ChangeRead"]["properties"]["action"])
    assert _enum(schemas["Step"]["properties"]["kind"]) == [
        "acceptance", "review", "parallel", "joint_review", "decision", "delivery"]
    params = {p["name"]: p["schema"] for p in op(openapi, "get", "/items")["parameters"]}
    for name in ("audience", "theme", "channel", "kind"):
        assert _enum(params[name]), name
    levels = {p["name"]: p["schema"] for p in op(openapi, "get", "/service-points")["parameters"]}
    assert _enum(levels["level"]) == ["city", "town", "village"]


async def test_every_header_the_routes_send_is_declared_and_sent(client, tokens, openapi):
    guide = op(openapi, "get", "/items/{code}/guide")["responses"]
    assert {"ETag", "Cache-Control"} <= set(guide["200"]["headers"]) and "ETag" in guide["304"]["headers"]
    assert "ETag" in op(openapi, "get", "/items/{code}")["responses"]["200"]["headers"]
    created = op(openapi, "post", "/items")["responses"]["201"]["headers"]
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(created)
    assert {"ETag", "Location"} <= set(op(openapi, "post", "/items/{code}/versions")["responses"]["201"]["headers"])
    r = await client.get(f"{P}/items/{FOOD}/guide")
    assert r.headers["ETag"] and r.headers["Cache-Control"] == "public, no-cache"
    assert (await client.get(f"{P}/items/{FOOD}")).headers["ETag"]


async def test_if_match_is_required_where_its_absence_answers_428(openapi):
    params = {p["name"]: p for p in op(openapi, "put", "/items/{code}/draft")["parameters"]}
    assert params["If-Match"]["in"] == "header" and params["If-Match"]["required"] is True
    assert "428" in op(openapi, "put", "/items/{code}/draft")["responses"]


async def test_public_reads_declare_no_security_and_writes_a_bearer_token(openapi):
    for path, item in openapi["paths"].items():
        if not path.startswith(f"{P}/"):
            continue
        for method, operation in item.items():
            staff_read = path.endswith("/search/misses")
            if method == "get" and not staff_read and "/draft" not in path and "/changes" not in path \
                    and not re.search(r"/versions/\{version\}$", path):
                assert operation.get("security") == [], (method, path)
            else:
                assert operation.get("security") and "HTTPBearer" in operation["security"][0], (method, path)


# --- every example works against the demo catalogue -------------------------------------------------------


def _examples(holder: dict[str, Any]) -> list[Any]:
    if "examples" in holder:
        ex = holder["examples"]
        return [e["value"] for e in ex.values()] if isinstance(ex, dict) else list(ex)
    return [holder["example"]] if "example" in holder else []


#: The draft's life in the order it can happen: create, edit, read, submit, return, publish, withdraw.
LIFE = [("post", "/items"), ("put", "/items/{code}/draft"), ("get", "/items/{code}/draft"),
        ("post", "/items/{code}/draft/submit"), ("post", "/items/{code}/draft/return"),
        ("post", "/items/{code}/publish"), ("post", "/items/{code}/withdraw")]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = [(m, p, o) for p, item in doc["paths"].items() if p.startswith(f"{P}/") for m, o in item.items()
           if m in METHODS]

    def rank(x: tuple[str, str, dict[str, Any]]) -> int:
        key = (x[0], x[1].removeprefix(P))
        return LIFE.index(key) if key in LIFE else len(LIFE)

    return sorted(ops, key=rank)


async def test_every_example_in_the_document_is_accepted_by_the_service(client, tokens, openapi):
    """Every example is sent (each body example, and each example of a path parameter), in the order the draft's
    life allows: the create example makes two items, one is published and withdrawn, the other returned."""
    schemas = openapi["components"]["schemas"]
    sent = 0
    for method, path, operation in _operations(openapi):
        bodies: list[Any] = [None]
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content:
            ref = content["schema"].get("$ref", "")
            bodies = _examples(content) or _examples(schemas.get(ref.rsplit("/", 1)[-1], {})) or [None]
        params = operation.get("parameters", [])
        variants = max([len(_examples(p)) for p in params if p["in"] == "path"] or [1])
        for body in bodies:
            for variant in range(variants):
                url, query, missing = path, {}, False
                for p in params:
                    values = _examples(p)
                    value = values[min(variant, len(values) - 1)] if values else None
                    if p["in"] == "path":
                        if value is None:
                            missing = True
                            break
                        url = url.replace("{" + p["name"] + "}", str(value))
                    elif p["in"] == "query" and value is not None:
                        query[p["name"]] = value
                has_example = body is not None or query or any(p["in"] == "path" for p in params)
                if missing or not has_example or (content and body is None):
                    continue
                headers = dict(admin(tokens))
                if any(p["name"] == "If-Match" and p.get("required") for p in params):
                    headers["If-Match"] = (await client.get(url, headers=headers)).headers["ETag"]
                if method == "get" and "security" in operation and operation["security"] == []:
                    headers = {}
                r = await client.request(method.upper(), url, params=query, json=body, headers=headers)
                assert r.status_code < 300, (method, url, r.status_code, r.text)
                sent += 1
    assert sent >= 15
