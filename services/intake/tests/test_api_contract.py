"""Intake's OpenAPI document as a front end reads it, and the running service keeping its word: typed responses
with enums, every response header declared and sent (`ETag` on create, `Location`, `Idempotent-Replayed`,
`Retry-After`), `If-Match` required where its absence answers 428, public routes without security, and every
request example valid against the demo catalogue and the platform's own rules."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from stdnum.cn import uscc

from services.intake.api import schemas as s
from services.intake.app import create_app
from services.intake.domain import drafts, walkin
from services.intake.domain.lifecycle import Status
from services.intake.tests import factories as f

BASE = "/intake/v1"
# The demo catalogue is read as test data by name, not imported: the services stay independent of each other.
_CATALOGUE = importlib.import_module("services.catalog.demo.items")
DEMO: dict[str, dict[str, Any]] = {code: content for code, content in _CATALOGUE.ITEMS.values()}
POINTS = {p["code"] for p in importlib.import_module("services.catalog.demo.reference").SERVICE_POINTS}
PUBLIC = {("get", "/intake/v1/status/{receipt_number}"), ("get", "/intake/v1/appointment-slots"),
          ("get", "/intake/healthz"), ("get", "/intake/readyz")}
#: Callbacks authenticated by their Standard Webhooks signature, not a token.
SIGNED = {("post", "/intake/v1/payments/notifications")}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app().openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]


def test_every_success_is_typed_and_no_schema_is_a_bare_object(spec):
    for method, path, op in operations(spec):
        if not path.startswith(BASE):
            continue  # /healthz and /readyz are the shared service frame's
        ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
        assert ok, (method, path)
        for code, resp in ok.items():
            for media, content in resp.get("content", {}).items():
                schema = content.get("schema") or {}
                assert schema.get("$ref") or schema.get("type") in ("array", "string"), (method, path, code, media)
                if media == "application/json" and "$ref" not in schema:
                    assert schema["type"] == "array" and "$ref" in schema["items"], (method, path)


def test_states_and_other_fixed_sets_are_enums(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Status"]["enum"] == [x.value for x in Status]
    for name in ("ApplicationRead", "ApplicationSummary", "TimelineRead", "PublicStep", "PublicStatus"):
        assert schemas[name]["properties"]["status"]["$ref"] == "#/components/schemas/Status", name

    def enum_of(prop: dict[str, Any]) -> list[str]:
        options = prop.get("anyOf") or [prop]
        return next(o["enum"] for o in options if "enum" in o)

    assert enum_of(schemas["ApplicationRead"]["properties"]["channel"]) == ["online", "mobile", "kiosk", "window", "post"]
    assert set(enum_of(schemas["AttachmentRead"]["properties"]["kind"])) == {"upload", "certificate_ref", "commitment",
                                                                            "fetched"}
    assert enum_of(schemas["AppointmentRead"]["properties"]["status"]) == ["booked", "cancelled"]
    assert set(enum_of(schemas["ApplicationRead"]["properties"]["outcome"])) == {"approved", "rejected", "not_accepted"}
    assert schemas["ApplicationRead"]["properties"]["first_responder"]["anyOf"][0]["$ref"].endswith("/ResponderRead")
    assert schemas["PaymentRead"]["properties"]["items"]["items"]["$ref"].endswith("/FeeLine")


def test_response_headers_are_declared_where_they_are_sent(spec):
    paths = spec["paths"]

    def headers(path: str, method: str, code: str) -> set[str]:
        return set(paths[f"/intake/v1{path}"][method]["responses"][code].get("headers", {}))

    assert headers("/applications", "post", "201") == {"ETag", "Location", "Idempotent-Replayed"}
    assert headers("/walk-ins", "post", "201") == {"ETag", "Location", "Idempotent-Replayed"}
    assert headers("/applications/{application_id}/copy", "post", "201") == {"ETag", "Location"}
    assert headers("/applications/{application_id}", "get", "200") == {"ETag"}
    assert headers("/applications/{application_id}", "patch", "200") == {"ETag"}
    assert headers("/applications/{application_id}/materials", "post", "201") == {"ETag"}
    assert headers("/applications/{application_id}/submit", "post", "200") == {"ETag", "Idempotent-Replayed"}
    assert headers("/applications/{application_id}/submit", "post", "429") == {"Retry-After"}
    assert headers("/status/{receipt_number}", "get", "429") == {"Retry-After"}
    assert headers("/walk-ins", "post", "503") == {"Retry-After"}


def test_if_match_is_a_required_header_where_its_absence_answers_428(spec):
    for method, path, op in operations(spec):
        if "428" in op["responses"]:
            matches = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "If-Match"]
            assert len(matches) == 1 and matches[0]["required"] is True, (method, path)


def test_public_routes_need_no_token_and_the_rest_a_bearer(spec):
    for method, path, op in operations(spec):
        if (method, path) in PUBLIC:
            assert not op.get("security"), (method, path)
        elif (method, path) in SIGNED:
            assert op.get("security") == [{"StandardWebhooks": []}], (method, path)
        else:
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)


def examples(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(name, ex) for name, schema in spec["components"]["schemas"].items() for ex in schema.get("examples", [])]
    for method, path, op in operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            found += [(f"{method} {path}", ex) for ex in media.get("schema", {}).get("examples", [])]
    return found


def test_every_request_example_parses_as_its_model(spec):
    found = examples(spec)
    assert len(found) >= 15
    for name, ex in found:
        model = getattr(s, name, None)
        if model is not None:
            model.model_validate(ex)


def test_request_examples_use_the_demo_catalogue_and_numbers_with_valid_check_digits(spec):
    forms = {fld["name"] for c in DEMO.values() for fld in c["form_fields"]}
    materials = {m["code"] for c in DEMO.values() for m in c["materials"]}

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            if isinstance(value.get("item_code"), str):
                item = DEMO[value["item_code"]]  # an item the demo catalogue publishes
                assert set(value.get("form", {})) <= {fld["name"] for fld in item["form_fields"]}
            if "form" in value and isinstance(value["form"], dict):
                assert set(value["form"]) <= forms, value
            if isinstance(value.get("material_code"), str):
                assert value["material_code"] in materials
            if isinstance(value.get("field"), str) and value["field"].startswith("materials."):
                assert value["field"].removeprefix("materials.") in materials
            if isinstance(value.get("service_point"), str):
                assert value["service_point"] in POINTS
            if isinstance(value.get("id_number"), str):
                assert walkin.card_number(value["id_number"])[1] is None, value["id_number"]
            if value.get("kind") == "certificate_ref":
                assert uscc.is_valid(value["reference"]), value["reference"]
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    for _, ex in examples(spec):
        walk(ex)


def test_the_create_and_walk_in_examples_pass_the_items_own_rules(spec):
    create = spec["components"]["schemas"]["ApplicationCreate"]["examples"][0]
    item = DEMO[create["item_code"]]
    assert drafts.start_findings(item, channel=create["channel"], service_point=create["service_point"],
                                 applicant_kind="person", form=create["form"]) == []
    walk_in = spec["components"]["schemas"]["WalkInCreate"]["examples"][0]
    item = DEMO[walk_in["item_code"]]
    assert drafts.start_findings(item, channel="window", service_point="LD-CENTRE", applicant_kind="person",
                                 form=walk_in["form"]) == []
    d = walk_in["delivery"]
    drafts.delivery_values(item, method=d["method"], point=d.get("service_point"), address=d.get("address"),
                           handed_in_at="LD-CENTRE")


# --- the running service --------------------------------------------------------------------------------------


async def test_the_create_example_makes_a_draft_whose_201_carries_the_etag_and_location(intake, tokens, spec):
    example = spec["components"]["schemas"]["ApplicationCreate"]["examples"][0]
    code = example["item_code"]
    await intake.publish_item({"code": code, "version": 1, **DEMO[code]})
    me = f.citizen(tokens)
    first = await intake.client.post(f"{BASE}/applications", json=example, headers={**me, "Idempotency-Key": "ex-1"})
    assert first.status_code == 201, first.text
    app = first.json()
    assert first.headers["Location"] == f"{BASE}/applications/{app['id']}"
    read = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)
    assert first.headers["ETag"] == read.headers["ETag"]
    again = await intake.client.post(f"{BASE}/applications", json=example, headers={**me, "Idempotency-Key": "ex-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"] and again.json()["id"] == app["id"]
    # The ETag of the 201 is the one to change the draft with.
    patch = spec["components"]["schemas"]["ApplicationUpdate"]["examples"][0]
    changed = await intake.client.patch(f"{BASE}/applications/{app['id']}", json=patch,
                                        headers={**me, "If-Match": first.headers["ETag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["form"]["business_name"] == patch["form"]["business_name"]
    missing = await intake.client.patch(f"{BASE}/applications/{app['id']}", json=patch, headers=me)
    assert missing.status_code == 428
    stale = await intake.client.patch(f"{BASE}/applications/{app['id']}", json=patch,
                                      headers={**me, "If-Match": first.headers["ETag"]})
    assert stale.status_code == 412


async def test_a_new_material_answers_the_applications_new_etag(intake, tokens, spec):
    example = spec["components"]["schemas"]["ApplicationCreate"]["examples"][0]
    await intake.publish_item({"code": example["item_code"], "version": 1, **DEMO[example["item_code"]]})
    me = f.citizen(tokens)
    app = (await intake.client.post(f"{BASE}/applications", json=example, headers=me)).json()
    for body in s.MaterialReference.model_config["json_schema_extra"]["examples"]:  # type: ignore[index]
        r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", json=body, headers=me)
        assert r.status_code == 201, r.text
        read = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)
        assert r.headers["ETag"] == read.headers["ETag"]
    assert {m["material_code"]: m["kind"] for m in read.json()["materials"]} == {
        "food_safety_commitment": "commitment", "business_licence": "certificate_ref"}
