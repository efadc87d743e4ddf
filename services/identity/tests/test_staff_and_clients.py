"""Staff accounts, department system clients, the window-assisted look-up and catalog's departments."""

from __future__ import annotations

import uuid

from services.identity.events.contracts import DEPARTMENT_UPSERTED
from services.identity.tests.helpers import bearer, register
from shared.auth import JWKSVerifier, http_jwks_fetcher
from shared.events import new_event
from shared.testing import eventually

TOKEN = "/identity/v1/token"


def staff_body(**kw):  # type: ignore[no-untyped-def]
    return {"username": f"u{uuid.uuid4().hex[:10]}", "name": "陈晓", "password": "window-2026", "roles": ["window_clerk"],
            "department": "LD-ZSJ", "service_point": "LD-CENTRE", **kw}


async def test_admin_creates_a_clerk_whose_token_carries_kind_dept_and_point(client, admin):
    body = staff_body()
    r = await client.post("/identity/v1/staff", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert "password" not in r.json() and r.json()["roles"] == ["window_clerk"]
    token = (await client.post(TOKEN, data={"grant_type": "password", "username": body["username"].upper(),
                                            "password": "window-2026"})).json()["access_token"]
    p = await JWKSVerifier(http_jwks_fetcher("/identity/v1/.well-known/jwks.json", client)).verify(token)
    assert (p.kind, p.roles, p.department, p.service_point) == ("staff", {"window_clerk"}, "LD-ZSJ", "LD-CENTRE")
    assert p.holder_id is None
    dup = await client.post("/identity/v1/staff", json=body, headers=admin)
    assert dup.status_code == 409


async def test_staff_creation_rules(client, admin):
    cases = [
        (staff_body(roles=["emperor"]), "body.roles.0"),
        (staff_body(service_point=None), "body.service_point"),
        (staff_body(username="1234567"), "body.username"),
        (staff_body(password="short"), "body.password"),
        (staff_body(department="ld zsj"), "body.department"),
    ]
    for body, field in cases:
        r = await client.post("/identity/v1/staff", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field
    p = await register(client)
    citizen = await bearer(client, p["raw"]["id_number"])
    assert (await client.post("/identity/v1/staff", json=staff_body(), headers=citizen)).status_code == 403
    assert (await client.post("/identity/v1/staff", json=staff_body())).status_code == 401


async def test_department_client_credentials_once_hashed_and_rotatable(client, admin):
    r = await client.post("/identity/v1/department-clients", json={"department": "LD-SCJGJ", "name": "审批系统"},
                          headers=admin)
    assert r.status_code == 201, r.text
    creds = r.json()
    form = {"grant_type": "client_credentials", "client_id": creds["client_id"], "client_secret": creds["client_secret"]}
    t = await client.post(TOKEN, data=form)
    assert t.status_code == 200 and "refresh_token" not in t.json()
    p = await JWKSVerifier(http_jwks_fetcher("/identity/v1/.well-known/jwks.json", client)).verify(
        t.json()["access_token"])
    assert (p.kind, p.roles, p.department) == ("department_system", {"department_system"}, "LD-SCJGJ")
    # HTTP Basic works as well.
    import base64
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    t2 = await client.post(TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert t2.status_code == 200
    rotated = await client.post(f"/identity/v1/department-clients/{creds['client_id']}/secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != creds["client_secret"]
    old = await client.post(TOKEN, data=form)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    new = await client.post(TOKEN, data={**form, "client_secret": rotated.json()["client_secret"]})
    assert new.status_code == 200
    assert (await client.post("/identity/v1/department-clients/nobody/secret", headers=admin)).status_code == 404


async def test_window_lookup_is_audited_masked_and_visible_to_the_person(client, admin):
    p = await register(client)
    clerk = staff_body()
    assert (await client.post("/identity/v1/staff", json=clerk, headers=admin)).status_code == 201
    clerk_auth = await bearer(client, clerk["username"], "window-2026")
    r = await client.get("/identity/v1/people/lookup", headers=clerk_auth,
                         params={"id_number": p["raw"]["id_number"].lower(), "reason": "window visit"})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["assisted"] is True and found["person"]["id"] == p["id"]
    assert found["person"]["id_number"] == p["id_number"]  # masked
    assert found["person"]["phone"] == p["raw"]["phone"]  # the clerk may call the person about the result
    sup = staff_body(roles=["supervisor"], service_point=None)
    assert (await client.post("/identity/v1/staff", json=sup, headers=admin)).status_code == 201
    r = await client.get("/identity/v1/people/lookup", headers=await bearer(client, sup["username"], "window-2026"),
                         params={"id_number": p["raw"]["id_number"], "reason": "complaint 42"})
    assert r.json()["person"]["phone"] == p["phone"] and r.json()["assisted"] is False
    audit = (await client.get("/identity/v1/me/lookups", headers=await bearer(client, p["raw"]["id_number"]))).json()
    assert [a["reason"] for a in audit] == ["complaint 42", "window visit"]
    assert audit[1]["service_point"] == "LD-CENTRE" and audit[1]["assisted"] is True
    # Rules: a reason is required, a malformed number is a 422, nobody found is a 404, citizens may not look up.
    assert (await client.get("/identity/v1/people/lookup", headers=clerk_auth,
                             params={"id_number": p["raw"]["id_number"]})).status_code == 422
    bad = await client.get("/identity/v1/people/lookup", headers=clerk_auth,
                           params={"id_number": "445381199001011231", "reason": "visit"})
    assert bad.status_code == 422 and bad.json()["errors"][0] == {
        "field": "query.id_number", "rule": "check_digit", "message": bad.json()["errors"][0]["message"]}
    from services.identity.tests.helpers import id_number
    missing = await client.get("/identity/v1/people/lookup", headers=clerk_auth,
                               params={"id_number": id_number(), "reason": "visit"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    citizen = await bearer(client, p["raw"]["id_number"])
    assert (await client.get("/identity/v1/people/lookup", headers=citizen,
                             params={"id_number": p["raw"]["id_number"], "reason": "curious"})).status_code == 403


async def test_admin_lists_staff_page_by_page_and_clients_without_secrets(client, admin):
    dept = f"LD-T{uuid.uuid4().hex[:6].upper()}"
    for _ in range(3):
        r = await client.post("/identity/v1/staff", json=staff_body(department=dept), headers=admin)
        assert r.status_code == 201, r.text
    first = (await client.get("/identity/v1/staff", params={"department": dept, "limit": 2}, headers=admin)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await client.get("/identity/v1/staff", params={"department": dept, "limit": 2,
                                                          "cursor": first["next_cursor"]}, headers=admin)).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert (await client.get("/identity/v1/staff", params={"cursor": "garbage!"}, headers=admin)).status_code == 422
    await client.post("/identity/v1/department-clients", json={"department": dept, "name": "系统"}, headers=admin)
    clients = (await client.get("/identity/v1/department-clients", params={"department": dept}, headers=admin)).json()
    assert len(clients) == 1 and "client_secret" not in clients[0]


async def test_staff_refresh_keeps_roles_current(client, admin):
    body = staff_body(roles=["department_reviewer"], service_point=None)
    assert (await client.post("/identity/v1/staff", json=body, headers=admin)).status_code == 201
    first = (await client.post(TOKEN, data={"grant_type": "password", "username": body["username"],
                                            "password": "window-2026"})).json()
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    p = await JWKSVerifier(http_jwks_fetcher("/identity/v1/.well-known/jwks.json", client)).verify(
        r.json()["access_token"])
    assert (p.kind, p.roles, p.department) == ("staff", {"department_reviewer"}, "LD-ZSJ")


async def test_department_codes_follow_catalog_once_it_announces_them_and_duplicates_apply_once(client, admin):
    bus = client.app.state.bus
    event = new_event(DEPARTMENT_UPSERTED, source="/yimen/catalog", subject="LD-WJJ",
                      data={"code": "LD-WJJ", "name": "罗定市卫生健康局", "credit_code": "11441781MB0000002D"})
    await bus.publish(event)
    await bus.publish(event)  # redelivered: one effect

    async def known() -> bool:
        r = await client.post("/identity/v1/staff", json=staff_body(department="LD-NOPE"), headers=admin)
        return r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_department"

    await eventually(known)
    ok = await client.post("/identity/v1/staff", json=staff_body(department="LD-WJJ"), headers=admin)
    assert ok.status_code == 201
    from sqlalchemy import func, select

    from services.identity.store.tables import Department
    async with client.app.state.db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(Department))).scalar_one() == 1
        inbox = client.app.state.messaging.inbox
        rows = (await s.execute(select(func.count()).select_from(inbox).where(inbox.c.event_id == event.id))).scalar_one()
        assert rows == 1
    # A second, different event for the same code updates it in place.
    await bus.publish(new_event(DEPARTMENT_UPSERTED, source="/yimen/catalog", subject="LD-WJJ",
                                data={"code": "LD-WJJ", "name": "卫健局", "credit_code": None}))

    async def renamed() -> bool:
        async with client.app.state.db.transaction() as s:
            return (await s.get(Department, "LD-WJJ")).name == "卫健局"

    await eventually(renamed)


async def test_a_staff_record_keeps_office_phone_and_unit_and_the_token_carries_them(client, admin):
    body = staff_body(roles=["department_reviewer"], service_point=None, department="LD-WJJ",
                      office_phone="0766-3811111", unit="行政审批股")
    r = await client.post("/identity/v1/staff", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["office_phone"], r.json()["unit"]) == ("0766-3811111", "行政审批股")
    token = (await client.post(TOKEN, data={"grant_type": "password", "username": body["username"],
                                            "password": "window-2026"})).json()["access_token"]
    p = await JWKSVerifier(http_jwks_fetcher("/identity/v1/.well-known/jwks.json", client)).verify(token)
    assert (p.claims["phone"], p.claims["unit"], p.name) == ("0766-3811111", "行政审批股", "陈晓")
    bad = await client.post("/identity/v1/staff", json=staff_body(office_phone="call me"), headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.office_phone"
