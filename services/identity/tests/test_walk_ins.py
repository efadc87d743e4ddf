"""Walk-ins (窗口代录): a window clerk registers the person at the counter, ID card in hand — level 3 at once, no
password, audited — and the person claims the account online with the one-time code printed on their slip."""

from __future__ import annotations

import uuid

import jwt

from services.identity.events.contracts import PERSON_ASSURANCE_RAISED, PERSON_REGISTERED
from services.identity.tests.helpers import PASSWORD, bearer, id_number, import_people, login, phone, register
from shared.testing import eventually

WALK_INS, CLAIMS = "/identity/v1/walk-ins", "/identity/v1/people/claims"


async def clerk_at(client, admin, point: str = "LD-CENTRE") -> dict[str, str]:  # type: ignore[no-untyped-def]
    body = {"username": f"clerk{uuid.uuid4().hex[:8]}", "name": "陈晓", "password": "counter-bamboo-2026",
            "roles": ["window_clerk"], "department": "LD-ZSJ", "service_point": point}
    assert (await client.post("/identity/v1/staff", headers=admin, json=body)).status_code == 201
    return await bearer(client, body["username"], body["password"])


async def test_a_clerk_opens_a_level_3_account_without_a_password_for_a_person_in_the_registry(client, admin, tap):
    number, mobile = id_number(), phone()
    await import_people(client, {"id_number": number, "name": "黄伯"})
    clerk = await clerk_at(client, admin, "LD-LC")
    r = await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "黄 伯", "phone": mobile})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["registry"] == "match" and body["service_point"] == "LD-LC"
    assert body["person"]["assurance_level"] == 3
    assert body["person"]["id_number"] == number[:4] + "*" * 10 + number[-4:], "the clerk holds the card"
    assert body["person"]["phone"] == mobile, "the clerk sees the phone to reach the person"
    assert len(body["claim_code"]) == 10 and body["claim_expires_at"]
    assert r.headers["cache-control"] == "no-store"
    pid = body["person"]["id"]
    registered = (await eventually(lambda: tap.of(PERSON_REGISTERED, pid)))[0]["data"]
    assert registered["assurance_level"] == 2  # what the registry gave; the card check raised it to 3
    raised = (await eventually(lambda: tap.of(PERSON_ASSURANCE_RAISED, pid)))[0]["data"]
    assert raised["assurance_level"] == 3 and raised["service_point"] == "LD-LC" and raised["basis"] == "in_person"
    # Nobody can sign in to it yet: not with the dummy password, not with an empty one.
    for guess in ("not-a-password-anyone-has", "", PASSWORD):
        assert (await login(client, number, guess)).status_code == 400
    # Audited where the person reads it once they hold the account.
    code = body["claim_code"]
    claimed = await client.post(CLAIMS, json={"id_number": number, "name": "黄伯", "claim_code": code.lower(),
                                              "password": "harbour-lantern-73"})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["id"] == pid and claimed.json()["id_number"] == number
    me = await bearer(client, number, "harbour-lantern-73")
    token = me["Authorization"].split()[1]
    assert jwt.decode(token, options={"verify_signature": False})["level"] == 3
    lookups = (await client.get("/identity/v1/me/lookups", headers=me)).json()
    assert any(x["reason"].startswith("窗口代录") and x["service_point"] == "LD-LC" for x in lookups), lookups
    # One-time: the same code claims nothing again.
    again = await client.post(CLAIMS, json={"id_number": number, "name": "黄伯", "claim_code": code,
                                            "password": "other-lantern-99x"})
    assert again.status_code == 422 and again.json()["errors"][0]["rule"] == "claim_refused"
    assert (await login(client, number, "harbour-lantern-73")).status_code == 200


async def test_a_person_the_registry_does_not_hold_is_still_level_3_with_the_card_in_hand(client, admin):
    clerk = await clerk_at(client, admin)
    r = await client.post(WALK_INS, headers=clerk, json={"id_number": id_number(), "name": "甘叔", "phone": phone()})
    assert r.status_code == 201 and r.json()["registry"] == "not_found" and r.json()["person"]["assurance_level"] == 3
    assert r.json()["person"]["assurance_note"] is None


async def test_a_name_the_registry_holds_otherwise_creates_nothing(client, admin):
    number = id_number()
    await import_people(client, {"id_number": number, "name": "刘洋"})
    clerk = await clerk_at(client, admin)
    r = await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "刘海", "phone": phone()})
    assert r.status_code == 422 and r.json()["errors"][0] | {"message": None} == {
        "field": "body.name", "rule": "registry_mismatch", "message": None}
    assert (await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "刘洋",
                                                             "phone": phone()})).status_code == 201


async def test_someone_with_an_account_is_checked_in_person_and_gets_no_code(client, admin):
    p = await register(client)
    clerk = await clerk_at(client, admin)
    card = {"id_number": p["raw"]["id_number"], "name": p["name"], "phone": phone()}
    r = await client.post(WALK_INS, headers=clerk, json=card)
    assert r.status_code == 200, r.text
    assert r.json()["created"] is False and r.json()["claim_code"] is None and r.json()["person"]["id"] == p["id"]
    assert r.json()["person"]["assurance_level"] == 3
    assert r.json()["person"]["phone"] == p["raw"]["phone"], "an existing account keeps its own phone"
    wrong = await client.post(WALK_INS, headers=clerk, json={**card, "name": "别人"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["rule"] == "card_mismatch"
    # The account has a password: no claim code opens it.
    assert (await client.post(CLAIMS, json={"id_number": card["id_number"], "name": p["name"],
                                            "claim_code": "ACDEFGHJKM", "password": "harbour-lantern-73"})
            ).status_code == 422


async def test_only_window_clerks_register_walk_ins(client, admin):
    citizen = await bearer(client, (await register(client))["raw"]["id_number"])
    body = {"id_number": id_number(), "name": "甘叔", "phone": phone()}
    assert (await client.post(WALK_INS, headers=citizen, json=body)).status_code == 403
    assert (await client.post(WALK_INS, headers=admin, json=body)).status_code == 403
    assert (await client.post(WALK_INS, json=body)).status_code == 401


async def test_wrong_codes_void_the_code_and_a_new_walk_in_issues_a_fresh_one(client, admin):
    number = id_number()
    clerk = await clerk_at(client, admin)
    first = (await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "梁姨", "phone": phone()})).json()
    claim = {"id_number": number, "name": "梁姨", "password": "harbour-lantern-73"}
    # Another name with the right code is refused like a wrong code, and counts.
    assert (await client.post(CLAIMS, json={**claim, "name": "梁叔", "claim_code": first["claim_code"]})).status_code == 422
    for _ in range(4):
        r = await client.post(CLAIMS, json={**claim, "claim_code": "XXXXXXXXXX"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.claim_code"
    void = await client.post(CLAIMS, json={**claim, "claim_code": first["claim_code"]})
    assert void.status_code == 422, "five wrong tries void the right code too"
    second = (await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "梁姨",
                                                               "phone": phone()})).json()
    assert second["created"] is False and second["claim_code"] and second["claim_code"] != first["claim_code"]
    assert second["person"]["id"] == first["person"]["id"]
    ok = await client.post(CLAIMS, json={**claim, "claim_code": second["claim_code"]})
    assert ok.status_code == 200, ok.text
    # An unknown number answers exactly as a wrong code does.
    unknown = await client.post(CLAIMS, json={**claim, "id_number": id_number(), "claim_code": second["claim_code"]})
    assert unknown.json()["errors"] == void.json()["errors"]


async def test_a_weak_password_is_refused_before_the_code_is_tried(client, admin):
    number = id_number()
    clerk = await clerk_at(client, admin)
    code = (await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "梁姨", "phone": phone()})
            ).json()["claim_code"]
    weak = await client.post(CLAIMS, json={"id_number": number, "name": "梁姨", "claim_code": code,
                                           "password": "Passw0rd"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["rule"] == "password_policy"
    assert (await client.post(CLAIMS, json={"id_number": number, "name": "梁姨", "claim_code": code,
                                            "password": "harbour-lantern-73"})).status_code == 200


async def test_a_password_typed_at_a_window_claims_an_unclaimed_walk_in_account(client, admin):
    number = id_number()
    clerk = await clerk_at(client, admin)
    first = (await client.post(WALK_INS, headers=clerk, json={"id_number": number, "name": "梁姨", "phone": phone()})).json()
    r = await client.post(f"/identity/v1/people/{first['person']['id']}/in-person-verification", headers=clerk,
                          json={"id_number": number, "name": "梁姨", "new_password": "harbour-lantern-73"})
    assert r.status_code == 201, r.text
    assert (await login(client, number, "harbour-lantern-73")).status_code == 200
    late = await client.post(CLAIMS, json={"id_number": number, "name": "梁姨", "claim_code": first["claim_code"],
                                           "password": "other-lantern-99x"})
    assert late.status_code == 422, "the slip's code is void once the account is claimed at a window"
