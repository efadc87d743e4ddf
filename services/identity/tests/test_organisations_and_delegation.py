"""Organisations by credit code, their agents (经办人), delegations (委托代办) and the tokens they give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.identity.events.contracts import DELEGATION_GRANTED, DELEGATION_REVOKED, ORGANISATION_REGISTERED
from services.identity.tests.helpers import (
    bearer,
    credit_code,
    id_number,
    import_companies,
    login,
    register,
)
from shared.auth import JWKSVerifier, http_jwks_fetcher
from shared.testing import eventually

ORGS = "/identity/v1/organisations"
DELEGATIONS = "/identity/v1/delegations"


def verifier(client):  # type: ignore[no-untyped-def]
    return JWKSVerifier(http_jwks_fetcher("/identity/v1/.well-known/jwks.json", client))


def later(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_legal_representative_registers_appoints_an_agent_who_acts_for_the_organisation(client, tap):
    rep, agent, stranger = await register(client), await register(client), await register(client)
    rep_auth = await bearer(client, rep["raw"]["id_number"])
    code = credit_code()
    await import_companies(client, {"credit_code": code, "name": "罗定市一味餐饮店",
                                    "legal_representative_id": rep["raw"]["id_number"]})
    r = await client.post(ORGS, headers=rep_auth, json={
        "name": "罗定市一味餐饮店", "credit_code": code.lower(), "legal_representative_id_number": rep["raw"]["id_number"]})
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["credit_code"] == code and org["legal_representative_id"] == rep["id"]
    event = (await eventually(lambda: tap.of(ORGANISATION_REGISTERED, org["id"])))[0]["data"]
    assert event == {"organisation_id": org["id"], "name": "罗定市一味餐饮店", "credit_code": code,
                     "legal_representative_id": rep["id"]}
    dup = await client.post(ORGS, headers=rep_auth, json={
        "name": "又一家", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"]})
    assert dup.status_code == 409

    # Before appointment the agent cannot act for it.
    refused = await login(client, agent["raw"]["id_number"], organisation=code)
    assert refused.status_code == 403
    r = await client.post(f"{ORGS}/{code}/agents", headers=rep_auth, json={"id_number": agent["raw"]["id_number"]})
    assert r.status_code == 201 and r.json()["id_number"] == agent["id_number"]
    stranger_auth = await bearer(client, stranger["raw"]["id_number"])
    assert (await client.post(f"{ORGS}/{code}/agents", headers=stranger_auth,
                              json={"id_number": stranger["raw"]["id_number"]})).status_code == 403

    token = (await login(client, agent["raw"]["id_number"], organisation=code)).json()["access_token"]
    p = await verifier(client).verify(token)
    assert p.roles == {"org_agent"} and p.organisation == code and p.holder_id == agent["raw"]["id_number"]
    rep_token = (await login(client, rep["raw"]["id_number"], organisation=code)).json()["access_token"]
    assert (await verifier(client).verify(rep_token)).organisation == code
    me = (await client.get("/identity/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert [(o["credit_code"], o["capacity"]) for o in me["organisations"]] == [(code, "agent")]

    listed = (await client.get(f"{ORGS}/{code}/agents", headers=rep_auth)).json()
    assert [a["person_id"] for a in listed] == [agent["id"]]
    assert (await client.delete(f"{ORGS}/{code}/agents/{agent['id']}", headers=rep_auth)).status_code == 204
    assert (await login(client, agent["raw"]["id_number"], organisation=code)).status_code == 403


async def test_organisation_rules(client):
    rep, other = await register(client), await register(client)
    auth = await bearer(client, rep["raw"]["id_number"])
    good = credit_code()
    cases = [
        ({"credit_code": good[:-1] + ("0" if good[-1] != "0" else "1")}, 422, "body.credit_code", "check_digit"),
        ({"credit_code": "91445381"}, 422, "body.credit_code", "length"),
        ({"legal_representative_id_number": id_number()}, 422, "body.legal_representative_id_number", "not_registered"),
        ({"legal_representative_id_number": "445381199001011231"}, 422, "body.legal_representative_id_number",
         "check_digit"),
        ({"legal_representative_id_number": other["raw"]["id_number"]}, 403, None, None),
    ]
    for override, status, field, rule in cases:
        code = credit_code()
        await import_companies(client, {"credit_code": code, "name": "某公司",
                                        "legal_representative_id": rep["raw"]["id_number"]})
        body = {"name": "某公司", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"],
                **override}
        r = await client.post(ORGS, headers=auth, json=body)
        assert r.status_code == status, (override, r.text)
        if field:
            assert r.json()["errors"][0]["field"] == field and r.json()["errors"][0]["rule"] == rule
    assert (await client.post(ORGS, json={"name": "x", "credit_code": good,
                                          "legal_representative_id_number": rep["raw"]["id_number"]})).status_code == 401
    bad = await login(client, rep["raw"]["id_number"], organisation="not-a-code")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.organisation"


async def test_an_organisation_is_registered_only_by_the_legal_representative_the_registry_names(client):
    """Finding (issue #13): whoever registered a credit code first became the company's legal representative."""
    rep, squatter = await register(client), await register(client)
    code = credit_code()
    await import_companies(client, {"credit_code": code, "name": "罗定市好味道餐饮有限公司",
                                    "legal_representative_id": rep["raw"]["id_number"]})
    squatter_auth = await bearer(client, squatter["raw"]["id_number"])
    r = await client.post(ORGS, headers=squatter_auth, json={
        "name": "罗定市好味道餐饮有限公司", "credit_code": code,
        "legal_representative_id_number": squatter["raw"]["id_number"]})
    assert r.status_code == 403 and r.json()["type"].endswith("/not-legal-representative"), r.text
    assert r.json()["errors"][0]["rule"] == "not_legal_representative"
    unknown = await client.post(ORGS, headers=squatter_auth, json={
        "name": "不存在的公司", "credit_code": credit_code(), "legal_representative_id_number": squatter["raw"]["id_number"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0] == {
        **unknown.json()["errors"][0], "field": "body.credit_code", "rule": "not_in_registry"}
    rep_auth = await bearer(client, rep["raw"]["id_number"])
    renamed = await client.post(ORGS, headers=rep_auth, json={
        "name": "别的名字", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"]})
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "body.name"
    assert renamed.json()["errors"][0]["rule"] == "registry_mismatch"
    # Nothing was created by the refusals: the squatter cannot act for it, and the real representative registers it.
    assert (await login(client, squatter["raw"]["id_number"], organisation=code)).status_code == 403
    ok = await client.post(ORGS, headers=rep_auth, json={
        "name": "罗定市好味道餐饮有限公司", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"]})
    assert ok.status_code == 201 and ok.json()["legal_representative_id"] == rep["id"]
    # The company's agents can read the check in its access log, with its purpose.
    as_company = await bearer(client, rep["raw"]["id_number"], organisation=code)
    log = await client.datashare.get("/datashare/v1/me/access-log", headers=as_company)
    checks = [e for e in log.json()["items"] if e["target"] == "registry:legal-persons"]
    assert checks and {e["purpose"] for e in checks} == {"实名核验 organisation registration"}
    assert {e["outcome"] for e in checks} >= {"not_legal_representative", "name_mismatch", "match"}


async def test_a_self_registered_account_cannot_register_an_organisation(client):
    rep = await register(client, in_registry=False)
    code = credit_code()
    await import_companies(client, {"credit_code": code, "name": "某公司",
                                    "legal_representative_id": rep["raw"]["id_number"]})
    r = await client.post(ORGS, headers=await bearer(client, rep["raw"]["id_number"]), json={
        "name": "某公司", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"]})
    assert r.status_code == 403 and r.json()["type"].endswith("/assurance-level-too-low"), r.text
    assert r.json()["required_level"] == 2 and r.json()["current_level"] == 1


async def test_a_delegate_acts_with_both_identities_until_the_principal_revokes(client, tap):
    principal, agent = await register(client), await register(client)
    auth = await bearer(client, principal["raw"]["id_number"])
    r = await client.post(DELEGATIONS, headers=auth, json={
        "agent_id_number": agent["raw"]["id_number"], "items": ["ITEM-B", "ITEM-A", "ITEM-A"], "valid_until": later()})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["principal"] == {"kind": "person", "id": principal["id"]} and d["items"] == ["ITEM-A", "ITEM-B"]
    granted = (await eventually(lambda: tap.of(DELEGATION_GRANTED, d["id"])))[0]["data"]
    assert granted["principal"] == {"kind": "person", "id": principal["id"]} and granted["agent_id"] == agent["id"]
    assert set(granted) == {"delegation_id", "principal", "agent_id", "items", "valid_until"}

    # The principal cannot use it; the agent can, and the token records both identities.
    assert (await login(client, principal["raw"]["id_number"], delegation=d["id"])).status_code == 403
    t = (await login(client, agent["raw"]["id_number"], delegation=d["id"])).json()
    p = await verifier(client).verify(t["access_token"])
    assert p.subject == agent["id"] and p.holder_id == agent["raw"]["id_number"]
    assert p.acting_for is not None and p.acting_for.subject == principal["id"]
    assert p.acting_for.holder_id == principal["raw"]["id_number"] and p.acting_for.delegation == d["id"]
    assert p.claims["act"]["items"] == ["ITEM-A", "ITEM-B"]
    # A delegate cannot delegate further.
    delegate_auth = {"Authorization": f"Bearer {t['access_token']}"}
    assert (await client.post(DELEGATIONS, headers=delegate_auth, json={
        "agent_id_number": principal["raw"]["id_number"], "items": None, "valid_until": later()})).status_code == 403

    listed = (await client.get(DELEGATIONS, headers=await bearer(client, agent["raw"]["id_number"]))).json()
    assert [x["id"] for x in listed] == [d["id"]]
    agent_auth = await bearer(client, agent["raw"]["id_number"])
    assert (await client.delete(f"{DELEGATIONS}/{d['id']}", headers=agent_auth)).status_code == 403
    r = await client.delete(f"{DELEGATIONS}/{d['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["revoked_at"]
    again = await client.post(f"{DELEGATIONS}/{d['id']}/revocation", headers=auth)
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    await eventually(lambda: tap.of(DELEGATION_REVOKED, d["id"]))
    assert len(tap.of(DELEGATION_REVOKED, d["id"])) == 1  # revoking twice publishes once
    assert (await login(client, agent["raw"]["id_number"], delegation=d["id"])).status_code == 403
    # The refresh token of the delegated login dies with the delegation.
    r = await client.post("/identity/v1/token", data={"grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert r.status_code == 403


async def test_an_organisation_delegates_through_its_legal_representative(client, tap):
    rep, agent = await register(client), await register(client)
    auth = await bearer(client, rep["raw"]["id_number"])
    code = credit_code()
    await import_companies(client, {"credit_code": code, "name": "某公司",
                                    "legal_representative_id": rep["raw"]["id_number"]})
    assert (await client.post(ORGS, headers=auth, json={
        "name": "某公司", "credit_code": code, "legal_representative_id_number": rep["raw"]["id_number"]})).status_code == 201
    r = await client.post(DELEGATIONS, headers=auth, json={
        "agent_id_number": agent["raw"]["id_number"], "items": None, "valid_until": later(), "organisation": code})
    assert r.status_code == 201, r.text
    assert r.json()["principal"] == {"kind": "organisation", "id": code} and r.json()["items"] is None
    t = (await login(client, agent["raw"]["id_number"], delegation=r.json()["id"])).json()["access_token"]
    p = await verifier(client).verify(t)
    assert p.acting_for.kind == "organisation" and p.acting_for.subject == code and p.acting_for.holder_id == code
    assert code in p.applicant_ids


async def test_delegation_rules(client):
    principal = await register(client)
    auth = await bearer(client, principal["raw"]["id_number"])
    agent = await register(client)
    cases = [
        ({"valid_until": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, "body.valid_until", "future"),
        ({"valid_until": "2030-01-01T00:00:00"}, "body.valid_until", "timezone"),
        ({"agent_id_number": principal["raw"]["id_number"]}, "body.agent_id_number", "self"),
        ({"agent_id_number": id_number()}, "body.agent_id_number", "not_registered"),
        ({"items": []}, "body.items", "empty"),
        ({"valid_until": "tomorrow"}, "body.valid_until", "datetime_from_date_parsing"),
    ]
    for override, field, rule in cases:
        body = {"agent_id_number": agent["raw"]["id_number"], "items": None, "valid_until": later(), **override}
        r = await client.post(DELEGATIONS, headers=auth, json=body)
        assert r.status_code == 422, (override, r.text)
        assert (r.json()["errors"][0]["field"], r.json()["errors"][0]["rule"]) == (field, rule)
    assert (await login(client, agent["raw"]["id_number"], delegation="no-such-id")).status_code == 403
    both = await login(client, agent["raw"]["id_number"], delegation="x", organisation=credit_code())
    assert both.status_code == 422 and both.json()["errors"][0]["rule"] == "exclusive"
    assert (await client.delete(f"{DELEGATIONS}/nope", headers=auth)).status_code == 404


async def test_granting_with_an_idempotency_key_is_safe_to_retry_and_only_parties_see_it(client, tap):
    principal, agent, stranger = await register(client), await register(client), await register(client)
    auth = await bearer(client, principal["raw"]["id_number"])
    body = {"agent_id_number": agent["raw"]["id_number"], "items": None, "valid_until": later()}
    first = await client.post(DELEGATIONS, headers={**auth, "Idempotency-Key": "grant-1"}, json=body)
    again = await client.post(DELEGATIONS, headers={**auth, "Idempotency-Key": "grant-1"}, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = await client.post(DELEGATIONS, headers={**auth, "Idempotency-Key": "grant-1"},
                              json={**body, "items": ["X"]})
    assert other.status_code == 422 and other.json()["errors"][0]["rule"] == "idempotency_key_reused"
    d = first.json()["id"]
    await eventually(lambda: tap.of(DELEGATION_GRANTED, d))
    assert len(tap.of(DELEGATION_GRANTED, d)) == 1
    agent_auth = await bearer(client, agent["raw"]["id_number"])
    assert (await client.get(f"{DELEGATIONS}/{d}", headers=agent_auth)).json()["id"] == d
    assert (await client.get(f"{DELEGATIONS}/{d}", headers=auth)).status_code == 200
    stranger_auth = await bearer(client, stranger["raw"]["id_number"])
    assert (await client.get(f"{DELEGATIONS}/{d}", headers=stranger_auth)).status_code == 404
