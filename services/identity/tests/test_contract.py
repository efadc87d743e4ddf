"""The API contract a front end reads in identity's OpenAPI document: public routes declared without security,
token routes with bearer, every response header declared, a 201 with its `ETag`, enums for fixed sets — and the
examples, one story, sent through the running service (with datashare behind it) and succeeding."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.identity.app import create_app
from services.identity.tests.conftest import CHEAP
from services.identity.tests.helpers import bearer, import_companies, import_people
from shared.testing import identifiers_in_examples

P = "/identity/v1"
METHODS = {"get", "post", "put", "patch", "delete"}

#: Routes anyone may call without an access token.
PUBLIC = {
    ("post", f"{P}/people"), ("post", f"{P}/people/claims"), ("post", f"{P}/token"), ("post", f"{P}/logout"),
    ("get", f"{P}/token-revocations"), ("get", f"{P}/.well-known/jwks.json"),
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(identity=CHEAP).openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, path, op) for path, item in doc["paths"].items() for m, op in item.items()
            if m in METHODS and path.startswith(P)]


def example(doc: dict[str, Any], component: str) -> dict[str, Any]:
    return dict(doc["components"]["schemas"][component]["examples"][0])


def test_public_routes_are_declared_without_security_and_the_rest_with_bearer(openapi):
    for method, path, op in operations(openapi):
        expected = [] if (method, path) in PUBLIC else [{"HTTPBearer": []}]
        assert op.get("security") == expected, (method, path, op.get("security"))


def test_creates_declare_their_etag_and_replays(openapi):
    creates = 0
    for method, path, op in operations(openapi):
        created = op["responses"].get("201")
        if created is None:
            continue
        creates += 1
        assert "ETag" in created.get("headers", {}), (method, path)
        idempotent = any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))
        assert ("Idempotent-Replayed" in created.get("headers", {})) == idempotent, (method, path)
    assert creates >= 8


def test_waits_declare_retry_after(openapi):
    for method, path, op in operations(openapi):
        for code in ("429", "503"):
            if code in op["responses"]:
                assert "Retry-After" in op["responses"][code].get("headers", {}), (method, path, code)
    assert "Retry-After" in openapi["paths"][f"{P}/token"]["post"]["responses"]["429"]["headers"]


def test_every_success_says_what_it_returns(openapi):
    for method, path, op in operations(openapi):
        for code, response in op["responses"].items():
            if not code.startswith("2") or code == "204":
                continue
            for media, content in response.get("content", {}).items():
                assert content.get("schema") not in (None, {}), (method, path, code, media)


def test_fixed_sets_are_enums(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["AccountKind"]["enum"] == ["person", "staff", "department_system"]
    assert schemas["AssuranceLevel"]["enum"] == [1, 2, 3]
    assert set(schemas["StaffRole"]["enum"]) == {"window_clerk", "department_reviewer", "supervisor", "admin",
                                                 "catalog_editor"}
    assert schemas["PersonRead"]["properties"]["assurance_level"]["$ref"].endswith("/AssuranceLevel")
    assert schemas["MeRead"]["properties"]["kind"]["$ref"].endswith("/AccountKind")
    assert schemas["RevocationRead"]["properties"]["account_kind"]["$ref"].endswith("/AccountKind")
    assert schemas["StaffCreate"]["properties"]["roles"]["items"]["$ref"].endswith("/StaffRole")


def test_every_id_number_and_credit_code_in_an_example_is_valid(openapi):
    """GB 11643 ID numbers and GB 32100 credit codes, check characters included (python-stdnum)."""
    found, bad = identifiers_in_examples(openapi)
    assert bad == [] and found >= 6, (found, bad)


async def test_the_examples_tell_one_story_that_succeeds(client: httpx.AsyncClient, admin, openapi):
    """王芳 registers; 李明 (registered before) registers his business, appoints 王芳 and delegates to her; a clerk
    registers the walk-in 黄伯, who claims his account, and verifies 王芳 in person; the admin creates a clerk and
    a department system, locks and unlocks an account; 王芳 changes her password. Every body is the route's
    example, unchanged (the claim code is the one the walk-in answer issued)."""
    person = example(openapi, "PersonCreate")
    org = example(openapi, "OrganisationCreate")
    agent = example(openapi, "AgentAppoint")
    walk_in = example(openapi, "WalkInCreate")
    li_id = org["legal_representative_id_number"]
    await import_people(client, {"id_number": person["id_number"], "name": person["name"]},
                        {"id_number": li_id, "name": "李明"},
                        {"id_number": walk_in["id_number"], "name": walk_in["name"]})
    await import_companies(client, {"credit_code": org["credit_code"], "name": org["name"],
                                    "legal_representative": "李明", "legal_representative_id": li_id,
                                    "status": "存续"})
    r = await client.post(f"{P}/people", json=person, headers={"Idempotency-Key": "contract-person"})
    assert r.status_code == 201, r.text
    assert r.json()["assurance_level"] == 2 and r.headers["etag"].startswith('"')
    replay = await client.post(f"{P}/people", json=person, headers={"Idempotency-Key": "contract-person"})
    assert replay.headers["idempotent-replayed"] == "true" and replay.headers["etag"] == r.headers["etag"]
    person_id = r.json()["id"]
    assert agent["id_number"] == person["id_number"]
    li = await client.post(f"{P}/people", json={"name": "李明", "id_number": li_id, "phone": "13912345678",
                                                "password": "quiet-harbour-lamp-93"})
    assert li.status_code == 201, li.text

    li_token = await bearer(client, li_id, "quiet-harbour-lamp-93")
    r = await client.post(f"{P}/organisations", json=org, headers=li_token)
    assert r.status_code == 201 and r.headers["etag"], r.text
    r = await client.post(f"{P}/organisations/{org['credit_code']}/agents", json=agent, headers=li_token)
    assert r.status_code == 201 and r.headers["etag"], r.text
    delegation = example(openapi, "DelegationCreate")
    r = await client.post(f"{P}/delegations", json=delegation, headers=li_token)
    assert r.status_code == 201 and r.headers["etag"], r.text

    staff = example(openapi, "StaffCreate")
    r = await client.post(f"{P}/staff", json=staff, headers=admin)
    assert r.status_code == 201 and r.headers["etag"], r.text
    clerk = await bearer(client, staff["username"], staff["password"])
    r = await client.post(f"{P}/walk-ins", json=walk_in, headers=clerk)
    assert r.status_code in (200, 201) and r.json()["claim_code"], r.text
    claim = {**example(openapi, "WalkInClaim"), "claim_code": r.json()["claim_code"]}
    r = await client.post(f"{P}/people/claims", json=claim)
    assert r.status_code in (200, 201), r.text
    r = await client.post(f"{P}/people/{person_id}/in-person-verification",
                          json=example(openapi, "InPersonVerificationCreate"), headers=clerk)
    assert r.status_code == 201 and r.headers["etag"] and r.json()["assurance_level"] == 3, r.text

    r = await client.post(f"{P}/department-clients", json=example(openapi, "DepartmentClientCreate"), headers=admin)
    assert r.status_code == 201 and r.headers["etag"], r.text

    r = await client.post(f"{P}/accounts/{person_id}/lock", json=example(openapi, "AccountLock"), headers=admin)
    assert r.status_code == 204, r.text
    r = await client.delete(f"{P}/accounts/{person_id}/lock", params={"kind": "person"}, headers=admin)
    assert r.status_code == 204, r.text
    wang = await bearer(client, person["id_number"], person["password"])
    r = await client.post(f"{P}/me/password", json=example(openapi, "PasswordChange"), headers=wang)
    assert r.status_code == 204, r.text


async def test_public_routes_answer_without_a_token(client: httpx.AsyncClient):
    assert (await client.get(f"{P}/.well-known/jwks.json")).json()["keys"][0]["crv"] == "Ed25519"
    r = await client.get(f"{P}/token-revocations")
    assert r.status_code == 200 and "horizon_seconds" in r.json()
    assert (await client.post(f"{P}/logout", json={"refresh_token": "unknown"})).status_code == 204
