"""OWASP API Top 10 against a running intake (real database, real bus): object-level authorization on every
route that takes an application id, function-level (a citizen on clerk routes), property-level (masking,
fields a client must not set), resource limits (oversized bodies) and business-flow abuse (skipping steps,
submitting twice)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest_asyncio

from services.intake.app import create_app
from services.intake.tests import factories as f
from shared.testing import eventually, free_port
from tests.security.conftest import serve

BASE = "/intake/v1"
PROBLEM = "application/problem+json"
OWNER_HID, STRANGER_HID = "445381199001011234", "445381198502020021"
PHONE = "13800138000"


def where(value, secret: str, path: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    """The JSON paths at which `secret` appears in `value`."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in where(v, secret, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in where(v, secret, f"{path}[{i}]")]
    return [f"{path}={value!r}"] if secret in str(value) else []


def person(tokens, hid: str):  # type: ignore[no-untyped-def]
    return f.citizen(tokens, sub="p-" + uuid.uuid4().hex[:8], hid=hid, phone=PHONE)


@pytest_asyncio.fixture(scope="module")
async def intake(settings_for, tokens):
    # Datashare is never asked: the item below has only an applicant upload.
    settings = settings_for("intake", service_urls={"datashare": f"http://127.0.0.1:{free_port()}"})
    async with serve(create_app, settings, tokens=tokens) as served:
        yield served


@pytest_asyncio.fixture(scope="module")
async def item(intake, tokens):
    payload = f.simple_item(f.item_code())
    await intake.app.state.bus.publish(f.published(payload))
    probe = person(tokens, OWNER_HID)

    async def known() -> bool:
        r = await intake.client.post(f"{BASE}/applications", headers=probe, json={
            "item_code": payload["code"], "channel": "online", "service_point": "LD-CENTRE"})
        return r.status_code == 201

    await eventually(known, timeout=20)
    return payload


async def draft(intake, headers, item, **extra):  # type: ignore[no-untyped-def]
    r = await intake.client.post(f"{BASE}/applications", headers=headers, json={
        "item_code": item["code"], "channel": "window", "service_point": "LD-CENTRE",
        "form": {"shop_name": "罗城小厨"}, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def complete(intake, headers, item):  # type: ignore[no-untyped-def]
    app = await draft(intake, headers, item)
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers=headers,
                                 data={"material_code": "M03"}, files={"file": ("plan.pdf", f.PDF, "application/pdf")})
    assert r.status_code == 201, r.text
    return app


async def test_another_applicant_reaches_none_of_the_routes_that_take_an_application_id(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    app = await complete(intake, owner, item)
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=owner)).json()
    att = next(m for m in got["materials"] if m["material_code"] == "M03")["id"]
    stranger = person(tokens, STRANGER_HID)
    calls = [
        ("GET", "", None), ("PATCH", "", {"form": {"shop_name": "偷改"}}),
        ("POST", "/materials", {"material_code": "M03", "kind": "commitment"}),
        ("GET", f"/materials/{att}/file", None), ("POST", "/check", None), ("POST", "/submit", None),
        ("POST", "/withdraw", None), ("POST", "/corrections", {}), ("POST", "/copy", None),
        ("GET", "/visits", None), ("POST", "/visits", {"purpose": "到场"}),
        ("POST", "/accept", None), ("POST", "/not-accept", {"reasons": "x", "legal_basis": "x"}),
        ("POST", "/return", {"reasons": "x"}), ("POST", "/deliver", {"method": "pickup"}),
    ]
    leaks = []
    for method, suffix, body in calls:
        headers = {**stranger, "If-Match": "*"} if method == "PATCH" else stranger
        r = await intake.client.request(method, f"{BASE}/applications/{app['id']}{suffix}", headers=headers,
                                        json=body)
        if r.status_code not in (403, 404) or r.headers["content-type"] != PROBLEM:
            leaks.append(f"{method} {suffix or '/'} → {r.status_code} {r.text[:120]}")
    assert not leaks, "another applicant got through:\n" + "\n".join(leaks)
    mine = (await intake.client.get(f"{BASE}/me/applications", headers=stranger)).json()["items"]
    assert app["id"] not in {a["id"] for a in mine}
    # The owner's application is untouched.
    again = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=owner)).json()
    assert again["status"] == "draft" and again["form"] == {"shop_name": "罗城小厨"}


async def test_a_citizen_calling_clerk_and_staff_routes_is_refused(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    app = await complete(intake, owner, item)
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/submit", headers=owner)).status_code in (200, 201)
    calls = [
        ("POST", f"/applications/{app['id']}/accept", None),
        ("POST", f"/applications/{app['id']}/not-accept", {"reasons": "不符合", "legal_basis": "《行政许可法》"}),
        ("POST", f"/applications/{app['id']}/return", {"reasons": "补正"}),
        ("POST", f"/applications/{app['id']}/deliver", {"method": "pickup"}),
        ("POST", f"/applications/{app['id']}/visits", {"purpose": "到场"}),
        ("GET", "/queue", None), ("GET", "/consultations", None), ("GET", "/commitments", None),
        ("POST", "/appointment-slots", {"service_point": "LD-CENTRE", "item_code": item["code"],
                                        "starts_at": "2026-12-01T09:00:00+08:00", "capacity": 3}),
    ]
    wrong = []
    for method, path, body in calls:
        r = await intake.client.request(method, BASE + path, headers=owner, json=body)
        if r.status_code != 403 or r.headers["content-type"] != PROBLEM:
            wrong.append(f"{method} {path} → {r.status_code} {r.text[:120]}")
    assert not wrong, "a citizen was not refused with 403:\n" + "\n".join(wrong)
    status = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=owner)).json()["status"]
    assert status == "submitted"


async def test_fields_a_client_must_not_set_are_refused_on_create_and_update(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    base = {"item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE"}
    for hidden in ({"status": "decided"}, {"receipt_number": "R123"}, {"applicant": {"id": "someone-else"}},
                   {"owner": "someone-else"}, {"outcome": "approved"}, {"id": "chosen-id"}):
        r = await intake.client.post(f"{BASE}/applications", headers=owner, json={**base, **hidden})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (hidden, r.status_code, r.text)
    app = await draft(intake, owner, item)
    for hidden in ({"status": "accepted"}, {"receipt_number": "R123"}, {"verification_code": "000000"}):
        r = await intake.client.patch(f"{BASE}/applications/{app['id']}", headers={**owner, "If-Match": "*"},
                                      json={"form": {"shop_name": "x"}, **hidden})
        assert r.status_code in (412, 422, 428), (hidden, r.status_code, r.text)
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=owner)).json()
    assert got["status"] == "draft" and not got.get("receipt_number")


async def test_id_and_phone_numbers_are_masked_for_reviewers_and_absent_from_the_public_status(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    app = await complete(intake, owner, item)
    submitted = (await intake.client.post(f"{BASE}/applications/{app['id']}/submit", headers=owner)).json()
    # A window clerk checks the applicant's identity at the counter (services/intake/api/deps.py); the reviewing
    # departments see the number masked.
    reviewer = tokens.headers("rev-1", kind="staff", roles=["department_reviewer"], dept=item["department"])
    seen = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=reviewer)
    assert seen.status_code == 200, seen.text
    assert not where(seen.json(), OWNER_HID) and not where(seen.json(), PHONE), (
        where(seen.json(), OWNER_HID), where(seen.json(), PHONE))
    assert seen.json()["applicant"]["holder_id"] == OWNER_HID[:4] + "*" * 10 + OWNER_HID[-4:]
    public = await intake.client.get(f"{BASE}/status/{submitted['receipt_number']}",
                                     params={"code": submitted["verification_code"]})
    assert public.status_code == 200
    assert OWNER_HID not in public.text and OWNER_HID[-4:] not in public.text and "张三" not in public.text


async def test_a_body_over_one_mebibyte_is_413_problem_json_declared_or_streamed(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    big = b'{"item_code": "' + b"A" * (1_048_576 + 10) + b'"}'
    headers = {**owner, "content-type": "application/json"}
    declared = await intake.client.post(f"{BASE}/applications", headers=headers, content=big)
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM

    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=intake.url, timeout=30) as http:
        # As JSON, as bytes of another type, and as a multipart upload (whose limit is 32 × larger).
        for ctype, limit in (("application/json", 1), ("application/octet-stream", 1), ("text/plain", 1),
                             ("multipart/form-data; boundary=x", 33)):
            async def chunks(n: int = limit):  # no Content-Length: the limit must hold on what is read
                for _ in range(n * 17):
                    yield b"A" * 65536

            streamed = await http.post(f"{BASE}/applications", headers={**owner, "content-type": ctype},
                                       content=chunks())
            if streamed.status_code != 413 or streamed.headers["content-type"] != PROBLEM:
                wrong.append(f"{ctype} → {streamed.status_code} {streamed.text[:120]}")
    assert not wrong, "a streamed body over the limit is not 413:\n" + "\n".join(wrong)


async def test_submitting_twice_without_a_key_makes_one_submission_and_skipping_steps_is_409(intake, tokens, item):
    owner = person(tokens, OWNER_HID)
    app = await complete(intake, owner, item)
    first, second = await asyncio.gather(*(intake.client.post(f"{BASE}/applications/{app['id']}/submit",
                                                               headers=owner) for _ in range(2)))
    codes = sorted([first.status_code, second.status_code])
    ok = [r for r in (first, second) if r.status_code == 200]
    assert codes in ([200, 409], [200, 200]), codes
    assert len({r.json()["receipt_number"] for r in ok}) == 1
    later = await intake.client.post(f"{BASE}/applications/{app['id']}/submit", headers=owner)
    assert later.status_code == 409 or later.json()["receipt_number"] == ok[0].json()["receipt_number"]
    # Accepting, returning or delivering a draft that was never submitted skips a step: 409.
    never = await complete(intake, owner, item)
    clerk = f.clerk(tokens)
    for action, body in (("accept", None), ("return", {"reasons": "补正"}), ("deliver", {"method": "pickup"}),
                         ("not-accept", {"reasons": "不符合", "legal_basis": "《行政许可法》第三十二条"})):
        r = await intake.client.post(f"{BASE}/applications/{never['id']}/{action}", headers=clerk, json=body)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM, (action, r.status_code, r.text)
    # Answering a correction nobody asked for is refused too.
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/corrections", headers=owner, json={})
    assert r.status_code == 409, r.text


async def test_submissions_beyond_the_applicants_rate_are_429_and_duplicates_do_not_count(settings_for, tokens):
    """OWASP API4: one applicant cannot flood submission; replays of one Idempotency-Key are not new attempts."""
    from services.intake.app import create_app
    from shared.testing import running_app

    async with running_app(create_app, settings_for("intake", submit_rate_per_minute=2), tokens=tokens) as client:
        h = tokens.headers("flooder")
        codes = [(await client.post(f"/intake/v1/applications/{'a' * 32}/submit", headers=h)).status_code
                 for _ in range(2)]
        assert codes == [404, 404], "counted, then refused for their own reason (no such application)"
        r = await client.post(f"/intake/v1/applications/{'a' * 32}/submit", headers=h)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["Retry-After"]) >= 1
        other = await client.post(f"/intake/v1/applications/{'a' * 32}/submit", headers=tokens.headers("someone"))
        assert other.status_code == 404, "the limit is per applicant"
