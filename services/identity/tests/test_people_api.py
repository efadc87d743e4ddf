"""Registration through the API: rules as precise 422s, normalisation, duplicates, the published event; the
population-registry match (实名核验) and the window clerk's in-person check."""

from __future__ import annotations

import uuid

import jwt
import pytest

from services.identity.app import create_app
from services.identity.events.contracts import PERSON_ASSURANCE_RAISED, PERSON_REGISTERED
from services.identity.tests.conftest import CHEAP
from services.identity.tests.helpers import (
    PASSWORD,
    bearer,
    id_number,
    import_people,
    login,
    phone,
    register,
    with_wrong_check_digit,
)
from shared.testing import eventually, free_port, running_app

PEOPLE = "/identity/v1/people"


async def test_registration_derives_birth_date_and_sex_masks_numbers_and_publishes(client, tap):
    number = id_number(birth="19880808", seq="457")
    p = await register(client, id_number=number, phone="+86 139 0000 1111", name=" 王芳 ")
    assert p["name"] == "王芳" and p["birth_date"] == "1988-08-08" and p["sex"] == "male"
    assert p["id_number"] == number[:4] + "*" * 10 + number[-4:]
    assert p["phone"] == "139****1111"
    assert not {"password", "password_hash"} & set(p)
    events = await eventually(lambda: tap.of(PERSON_REGISTERED, p["id"]))
    data = events[0]["data"]
    assert data == {"person_id": p["id"], "name": "王芳", "id_number_masked": p["id_number"],
                    "registered_at": data["registered_at"], "assurance_level": 2}
    assert events[0]["source"] == "/yimen/identity"
    assert number not in str(events[0])


async def test_duplicate_id_number_is_409_even_written_differently(client):
    number = next(n for n in (id_number() for _ in range(200)) if n.endswith("X"))
    await register(client, id_number=number)
    full_width_lower = "".join(chr(ord(c) + 0xFEE0) for c in number[:-1]) + "x"
    r = await client.post(PEOPLE, json={"name": "李明", "id_number": f" {full_width_lower} ", "phone": phone(),
                                        "password": PASSWORD})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/person-exists")


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("id_number", with_wrong_check_digit(id_number()), "check_digit"),
    ("id_number", id_number(birth="19900230"), "birth_date"),
    ("id_number", id_number(birth="20991231"), "birth_date"),
    ("id_number", id_number(region="995381"), "region"),
    ("id_number", "44538119900101", "length"),
    ("id_number", "44538119900101123Y", "format"),
    ("phone", "12345", "format"),
    ("password", "short", "password_policy"),
    ("password", "12345678901", "password_policy"),
    ("name", "   ", "missing"),
])
async def test_bad_input_is_a_422_naming_field_and_rule(client, field, value, rule):
    body = {"name": "李明", "id_number": id_number(), "phone": phone(), "password": PASSWORD, field: value}
    r = await client.post(PEOPLE, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert {"field": f"body.{field}", "rule": rule} == {k: r.json()["errors"][0][k] for k in ("field", "rule")}


async def test_missing_fields_and_wrong_types_are_422_not_500(client):
    r = await client.post(PEOPLE, json={"name": "李明"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"body.id_number", "body.phone", "body.password"}
    r = await client.post(PEOPLE, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post(PEOPLE, json={"name": "李明", "id_number": 445381, "phone": phone(), "password": PASSWORD})
    assert r.status_code == 422


async def test_idempotency_key_replays_the_first_answer(client):
    body = {"name": "赵六", "id_number": id_number(), "phone": phone(), "password": PASSWORD}
    headers = {"Idempotency-Key": "reg-" + body["id_number"]}
    first = await client.post(PEOPLE, json=body, headers=headers)
    again = await client.post(PEOPLE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"


async def test_parallel_registrations_of_one_number_give_one_person_and_409s(client):
    import asyncio

    number = id_number()
    body = {"name": "孙七", "id_number": number, "phone": phone(), "password": PASSWORD}
    results = await asyncio.gather(*(client.post(PEOPLE, json=body) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409], [r.text for r in results]


# --- identity assurance (实名核验) ----------------------------------------------------------------------------

async def test_someone_elses_number_with_another_name_is_422_on_name_and_creates_nothing(client):
    """Finding (issue #13): anyone who typed a valid ID number registered as that person."""
    number = id_number()
    await import_people(client, {"id_number": number, "name": "张三"})
    r = await client.post(PEOPLE, json={"name": "李四", "id_number": number, "phone": phone(), "password": PASSWORD})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert {k: r.json()["errors"][0][k] for k in ("field", "rule")} == {"field": "body.name", "rule": "registry_mismatch"}
    assert (await login(client, number)).status_code == 400, "no account was created"
    owner = await register(client, id_number=number, name="张三")
    assert owner["assurance_level"] == 2 and owner["assurance_note"] is None
    # The person reads both checks in their own access log at datashare, with the purpose.
    auth = await bearer(client, number)
    log = (await client.datashare.get("/datashare/v1/me/access-log", headers=auth)).json()["items"]
    checks = [e for e in log if e["action"] == "registry_match"]
    assert [e["outcome"] for e in checks] == ["match", "name_mismatch"]
    assert {e["purpose"] for e in checks} == {"实名核验 registration"} and {e["service"] for e in checks} == {"identity"}


async def test_a_number_the_registry_does_not_hold_gives_a_level_1_account_that_says_why(client):
    p = await register(client, in_registry=False)
    assert p["assurance_level"] == 1 and "人口库" in p["assurance_note"]
    token = (await login(client, p["raw"]["id_number"])).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["level"] == 1
    me = (await client.get("/identity/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["assurance_level"] == 1 and me["assurance_note"]


async def test_registration_is_503_and_creates_nothing_when_the_registry_is_unreachable(settings_for, tokens):
    down = {"datashare": f"http://127.0.0.1:{free_port()}"}
    async with running_app(create_app, settings_for("identity", service_urls=down), identity=CHEAP) as c:
        body = {"name": "李明", "id_number": id_number(), "phone": phone(), "password": PASSWORD}
        r = await c.post(PEOPLE, json=body)
        assert r.status_code == 503 and r.json()["type"].endswith("/registry-unavailable"), r.text
        assert r.headers["Retry-After"]
        assert (await login(c, body["id_number"])).status_code == 400


@pytest.mark.parametrize("weak", ["Passw0rd", "P@ssw0rd123", "qwertyuiop12", "woaini1314", "abcd1234abcd"])
async def test_common_and_weak_passwords_are_refused_by_the_estimator(client, weak):
    """Finding (issue #13): `Passw0rd` was accepted."""
    r = await client.post(PEOPLE, json={"name": "李明", "id_number": id_number(), "phone": phone(), "password": weak})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "password_policy", (weak, r.text)


async def test_a_window_clerk_raises_a_person_to_level_3_after_checking_the_id_card(client, admin, tap):
    person = await register(client, in_registry=False)
    clerk_body = {"username": f"clerk{uuid.uuid4().hex[:8]}", "name": "陈晓", "password": "counter-bamboo-2026",
                  "roles": ["window_clerk"], "department": "LD-ZSJ", "service_point": "LD-CENTRE"}
    assert (await client.post("/identity/v1/staff", headers=admin, json=clerk_body)).status_code == 201
    clerk = await bearer(client, clerk_body["username"], clerk_body["password"])
    url = f"{PEOPLE}/{person['id']}/in-person-verification"
    citizen = await bearer(client, person["raw"]["id_number"])
    card = {"id_number": person["raw"]["id_number"], "name": "李 明"}
    assert (await client.post(url, headers=citizen, json=card)).status_code == 403
    wrong = await client.post(url, headers=clerk, json={**card, "id_number": id_number()})
    assert wrong.status_code == 422 and wrong.json()["errors"][0] == {
        **wrong.json()["errors"][0], "field": "body.id_number", "rule": "card_mismatch"}
    other = await client.post(url, headers=clerk, json={**card, "name": "李四"})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "body.name"
    r = await client.post(url, headers=clerk, json={**card, "note": "读卡器核验"})
    assert r.status_code == 201, r.text
    assert r.json() | {"at": None} == {"person_id": person["id"], "assurance_level": 3, "level_before": 1,
                                       "password_replaced": False,
                                       "document": "resident_id_card", "service_point": "LD-CENTRE",
                                       "clerk_id": r.json()["clerk_id"], "at": None}
    token = (await login(client, person["raw"]["id_number"])).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["level"] == 3
    raised = (await eventually(lambda: tap.of(PERSON_ASSURANCE_RAISED, person["id"])))[0]["data"]
    assert raised | {"at": None} == {"person_id": person["id"], "assurance_level": 3, "basis": "in_person",
                                     "service_point": "LD-CENTRE", "at": None}
    again = await client.post(url, headers=clerk, json=card)
    assert again.status_code == 201 and again.json()["level_before"] == 3  # recorded again, the level stays


async def clerk_headers(client, admin) -> dict[str, str]:  # type: ignore[no-untyped-def]
    body = {"username": f"clerk{uuid.uuid4().hex[:8]}", "name": "陈晓", "password": "counter-bamboo-2026",
            "roles": ["window_clerk"], "department": "LD-ZSJ", "service_point": "LD-CENTRE"}
    assert (await client.post("/identity/v1/staff", headers=admin, json=body)).status_code == 201
    return await bearer(client, body["username"], body["password"])


async def test_the_owner_at_the_window_takes_over_an_account_someone_else_opened_with_their_number(client, admin):
    number = id_number()
    squatter = await register(client, in_registry=False, id_number=number, name="张三")
    held = await bearer(client, number)
    r = await client.post(f"{PEOPLE}/{squatter['id']}/in-person-verification", headers=await clerk_headers(client, admin),
                          json={"id_number": number, "name": "张三", "new_password": "owner-at-counter-77"})
    assert r.status_code == 201 and r.json()["password_replaced"] is True and r.json()["assurance_level"] == 3

    async def refused() -> bool:
        return (await client.get("/identity/v1/me", headers=held)).status_code == 401

    await eventually(refused, timeout=15)
    assert (await login(client, number)).status_code == 400, "the old password no longer opens it"
    assert (await login(client, number, "owner-at-counter-77")).status_code == 200


async def test_a_self_registered_account_rises_when_the_registry_later_holds_the_number(client):
    p = await register(client, in_registry=False, name="王芳")
    auth = await bearer(client, p["raw"]["id_number"])
    check = "/identity/v1/me/assurance/registry-check"
    still = await client.post(check, headers=auth)
    assert still.status_code == 200 and still.json()["assurance_level"] == 1 and still.json()["assurance_note"]
    await import_people(client, {"id_number": p["raw"]["id_number"], "name": "王芳"})
    risen = await client.post(check, headers=auth)
    assert risen.json() == {"assurance_level": 2, "assurance_note": None}
    token = (await login(client, p["raw"]["id_number"])).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["level"] == 2
    other = await register(client, in_registry=False, name="赵六")
    await import_people(client, {"id_number": other["raw"]["id_number"], "name": "钱七"})
    mismatch = await client.post(check, headers=await bearer(client, other["raw"]["id_number"]))
    assert mismatch.status_code == 409 and mismatch.json()["type"].endswith("/registry-name-mismatch")
