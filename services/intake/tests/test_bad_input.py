"""Hostile or malformed input always gets a precise 4xx problem, never a 500 (on SQLite and PostgreSQL)."""

from __future__ import annotations

from services.intake.tests import factories as f
from services.intake.tests.test_applications import BASE, PROBLEM, draft, fields
from shared.pagination import encode_cursor


async def test_malformed_ids_codes_and_cursors_are_422_naming_the_field(intake, tokens):
    me = f.citizen(tokens)
    clerk = f.clerk(tokens)
    checks = [
        (await intake.client.get(f"{BASE}/applications/not-an-id", headers=me), "path.application_id", "string_pattern_mismatch"),
        (await intake.client.get(f"{BASE}/applications/{'a' * 31}%07", headers=me), "path.application_id", "string_pattern_mismatch"),
        (await intake.client.get(f"{BASE}/status/AB%07CD", params={"code": "123456"}), "path.receipt_number", "string_pattern_mismatch"),
        (await intake.client.get(f"{BASE}/me/prefill", headers=me, params={"item_code": "x\x07"}), "query.item_code", "string_pattern_mismatch"),
        (await intake.client.post(f"{BASE}/appointments", headers=me, json={"slot_id": 2**63}), "body.slot_id", "less_than_equal"),
        (await intake.client.post(f"{BASE}/appointments/{2**63}/cancel", headers=me), "path.appointment_id", "less_than_equal"),
        (await intake.client.get(f"{BASE}/me/applications", headers=me, params={"cursor": encode_cursor(["2026-01-01T00:00:00", "x"])}),
         "query.cursor", "cursor"),
        (await intake.client.get(f"{BASE}/me/applications", headers=me, params={"cursor": encode_cursor([1, 2])}),
         "query.cursor", "cursor"),
        (await intake.client.get(f"{BASE}/me/appointments", headers=me, params={"cursor": encode_cursor(["x"])}),
         "query.cursor", "cursor"),
        (await intake.client.get(f"{BASE}/commitments", headers=tokens.headers("r", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ"),
                                 params={"cursor": encode_cursor([2**70])}), "query.cursor", "cursor"),
        (await intake.client.get(f"{BASE}/appointment-slots", params={"after": "2026-12-01T09:00:00"}), "query.after", "timezone"),
        (await intake.client.post(f"{BASE}/consultations", headers=me, json={"item_code": "X", "question": "a\x07b"}),
         "body.question", "control_character"),
        (await intake.client.post(f"{BASE}/applications", headers=me, json={"item_code": "A B", "channel": "online",
                                                                            "service_point": "LD-CENTRE"}),
         "body.item_code", "string_pattern_mismatch"),
        (await intake.client.post(f"{BASE}/applications", headers={**me, "content-type": "application/json"},
                                  content=b"{not json"), "body", "json_invalid"),
        (await intake.client.post(f"{BASE}/appointment-slots", headers=clerk, json={
            "service_point": "LD-CENTRE", "item_code": "X", "starts_at": "2026-12-01T09:00:00", "capacity": 1}),
         "starts_at", "timezone"),
    ]
    for response, field, rule in checks:
        assert response.status_code == 422, (field, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert any(e["field"].startswith(field) and e["rule"] == rule for e in response.json()["errors"]), response.text


async def test_control_characters_in_free_text_and_file_names_never_reach_the_database_as_errors(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"], form={"shop_name": "a\u0007b", "address": "x"})
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers=me,
                                 data={"material_code": "M03"},
                                 files={"file": ("pl\x00an.pdf" + "x" * 300, f.PDF, "application/pdf" + "; x=y" * 50)})
    assert r.status_code == 422 and ("file", "file_type") in fields(r.json())  # the name no longer ends in .pdf
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers=me,
                                 data={"material_code": "M03"},
                                 files={"file": ("p" * 300 + "l\x00an.pdf", f.PDF, "application/pdf" + "; x=y" * 50)})
    assert r.status_code == 201 and "\x00" not in r.json()["filename"] and len(r.json()["content_type"]) <= 100
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers=me,
                                 json={"material_code": "M04", "kind": "commitment", "statement": "ok\u0007"})
    assert r.status_code == 422 and ("statement", "control_character") in fields(r.json())
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers=me, content=b"")
    assert r.status_code == 415
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials", headers={**me, "content-type": "application/json"},
                                 content=b"[1,2")
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "json_invalid"
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/materials",
                                 headers={**me, "content-type": "multipart/form-data; boundary=zzz"}, content=b"--zzz\r\nbroken")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    check = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=me)
    assert check.status_code == 200
