"""The API contract a front end reads in datashare's OpenAPI document: public routes declared without security,
every response header declared, a 201 with its `ETag`, typed responses, examples valid by the platform's rules —
and the running service answering as the document says."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio

from services.datashare.app import create_app
from services.datashare.tests.factories import FakeIntake
from shared.testing import identifiers_in_examples, running_app

P = "/datashare/v1"
METHODS = {"get", "post", "put", "patch", "delete"}

#: Routes anyone may call without a token.
PUBLIC = {
    ("get", f"{P}/certificate-types"), ("get", f"{P}/certificate-types/{{code}}"),
    ("get", f"{P}/certificates/verification-key"), ("post", f"{P}/certificates/verify-document"),
    ("get", f"{P}/open/datasets"), ("get", f"{P}/open/datasets/{{dataset_file}}"),
}
#: Public routes that also accept a token (it names the checker in the holder's access log).
TOKEN_OPTIONAL = {("get", f"{P}/certificates/{{number}}/verification")}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app().openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, path, op) for path, item in doc["paths"].items() for m, op in item.items()
            if m in METHODS and path.startswith(P)]


def test_public_routes_are_declared_without_security(openapi):
    for method, path, op in operations(openapi):
        security = op.get("security")
        if (method, path) in PUBLIC:
            assert security == [], (method, path, security)
        elif (method, path) in TOKEN_OPTIONAL:
            assert {} in security and {"HTTPBearer": []} in security, (method, path, security)
        else:
            assert security == [{"HTTPBearer": []}], (method, path, security)


def test_the_public_verification_does_not_demand_a_bearer_token(openapi):
    op = openapi["paths"][f"{P}/certificates/{{number}}/verification"]["get"]
    assert {} in op["security"]


def test_creates_declare_their_etag_and_replays(openapi):
    for method, path, op in operations(openapi):
        created = op["responses"].get("201")
        if created is None:
            continue
        assert "ETag" in created.get("headers", {}), (method, path)
        idempotent = any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))
        assert ("Idempotent-Replayed" in created.get("headers", {})) == idempotent, (method, path)


def test_limits_declare_retry_after(openapi):
    for method, path, op in operations(openapi):
        if "429" in op["responses"]:
            assert "Retry-After" in op["responses"]["429"].get("headers", {}), (method, path)


def test_every_success_says_what_it_returns(openapi):
    for method, path, op in operations(openapi):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2") and code != "204"}
        assert ok, (method, path)
        for code, response in ok.items():
            for media, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, code, media)
                assert content["schema"] != {}, (method, path, code, media)


def test_fixed_sets_are_enums(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["CertificateStatus"]["enum"] == ["valid", "revoked", "expired"]
    assert schemas["HolderKind"]["enum"] == ["111", "001"]
    assert schemas["CertificateRead"]["properties"]["status"]["$ref"] == "#/components/schemas/CertificateStatus"
    assert schemas["VerificationRead"]["properties"]["status"]["$ref"] == "#/components/schemas/CertificateStatus"
    assert set(schemas["AnomalyKind"]["enum"]) == {"reads_outside_cases", "refused_reads", "night_reads",
                                                   "failed_verifications"}
    assert schemas["MaterialSource"]["enum"] == ["certificate", "own_certificate", "registry"]


def test_every_id_number_and_credit_code_in_an_example_is_valid(openapi):
    """GB 11643 ID numbers and GB 32100 credit codes, check characters included (python-stdnum)."""
    found, bad = identifiers_in_examples(openapi)
    assert bad == [] and found >= 4, (found, bad)


# ---- the running service --------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    with FakeIntake() as intake:
        settings = settings_for("datashare", service_urls={"intake": intake.url})
        async with running_app(create_app, settings, tokens=tokens) as c:
            yield c


def example(doc: dict[str, Any], component: str) -> dict[str, Any]:
    return doc["components"]["schemas"][component]["examples"][0]


async def test_the_issue_example_is_issued_with_an_etag_and_replayed_with_the_same(client, tokens, openapi):
    admin = tokens.headers("admin-contract", kind="staff", roles=["admin"])
    body = example(openapi, "CertificateIssue")
    first = await client.post(f"{P}/certificates", json=body, headers={**admin, "Idempotency-Key": "contract-1"})
    assert first.status_code == 201, first.text
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["etag"])
    assert "idempotent-replayed" not in first.headers
    again = await client.post(f"{P}/certificates", json=body, headers={**admin, "Idempotency-Key": "contract-1"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"] and again.json() == first.json()
    assert first.json()["status"] == "valid" and first.json()["holder_kind"] == "001"


async def test_the_type_example_is_created_with_an_etag(client, tokens, openapi):
    admin = tokens.headers("admin-contract", kind="staff", roles=["admin"])
    r = await client.post(f"{P}/certificate-types", json=example(openapi, "CertificateTypeCreate"), headers=admin)
    assert r.status_code == 201, r.text
    assert r.headers["etag"].startswith('"')


async def test_public_routes_answer_without_a_token(client, tokens, openapi):
    admin = tokens.headers("admin-contract", kind="staff", roles=["admin"])
    issued = await client.post(f"{P}/certificates", json=example(openapi, "CertificateIssue"), headers=admin)
    number = issued.json()["number"]
    r = await client.get(f"{P}/certificates/{number}/verification")
    assert r.status_code == 200 and r.json()["status"] == "valid" and r.json()["holder"] is None
    assert (await client.get(f"{P}/certificate-types")).status_code == 200
    assert (await client.get(f"{P}/certificates/verification-key")).json()["keys"][0]["crv"] == "Ed25519"
    check = await client.post(f"{P}/certificates/verify-document", json=issued.json()["document"])
    assert check.status_code == 200 and check.json()["valid"] is True


async def test_the_registry_import_examples_are_imported(client, tokens, openapi):
    op = openapi["paths"][f"{P}/registries/{{registry}}/imports"]["post"]["requestBody"]["content"]
    admin = tokens.headers("admin-contract", kind="staff", roles=["admin"])
    r = await client.post(f"{P}/registries/population/imports", content=op["text/csv"]["example"].encode(),
                          headers={**admin, "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    r = await client.post(f"{P}/registries/population/imports", json=op["application/json"]["example"],
                          headers=admin)
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
