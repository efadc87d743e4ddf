"""OWASP API Top 10 against running datashare, efficacy and identity apps (real database, real bus):
another person's certificate, another applicant's clock and rating, a citizen on staff and admin routes,
masking of ID and phone numbers, and 429 after repeated failed logins."""

from __future__ import annotations

from typing import Any

import pytest_asyncio

from services.datashare.app import create_app as datashare_app
from services.datashare.tests.factories import BUSINESS_LICENCE, credit_code, id_number
from services.efficacy.app import create_app as efficacy_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.tests.helpers import accepted, new_id
from services.identity.tests.helpers import import_people
from shared.testing import eventually, free_port
from tests.identity_stack import identity_with_datashare
from tests.security.conftest import CHEAP_IDENTITY, Served, serve

PROBLEM = "application/problem+json"


def refused(r: Any, *codes: int) -> bool:
    return r.status_code in codes and r.headers["content-type"] == PROBLEM


async def unrefused(client: Any, headers: dict[str, str], calls: list[tuple[str, str, Any]],
                    codes: tuple[int, ...] = (403,)) -> list[str]:
    wrong = []
    for method, path, body in calls:
        r = await client.request(method, path, headers=headers, json=body)
        if not refused(r, *codes):
            wrong.append(f"{method} {path} → {r.status_code} {r.text[:160]}")
    return wrong


# --- datashare ------------------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def datashare(settings_for, tokens):
    settings = settings_for("datashare", service_urls={"intake": f"http://127.0.0.1:{free_port()}"})
    async with serve(datashare_app, settings, tokens=tokens) as served:
        yield served


async def test_another_holder_reaches_no_certificate_and_a_citizen_no_staff_route(datashare, tokens):
    holder = credit_code()
    issuer = tokens.headers("staff-scjgj", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    r = await datashare.client.post("/datashare/v1/certificates", headers=issuer, json={
        "type_code": BUSINESS_LICENCE, "holder_id": holder, "holder_kind": "001", "holder_name": "好味餐饮店",
        "fields": {"name": "好味餐饮店", "legal_representative": "陈明"}})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    owner = tokens.headers("agent-own", roles=["org_agent"], hid=id_number(), org=holder)
    assert (await datashare.client.get(f"/datashare/v1/certificates/{number}", headers=owner)).status_code == 200
    stranger = tokens.headers("agent-other", roles=["org_agent"], hid=id_number(), org=credit_code())
    other_dept = tokens.headers("staff-mzj", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    p = "/datashare/v1"
    wrong = await unrefused(datashare.client, stranger, [
        ("GET", f"{p}/certificates/{number}", None),
        ("POST", f"{p}/certificates/{number}/revocation", {"reason": "注销"}),
        ("GET", f"{p}/me/certificates?holder_id={holder}", None),
        ("GET", f"{p}/archive?holder_id={holder}", None),
        ("GET", f"{p}/certificates/verification?holder={holder}&holder_kind=001&type_code={BUSINESS_LICENCE}"
                "&reason=核对经营资格", None),
        ("POST", f"{p}/certificates", {"type_code": BUSINESS_LICENCE, "holder_id": holder, "holder_kind": "001",
                                       "holder_name": "x", "fields": {"name": "x", "legal_representative": "x"}}),
        ("POST", f"{p}/certificate-types", {"code": "11441781MB0000001A099", "name": "x",
                                            "issuer_department": "LD-SCJGJ", "field_schema": {}}),
        ("GET", f"{p}/access-log", None), ("GET", f"{p}/access-log/verification", None),
        ("GET", f"{p}/registries/population/{id_number()}", None),
        ("GET", f"{p}/registries/legal-persons/{holder}", None),
        ("POST", f"{p}/registries/population/imports", [{"id_number": id_number(), "name": "x"}]),
    ])
    wrong += [f"(other department) {w}" for w in await unrefused(datashare.client, other_dept, [
        ("GET", f"{p}/certificates/{number}", None),
        ("POST", f"{p}/certificates/{number}/revocation", {"reason": "注销"})])]
    assert not wrong, "\n".join(wrong)
    full = (await datashare.client.get(f"{p}/certificates/{number}", headers=owner)).json()
    assert full["status"] == "valid"


async def test_only_window_staff_list_another_holders_certificates(datashare, tokens):
    """`GET /me/certificates?holder_id=` is documented as "Window staff may pass holder_id"; a reviewer of an
    unrelated department or a supervisor is not window staff."""
    holder = credit_code()
    for who in (tokens.headers("staff-jyj", kind="staff", roles=["department_reviewer"], dept="LD-JYJ"),
                tokens.headers("sup-1", kind="staff", roles=["supervisor"])):
        r = await datashare.client.get("/datashare/v1/me/certificates", headers=who, params={"holder_id": holder})
        assert refused(r, 403), (r.status_code, r.text[:200])


# --- efficacy -------------------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def efficacy(settings_for, tokens):
    config = EfficacyConfig(evaluation_interval_seconds=3600)
    async with serve(efficacy_app, settings_for("efficacy"), tokens=tokens, config=config) as served:
        yield served


async def test_another_applicant_reaches_no_clock_or_rating_and_a_citizen_no_staff_route(efficacy, tokens):
    app = new_id()
    await efficacy.app.state.bus.publish(accepted(app, "2026-09-21T09:00:00", person="p-owner",
                                                  hid="445381199001011234"))
    owner = tokens.headers("p-owner", roles=["citizen"], hid="445381199001011234")

    async def seen() -> bool:
        return (await efficacy.client.get(f"/efficacy/v1/clocks/{app}", headers=owner)).status_code == 200

    await eventually(seen)
    stranger = tokens.headers("p-other", roles=["citizen"], hid="445381198502020021")
    p = "/efficacy/v1"
    wrong = await unrefused(efficacy.client, stranger, [
        ("GET", f"{p}/clocks/{app}", None),
        ("POST", f"{p}/ratings", {"application_id": app, "level": "very_dissatisfied", "comment": "差"}),
    ], codes=(404,))  # like intake and workflow: a stranger's application answers like an unknown one
    wrong += await unrefused(efficacy.client, stranger, [
        ("PUT", f"{p}/calendar/2027", {"days": []}),
        ("POST", f"{p}/cards/evaluation?as_of=2026-12-01", None),
        ("GET", f"{p}/cards?as_of=2026-12-01", None), ("GET", f"{p}/cards/raised", None),
        ("GET", f"{p}/supervision", None), ("GET", f"{p}/dashboard", None),
    ])
    assert not wrong, "\n".join(wrong)


# --- identity -------------------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def identity(settings_for, tokens):
    # Registration matches the population registry at a real datashare (identity's own tests' arrangement).
    async with identity_with_datashare(settings_for, tokens, identity=CHEAP_IDENTITY, trust_test_issuer=True) as client:
        yield Served(client, client.url)


async def test_identity_masks_numbers_refuses_citizens_on_admin_routes_and_locks_after_failed_logins(identity, tokens):
    number = id_number("19900303")
    await import_people(identity.client, {"id_number": number, "name": "王五"})
    r = await identity.client.post("/identity/v1/people", json={
        "name": "王五", "id_number": number, "phone": "13912345678", "password": "a-long-pass-2026"})
    assert r.status_code == 201, r.text
    assert number not in r.text and "13912345678" not in r.text
    login = {"grant_type": "password", "username": number, "password": "a-long-pass-2026"}
    token = (await identity.client.post("/identity/v1/token", data=login)).json()["access_token"]
    me = {"Authorization": f"Bearer {token}"}
    p = "/identity/v1"
    wrong = await unrefused(identity.client, me, [
        ("POST", f"{p}/staff", {"username": "evil", "name": "x", "password": "x" * 12, "roles": ["admin"]}),
        ("GET", f"{p}/staff", None), ("GET", f"{p}/department-clients", None),
        ("POST", f"{p}/department-clients", {"department": "LD-WJJ", "name": "evil"}),
        ("POST", f"{p}/department-clients/some-client/secret", None), ("POST", f"{p}/keys/rotate", None),
        ("GET", f"{p}/people/lookup?id_number={id_number()}&reason=x", None),
    ])
    assert not wrong, "\n".join(wrong)
    statuses = []
    for _ in range(7):  # bounded: the policy locks after five failures
        r = await identity.client.post("/identity/v1/token", data={**login, "password": "wrong-guess"})
        statuses.append(r.status_code)
    # OAuth2 answers a wrong password with 400 invalid_grant; the fifth failure locks the username.
    assert set(statuses[:4]) <= {400, 401} and statuses[4:] == [429, 429, 429], statuses
    locked = await identity.client.post("/identity/v1/token", data=login)
    assert refused(locked, 429), "the right password does not open a locked account"


async def test_sign_in_attempts_beyond_the_clients_rate_are_429(settings_for, tokens):
    """OWASP API4: the lock-out guards one username; the per-client limit guards the endpoint against a client
    trying one password on many usernames."""
    from services.identity.app import create_app
    from shared.testing import running_app
    from tests.security.conftest import CHEAP_IDENTITY

    async with running_app(create_app, settings_for("identity", login_rate_per_minute=3), tokens=tokens,
                           identity=CHEAP_IDENTITY) as client:
        codes = []
        for n in range(4):
            r = await client.post("/identity/v1/token", data={
                "grant_type": "password", "username": f"nobody{n}", "password": "guess"})
            codes.append(r.status_code)
        assert codes[:3] == [400, 400, 400] and codes[3] == 429, codes
        assert r.headers["content-type"] == "application/problem+json" and int(r.headers["Retry-After"]) >= 1
