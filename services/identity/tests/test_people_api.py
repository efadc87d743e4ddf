"""Registration through the API: rules as precise 422s, normalisation, duplicates, the published event."""

from __future__ import annotations

import pytest

from services.identity.events.contracts import PERSON_REGISTERED
from services.identity.tests.helpers import PASSWORD, id_number, phone, register, with_wrong_check_digit
from shared.testing import eventually

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
                    "registered_at": data["registered_at"]}
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
