"""Datashare end to end through its routes, its database and the real bus."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from typing import Any

import pytest_asyncio
from sqlalchemy import select, text
from stdnum.cn import ric

from services.datashare.app import create_app
from services.datashare.store.tables import Certificate
from services.datashare.tests.factories import (
    BUSINESS_LICENCE,
    FOOD_PERMIT,
    FakeIntake,
    credit_code,
    food_item,
    id_number,
)
from shared.events import new_event
from shared.testing import consumers_settled, eventually, recording_statements, running_app

P = "/datashare/v1"


@pytest_asyncio.fixture(scope="module")
async def intake():
    with FakeIntake() as fake:
        yield fake


@pytest_asyncio.fixture(scope="module")
async def settings(settings_for, intake):
    return settings_for("datashare", service_urls={"intake": intake.url})


@pytest_asyncio.fixture(scope="module")
async def client(settings, tokens):
    async with running_app(create_app, settings, tokens=tokens) as c:
        yield c


def scjgj(tokens, **kw: Any) -> dict[str, str]:
    return tokens.headers("staff-scjgj", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ", **kw)


def agent(tokens, org: str, hid: str | None = None) -> dict[str, str]:
    return tokens.headers(f"agent-{org}", kind="person", roles=["org_agent"], hid=hid or id_number(), org=org)


async def publish(client, type_: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> None:
    ev = new_event(type_, source="/yimen/test", subject=subject, data=data, id=event_id)
    await client.app.state.bus.publish(ev)


async def publish_item(client, item: dict[str, Any]) -> None:
    await publish(client, "yimen.catalog.item.published", item["code"], item)

    async def stored() -> bool:
        async with client.app.state.db.transaction() as s:
            row = await s.execute(text("SELECT 1 FROM published_item WHERE code = :c"), {"c": item["code"]})
            return row.first() is not None

    await eventually(stored)


async def assign_task(client, application_id: str, department: str, item_code: str = "ITEM") -> str:
    """Workflow's `task.assigned` for this department, as the bus carries it; waits until datashare knows."""
    task_id = f"task-{application_id}-{department}"
    await publish(client, "yimen.workflow.task.assigned", task_id, {
        "task_id": task_id, "application_id": application_id, "receipt_number": f"R-{application_id}",
        "item_code": item_code, "department": department, "step_key": "joint", "step_name": "并联审查",
        "stage_kind": "parallel", "lead": False, "limit_days": 5, "due_at": "2026-12-10T10:00:00+00:00",
        "assigned_at": "2026-11-30T02:00:00+00:00"})

    async def known() -> bool:
        async with client.app.state.db.transaction() as s:
            row = await s.execute(text("SELECT 1 FROM workflow_task WHERE task_id = :t AND state = 'open'"),
                                  {"t": task_id})
            return row.first() is not None

    await eventually(known)
    return task_id


def admin_by_reason(tokens, sub: str = "admin-reason") -> tuple[dict[str, str], dict[str, str]]:
    """An admin's headers and the written reason a look-up without an application needs."""
    return tokens.headers(sub, kind="staff", roles=["admin"]), {"reason": "户籍数据质量核查"}


async def issue_licence(client, tokens, holder: str, **fields: Any) -> dict[str, Any]:
    r = await client.post(f"{P}/certificates", headers=scjgj(tokens), json={
        "type_code": BUSINESS_LICENCE, "holder_id": holder, "holder_kind": "001", "holder_name": "好味餐饮店",
        "fields": {"name": "好味餐饮店", "legal_representative": "陈明", "registered_capital": 100000, **fields},
    })
    assert r.status_code == 201, r.text
    return r.json()


# --- certificate directory and certificates -------------------------------------------------------------------

async def test_directory_is_seeded_with_the_contract_types(client):
    r = await client.get(f"{P}/certificate-types")
    codes = {t["code"]: t for t in r.json()}
    assert {BUSINESS_LICENCE, FOOD_PERMIT, "11441781MB0000006R001"} <= set(codes)
    assert codes[FOOD_PERMIT]["issuer_department"] == "LD-SCJGJ"
    one = await client.get(f"{P}/certificate-types/{FOOD_PERMIT}")
    assert one.json()["validity_years"] == 5
    missing = await client.get(f"{P}/certificate-types/11441781MB0000001A999")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    # Each type is announced with the fields it defines and requires (catalog checks items' mappings by it).
    from services.datashare.store.tables import messaging
    async with client.app.state.db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.payload).where(
            messaging.outbox.c.type == "yimen.datashare.certificate_type.upserted"))).scalars().all()
    announced = {e["data"]["code"]: e["data"] for e in map(json.loads, rows)}
    assert announced["11441781MB0000002D002"]["required"] == ["name", "birth_date"]
    assert "birth_place" in announced["11441781MB0000002D002"]["fields"]


async def test_admin_adds_a_type_and_a_bad_schema_is_named(client, tokens):
    admin = tokens.headers("admin-1", kind="staff", roles=["admin"])
    body = {"code": "11441781MB0000007W001", "name": "职业资格证书", "issuer_department": "LD-RSJ",
            "field_schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "validity_years": 3}
    r = await client.post(f"{P}/certificate-types", headers=admin, json=body)
    assert r.status_code == 201, r.text
    assert (await client.post(f"{P}/certificate-types", headers=admin, json=body)).status_code == 409
    bad = {**body, "code": "11441781MB0000007W002", "field_schema": {"properties": {"x": {"type": "date"}}}}
    r = await client.post(f"{P}/certificate-types", headers=admin, json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "schema"
    r = await client.post(f"{P}/certificate-types", headers=scjgj(tokens), json={**body, "code": "11441781MB0000007W003"})
    assert r.status_code == 403


async def test_issue_verify_and_revoke_a_certificate(client, tokens):
    holder = credit_code()
    cert = await issue_licence(client, tokens, holder)
    assert cert["identifier"].startswith(f"1.2.156.3005.2.{BUSINESS_LICENCE}.11441781MB0000001A.")
    assert cert["status"] == "valid" and cert["holder_kind"] == "001"

    r = await client.get(f"{P}/certificates/{cert['number']}/verification")
    v = r.json()
    assert v["status"] == "valid" and v["type_name"] == "营业执照" and v["holder_matches"] is None
    assert holder not in r.text and "fields" not in v
    # The holder is confirmed only with the verification code printed on the certificate.
    code = cert["verification_code"]
    r = await client.get(f"{P}/certificates/{cert['number']}/verification", params={"holder": holder, "code": code})
    assert r.json()["holder_matches"] is True and r.json()["code_valid"] is True
    r = await client.get(f"{P}/certificates/{cert['number']}/verification",
                         params={"holder": credit_code(), "code": code})
    assert r.json()["holder_matches"] is False

    # By holder and type (GB/T 36905), staff only, for a purpose that lands in the holder's log: a department
    # without an application of its own is refused (and the refusal logged); a supervisor gives a reason.
    wjj_staff = tokens.headers("wjj-v", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    q = {"holder": holder, "holder_kind": "001", "type_code": BUSINESS_LICENCE, "reason": "公共场所卫生许可审查"}
    r = await client.get(f"{P}/certificates/verification", params=q, headers=wjj_staff)
    assert r.status_code == 403 and r.json()["type"].endswith("purpose-not-established")
    sup = tokens.headers("sup-v", kind="staff", roles=["supervisor"], dept="LD-ZSJ")
    r = await client.get(f"{P}/certificates/verification", params=q, headers=sup)
    assert [v["number"] for v in r.json()] == [cert["number"]]
    assert (await client.get(f"{P}/certificates/verification", params=q)).status_code == 401
    r = await client.get(f"{P}/certificates/verification", params=q, headers=agent(tokens, holder))
    assert r.status_code == 403
    r = await client.get(f"{P}/certificates/verification", params={**q, "reason": ""}, headers=sup)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.reason"
    log = (await client.get(f"{P}/me/access-log", headers=agent(tokens, holder))).json()["items"]
    assert log[0]["purpose"] == "公共场所卫生许可审查" and log[0]["accessor_subject"] == "sup-v"
    assert log[1]["outcome"] == "refused" and log[1]["accessor_department"] == "LD-WJJ"

    # Only the issuing department (or admin) revokes; the public answer then says so.
    other = tokens.headers("wjj", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    r = await client.post(f"{P}/certificates/{cert['number']}/revocation", headers=other, json={"reason": "注销"})
    assert r.status_code == 403
    both = await asyncio.gather(*(client.post(f"{P}/certificates/{cert['number']}/revocation", headers=scjgj(tokens),
                                              json={"reason": "经营者申请注销"}) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [200, 409]
    r = next(r for r in both if r.status_code == 200)
    assert r.json()["status"] == "revoked" and r.json()["revocation_reason"] == "经营者申请注销"
    r = await client.post(f"{P}/certificates/{cert['number']}/revocation", headers=scjgj(tokens),
                          json={"reason": "again"})
    assert r.status_code == 409
    assert (await client.get(f"{P}/certificates/{cert['number']}/verification")).json()["status"] == "revoked"

    async def revoked_event_in_outbox() -> bool:
        async with client.app.state.db.transaction() as s:
            rows = await s.execute(text("SELECT type FROM outbox WHERE type LIKE 'yimen.datashare.certificate.%'"))
            return {"yimen.datashare.certificate.issued", "yimen.datashare.certificate.revoked"} <= set(rows.scalars())

    await eventually(revoked_event_in_outbox)


async def test_issued_event_reaches_the_bus(client, tokens):
    holder = credit_code()
    received: list[dict[str, Any]] = []
    bus = client.app.state.bus

    async def on_message(msg: Any) -> None:
        received.append(json.loads(msg.data))

    sub = await bus.nc.subscribe(bus.names.subject("yimen.datashare.certificate.issued"), cb=on_message)
    try:
        cert = await issue_licence(client, tokens, holder)
        await eventually(lambda: any(e["data"]["certificate_number"] == cert["number"] for e in received))
    finally:
        await sub.unsubscribe()
    data = next(e["data"] for e in received if e["data"]["certificate_number"] == cert["number"])
    assert data["holder_id"] == holder and data["type_name"] == "营业执照" and data["issuer_department"] == "LD-SCJGJ"


async def test_issue_refuses_bad_input_precisely(client, tokens):
    base = {"type_code": BUSINESS_LICENCE, "holder_id": credit_code(), "holder_kind": "001",
            "fields": {"name": "店"}}
    cc = credit_code()
    feb30 = "44538119900230123"
    cases = [
        ({"holder_id": cc[:-1] + ("0" if cc[-1] != "0" else "1")}, "body.holder_id", "check_digit"),
        ({"holder_id": "1144178IMB0000001A"}, "body.holder_id", "format"),
        ({"holder_kind": "111", "holder_id": feb30 + ric.calc_check_digit(feb30 + "0")}, "body.holder_id", "birth_date"),
        ({"holder_kind": "999"}, "body.holder_kind", "enum"),
        ({"holder_kind": "111", "holder_id": "445381199002301234"}, "body.holder_id", "check_digit"),
        ({"fields": {}}, "body.fields.name", "required"),
        ({"fields": {"name": "店", "registered_capital": "lots"}}, "body.fields.registered_capital", "type"),
        ({"fields": {"name": "店", "colour": "red"}}, "body.fields.colour", "unknown_field"),
        ({"type_code": "11441781MB0000001A999"}, "body.type_code", "unknown_type"),
    ]
    for change, field, rule in cases:
        r = await client.post(f"{P}/certificates", headers=scjgj(tokens), json={**base, **change})
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert {"field": field, "rule": rule} in [{"field": e["field"], "rule": e["rule"]} for e in r.json()["errors"]]
    r = await client.post(f"{P}/certificates", json=base)
    assert r.status_code == 401
    wjj = tokens.headers("wjj", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    assert (await client.post(f"{P}/certificates", headers=wjj, json=base)).status_code == 403
    assert (await client.get(f"{P}/certificates/NOPE/verification")).status_code == 404


async def test_idempotent_issue_returns_the_same_certificate(client, tokens):
    body = {"type_code": BUSINESS_LICENCE, "holder_id": credit_code(), "holder_kind": "organisation",
            "fields": {"name": "店"}}
    h = {**scjgj(tokens), "Idempotency-Key": "issue-once-1"}
    a = await client.post(f"{P}/certificates", headers=h, json=body)
    b = await client.post(f"{P}/certificates", headers=h, json=body)
    assert a.status_code == b.status_code == 201 and a.json()["number"] == b.json()["number"]


async def test_signed_copy_verifies_and_altered_or_forged_copies_fail(client, tokens):
    cert = await issue_licence(client, tokens, credit_code())
    doc = cert["document"]
    ok = (await client.post(f"{P}/certificates/verify-document", json=doc)).json()
    assert ok["valid"] is True and ok["signature_valid"] is True

    altered = {**doc, "content": {**doc["content"], "fields": {**doc["content"]["fields"], "registered_capital": 9e9}}}
    r = (await client.post(f"{P}/certificates/verify-document", json=altered)).json()
    assert r["valid"] is False and r["signature_valid"] is False

    other = await issue_licence(client, tokens, credit_code())
    forged = {**doc, "signature": other["document"]["signature"]}
    assert (await client.post(f"{P}/certificates/verify-document", json=forged)).json()["valid"] is False
    garbage = {**doc, "signature": "not-base64-!!"}
    assert (await client.post(f"{P}/certificates/verify-document", json=garbage)).json()["valid"] is False

    keys = (await client.get(f"{P}/certificates/verification-key")).json()["keys"]
    assert keys[0]["crv"] == "Ed25519" and doc["key_id"] in {k["kid"] for k in keys}


async def test_holder_lists_own_certificates_and_reads_one(client, tokens):
    org = credit_code()
    cert = await issue_licence(client, tokens, org)
    mine = await client.get(f"{P}/me/certificates", headers=agent(tokens, org))
    assert [c["number"] for c in mine.json()["items"]] == [cert["number"]]
    stranger = agent(tokens, credit_code())
    assert (await client.get(f"{P}/me/certificates", headers=stranger)).json()["items"] == []
    assert (await client.get(f"{P}/certificates/{cert['number']}", headers=stranger)).status_code == 403
    assert (await client.get(f"{P}/certificates/{cert['number']}", headers=agent(tokens, org))).status_code == 200


# --- automatic issue on an approved decision --------------------------------------------------------------------

def decided(application_id: str, holder: str, outcome: str = "approved") -> dict[str, Any]:
    return {
        "application_id": application_id, "receipt_number": f"R-{application_id}", "item_code": "ITEM-FOOD",
        "item_version": 1, "outcome": outcome, "reasons": [], "legal_basis": None,
        "decided_at": "2026-11-25T08:00:00+00:00", "department": "LD-SCJGJ",
        "applicant": {"kind": "organisation", "id": holder, "holder_id": holder, "name": "好味餐饮店", "agent_id": None},
        "result": {"type": "certificate", "certificate_type": FOOD_PERMIT, "name": "食品经营许可证"},
    }


async def accept(client, app_id: str, org: str, form: dict[str, Any]) -> None:
    """Publish the application's acceptance and wait until it is archived (in life a decision comes days after)."""
    await publish(client, "yimen.intake.application.accepted", app_id, {
        "application_id": app_id, "receipt_number": f"R-{app_id}", "item_code": "ITEM-FOOD", "item_version": 1,
        "item_name": "食品经营许可", "department": "LD-SCJGJ",
        "applicant": {"kind": "organisation", "id": org, "holder_id": org, "name": "好味餐饮店", "agent_id": None},
        "channel": "online", "service_point": None, "online": True, "accepted_at": "2026-11-20T02:00:00+00:00",
        "accepted_by": "clerk", "form": form, "materials": [], "commitments": [], "case_kind": "promised",
        "promised_limit": {"value": 5, "unit": "working_days"}, "statutory_limit": {"value": 20, "unit": "working_days"},
    })

    async def archived() -> Any:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(text("SELECT 1 FROM archived_application WHERE application_id = :a"),
                                    {"a": app_id})).scalar()

    await eventually(archived)


async def serials_taken(client) -> int:
    async with client.app.state.db.transaction() as s:
        return (await s.execute(text("SELECT last_serial FROM certificate_type WHERE code = :c"),
                                {"c": FOOD_PERMIT})).scalar_one()


async def test_approved_decision_issues_one_certificate_even_if_published_twice(client, tokens):
    org = credit_code()
    app_id = f"auto-{org}"
    await accept(client, app_id, org, {"address": "罗城街道兴华路1号", "main_business": "热食类食品制售", "age": 3})
    before = await serials_taken(client)
    event_id = f"evt-{app_id}"
    await publish(client, "yimen.workflow.application.decided", app_id, decided(app_id, org), event_id=event_id)
    # The same event again, and a different event about the same decision: still one certificate.
    await publish(client, "yimen.workflow.application.decided", app_id, decided(app_id, org), event_id=event_id)
    await publish(client, "yimen.workflow.application.decided", app_id, decided(app_id, org))

    async def certificates() -> list[Certificate]:
        async with client.app.state.db.transaction() as s:
            return list((await s.execute(select(Certificate).where(Certificate.application_id == app_id))).scalars())

    await eventually(certificates)
    # All three copies taken and acknowledged (two dropped): the count below is final, not a guess after a pause.
    await eventually(lambda: consumers_settled(client.app.state.bus, "datashare-decided"))
    certs = await certificates()
    assert len(certs) == 1
    c = certs[0]
    assert c.type_code == FOOD_PERMIT and c.holder_id == org and c.holder_kind == "001"
    assert c.fields == {"address": "罗城街道兴华路1号", "main_business": "热食类食品制售", "name": "好味餐饮店"}
    assert c.valid_until is not None and c.valid_until.year == 2031
    # The second decision found the certificate and gave its serial back: the type's count has no gap.
    assert await serials_taken(client) == before + 1

    archive = (await client.get(f"{P}/me/archive", headers=agent(tokens, org))).json()["items"]
    assert archive[0]["outcome"] == "approved" and archive[0]["certificate_number"] == c.number
    # The signature covers the number the serial gave, as a certificate issued by hand.
    mine = (await client.get(f"{P}/me/certificates", headers=agent(tokens, org))).json()["items"]
    [doc] = [m["document"] for m in mine if m["number"] == c.number]
    assert doc["content"]["number"] == c.number and doc["content"]["identifier"] == c.identifier
    ok = (await client.post(f"{P}/certificates/verify-document", json=doc)).json()
    assert ok["valid"] is True and ok["signature_valid"] is True


async def test_approval_whose_certificate_lacks_data_archives_the_decision_and_takes_no_serial(client):
    org = credit_code()
    app_id = f"thin-{org}"
    await accept(client, app_id, org, {"main_business": "热食类食品制售"})
    before = await serials_taken(client)
    # Nobody names the holder (no name in the token, the form, a registry or an earlier certificate): the permit
    # needs a name.
    nameless = decided(app_id, org)
    nameless["applicant"] = {**nameless["applicant"], "name": None}
    await publish(client, "yimen.workflow.application.decided", app_id, nameless)

    async def archived() -> Any:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(text("SELECT outcome, certificate_number, receipt_number FROM archived_application "
                                         "WHERE application_id = :a AND outcome IS NOT NULL"), {"a": app_id})).first()

    assert tuple(await eventually(archived)) == ("approved", None, f"R-{app_id}")
    async with client.app.state.db.transaction() as s:
        n = (await s.execute(text("SELECT count(*) FROM certificate WHERE application_id = :a"), {"a": app_id})).scalar()
    assert n == 0
    assert await serials_taken(client) == before


async def test_rejected_decision_issues_nothing(client):
    org = credit_code()
    app_id = f"rej-{org}"
    await publish(client, "yimen.workflow.application.decided", app_id, decided(app_id, org, "rejected"))

    async def archived() -> Any:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(text("SELECT outcome FROM archived_application WHERE application_id = :a"),
                                    {"a": app_id})).scalar()

    assert await eventually(archived) == "rejected"
    async with client.app.state.db.transaction() as s:
        n = (await s.execute(text("SELECT count(*) FROM certificate WHERE application_id = :a"), {"a": app_id})).scalar()
    assert n == 0


# --- purpose-bound sharing -------------------------------------------------------------------------------------

async def test_holder_fetches_only_the_fields_the_material_needs(client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    org = credit_code()
    await issue_licence(client, tokens, org, address="罗城街道")
    app_id = intake.add(item["code"], holder_id=org)
    headers = agent(tokens, org)
    body = {"application_id": app_id, "item_code": item["code"], "item_version": 1, "material_code": "M-LICENCE",
            "holder_id": org, "holder_kind": "organisation"}
    r = await client.post(f"{P}/requests", headers=headers, json=body)
    assert r.status_code == 200, r.text
    ans = r.json()
    assert ans["status"] == "found" and ans["source"] == "certificate"
    assert set(ans["certificate"]) == {"number", "type_code", "valid_until", "name", "legal_representative"}
    assert intake.seen_auth[-1] == headers["Authorization"]

    # Nothing held for this holder: an explicit answer, not an error.
    other = credit_code()
    app2 = intake.add(item["code"], holder_id=other)
    r = await client.post(f"{P}/requests", headers=agent(tokens, other),
                          json={**body, "application_id": app2, "holder_id": other})
    assert r.status_code == 200 and r.json()["status"] == "no_match"

    # The data subject sees who read their data and why.
    log = (await client.get(f"{P}/me/access-log", headers=headers)).json()["items"]
    entry = next(e for e in log if e["action"] == "purpose_request")
    assert entry["application_id"] == app_id and entry["material_code"] == "M-LICENCE"
    assert entry["fields"] == ["name", "legal_representative"] and entry["holder"] == org


async def test_registry_material_answers_the_record_fields(client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    rep = id_number("19850505")
    gaj = tokens.headers("gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    csv_body = f"id_number,name,gender,address,phone\n{rep},陈明,男,罗城街道,13812345678\n"
    r = await client.post(f"{P}/registries/population/imports", headers={**gaj, "Content-Type": "text/csv"},
                          content=csv_body.encode())
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    org = credit_code()
    app_id = intake.add(item["code"], holder_id=org)
    r = await client.post(f"{P}/requests", headers=agent(tokens, org, hid=rep), json={
        "application_id": app_id, "item_code": item["code"], "item_version": 1, "material_code": "M-REP-ID",
        "holder_id": rep, "holder_kind": "person"})
    assert r.status_code == 200, r.text
    assert r.json()["record"] == {"name": "陈明", "gender": "男"}


async def test_requests_without_a_live_purpose_or_right_are_refused(client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    org = credit_code()
    await issue_licence(client, tokens, org)
    headers = agent(tokens, org)
    body = {"item_code": item["code"], "item_version": 1, "material_code": "M-LICENCE", "holder_id": org,
            "holder_kind": "organisation"}

    r = await client.post(f"{P}/requests", headers=headers, json={**body, "application_id": "no-such-app"})
    assert r.status_code == 403 and r.json()["type"].endswith("purpose-not-established")
    closed = intake.add(item["code"], status="withdrawn", holder_id=org)
    r = await client.post(f"{P}/requests", headers=headers, json={**body, "application_id": closed})
    assert r.status_code == 403
    live = intake.add(item["code"], holder_id=org)
    # Someone else's holder id.
    r = await client.post(f"{P}/requests", headers=agent(tokens, credit_code()), json={**body, "application_id": live})
    assert r.status_code == 403 and r.json()["type"].endswith("not-holder")
    # A material the applicant supplies is no shared source.
    r = await client.post(f"{P}/requests", headers=headers,
                          json={**body, "application_id": live, "material_code": "M-PLAN"})
    assert r.status_code == 403
    r = await client.post(f"{P}/requests", headers=headers,
                          json={**body, "application_id": live, "material_code": "M-NONE"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_material"
    r = await client.post(f"{P}/requests", headers=headers, json={**body, "application_id": live, "item_version": 9})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_item"
    r = await client.post(f"{P}/requests", headers=headers, json={**body, "application_id": live, "holder_kind": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "enum"


async def test_a_department_cannot_fetch_a_type_its_items_do_not_name(client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    org = credit_code()
    await issue_licence(client, tokens, org)
    app_id = intake.add(item["code"], holder_id=org)
    body = {"application_id": app_id, "item_code": item["code"], "item_version": 1, "material_code": "M-LICENCE",
            "holder_id": org, "holder_kind": "organisation"}
    xfj = tokens.headers("xfj", kind="staff", roles=["department_reviewer"], dept="LD-XFJ")
    await assign_task(client, app_id, "LD-XFJ")
    r = await client.post(f"{P}/requests", headers=xfj, json={**body, "certificate_type": "11441781MB0000006R001"})
    assert r.status_code == 403 and r.json()["type"].endswith("source-not-named")
    r = await client.post(f"{P}/requests", headers=xfj, json={**body, "material_code": "M-LICENCE",
                                                              "registry": "legal-persons"})
    assert r.status_code == 403
    # A department outside the item's process gets nothing at all.
    mzj = tokens.headers("mzj", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    assert (await client.post(f"{P}/requests", headers=mzj, json=body)).status_code == 403
    # A department of the parallel stage may fetch what the material names, and the read is audited.
    r = await client.post(f"{P}/requests", headers=xfj, json={**body, "certificate_type": BUSINESS_LICENCE})
    assert r.status_code == 200 and r.json()["status"] == "found"
    supervisor = tokens.headers("sup", kind="staff", roles=["supervisor"], dept="LD-ZSJ")
    audit = (await client.get(f"{P}/access-log", params={"department": "LD-XFJ"}, headers=supervisor)).json()
    assert audit["items"][0]["application_id"] == app_id and audit["items"][0]["holder"] != org
    assert (await client.get(f"{P}/access-log", headers=xfj)).status_code == 403


# --- registries ------------------------------------------------------------------------------------------------

async def test_malformed_import_row_is_reported_and_nothing_imported(client, tokens):
    good, other = id_number(), id_number()
    # A check character that is surely wrong (whichever the sequence of test numbers has reached).
    wrong = next(c for c in "X10" if c != ric.calc_check_digit(other))
    gaj = {**tokens.headers("gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ"),
           "Content-Type": "text/csv"}
    rows = [f"{good},张三,男", f"{other[:-1]}{wrong},李四,女", "445381199013401234,王五,男",
            f"{id_number()},,女"]
    csv_body = "id_number,name,gender\n" + "\n".join(rows) + "\n"
    r = await client.post(f"{P}/registries/population/imports", headers=gaj, content=csv_body.encode())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    report = r.json()
    assert report["imported"] == 0
    assert [(x["line"], x["field"], x["rule"]) for x in report["rejected"]] == [
        (3, "id_number", "check_digit"), (4, "id_number", "check_digit"), (5, "name", "required")]
    admin, why = admin_by_reason(tokens, "admin-import-1")
    lookup = await client.get(f"{P}/registries/population/{good}", headers=admin, params=why)
    assert lookup.status_code == 404  # nothing half-imported

    r = await client.post(f"{P}/registries/population/imports", params={"partial": "true"}, headers=gaj,
                          content=csv_body.encode())
    assert r.status_code == 200 and r.json()["imported"] == 1 and len(r.json()["rejected"]) == 3
    assert (await client.get(f"{P}/registries/population/{good}", headers=admin, params=why)).json()["name"] == "张三"


async def test_legal_person_json_import_upserts_and_checks_rights(client, tokens):
    code = credit_code()
    scj = {**scjgj(tokens), "Content-Type": "application/json"}
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scj,
                          json=[{"credit_code": code, "name": "旧名", "established_on": "2020-01-02"}])
    assert r.status_code == 200, r.text
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scj,
                          json={"records": [{"credit_code": code, "name": "新名"}]})
    assert r.status_code == 200
    admin, why = admin_by_reason(tokens, "admin-import-2")
    assert (await client.get(f"{P}/registries/legal-persons/{code}", headers=admin, params=why)).json()["name"] == "新名"
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scj,
                          json=[{"credit_code": code[:-1] + "I", "name": "x"}, {"credit_code": credit_code(),
                                                                             "name": "y", "established_on": "2020-13-01"}])
    assert r.status_code == 422
    assert [(x["line"], x["rule"]) for x in r.json()["rejected"]] == [(1, "format"), (2, "date")]
    gaj = {**tokens.headers("gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ"),
           "Content-Type": "application/json"}
    assert (await client.post(f"{P}/registries/legal-persons/imports", headers=gaj, json=[])).status_code == 403
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scj, content=b"{not json")
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "format"
    r = await client.post(f"{P}/registries/legal-persons/imports", headers={**scj, "Content-Type": "text/plain"},
                          content=b"x")
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = await client.get(f"{P}/registries/legal-persons/12345", headers=admin, params=why)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.credit_code"
    # Large files come as a multipart upload.
    up = credit_code()
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scjgj(tokens),
                          files={"file": ("firms.csv", f"credit_code,name\n{up},上传公司\n".encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    r = await client.post(f"{P}/registries/legal-persons/imports", headers=scjgj(tokens), data={"x": "1"},
                          files={"other": ("a.csv", b"", "text/csv")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.file"
    citizen = tokens.headers("c1", hid=id_number())
    assert (await client.get(f"{P}/registries/legal-persons/{code}", headers=citizen)).status_code == 403


# --- access log ------------------------------------------------------------------------------------------------

async def test_hash_chain_verification_detects_an_edited_row(client, tokens, settings):
    person = id_number()
    gaj = tokens.headers("gaj-2", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    await client.post(f"{P}/registries/population/imports", headers={**gaj, "Content-Type": "application/json"},
                      json=[{"id_number": person, "name": "赵六"}])
    for _ in range(3):
        await client.get(f"{P}/registries/population/{person}", headers=gaj)
    supervisor = tokens.headers("sup", kind="staff", roles=["supervisor"])
    ok = (await client.get(f"{P}/access-log/verification", headers=supervisor)).json()
    assert ok["intact"] is True and ok["rows_checked"] >= 3
    assert (await client.get(f"{P}/access-log/verification", headers=gaj)).status_code == 403

    mine = (await client.get(f"{P}/me/access-log", headers=tokens.headers("p", hid=person))).json()["items"]
    assert len(mine) == 3 and mine[0]["accessor_department"] == "LD-GAJ" and mine[0]["action"] == "registry_lookup"
    target = mine[1]["seq"]
    async with client.app.state.db.transaction() as s:
        await s.execute(text("UPDATE access_log_entry SET accessor_subject = 'nobody' WHERE seq = :s"), {"s": target})
    broken = (await client.get(f"{P}/access-log/verification", headers=supervisor)).json()
    assert broken["intact"] is False and broken["first_broken_seq"] == target

    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.datashare.cli", "verify-log", "--database-url",
                         settings.resolved_database_url()], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and f"BROKEN at seq {target}" in proc.stderr
    async with client.app.state.db.transaction() as s:  # repair for the other tests
        await s.execute(text("UPDATE access_log_entry SET accessor_subject = 'gaj-2' WHERE seq = :s"), {"s": target})


# --- archive and open data -------------------------------------------------------------------------------------

async def test_archive_answers_only_the_applicants_own_history(client, tokens):
    person = id_number()
    app_id = f"arch-{person}"
    await publish(client, "yimen.intake.application.accepted", app_id, {
        "application_id": app_id, "item_code": "ITEM-ARCH", "item_name": "测试事项", "department": "LD-MZJ",
        "applicant": {"kind": "person", "id": "acc-1", "holder_id": person, "name": "钱七"},
        "channel": "window", "online": False, "accepted_at": "2026-10-10T02:00:00+00:00", "form": {"x": 1}})

    async def found() -> Any:
        r = await client.get(f"{P}/archive", params={"holder_id": person}, headers=tokens.headers("p", hid=person))
        return r.json()["items"]

    items = await eventually(found)
    assert items[0]["application_id"] == app_id and items[0]["form"] == {"x": 1}
    r = await client.get(f"{P}/archive", params={"holder_id": person}, headers=tokens.headers("q", hid=id_number()))
    assert r.status_code == 403
    # A window clerk may look an applicant up for prefill; the applicant then sees that read.
    clerk = tokens.headers("clerk-1", kind="staff", roles=["window_clerk"], dept="LD-ZSJ", point="LD-CENTRE")
    r = await client.get(f"{P}/archive", params={"holder_id": person}, headers=clerk)
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    log = (await client.get(f"{P}/me/access-log", headers=tokens.headers("p", hid=person))).json()["items"]
    assert log[0]["action"] == "archive_read" and log[0]["accessor_subject"] == "clerk-1"
    assert (await client.get(f"{P}/archive", headers=clerk)).status_code == 422


async def test_open_data_is_a_dcat_catalogue_with_nothing_personal(client, tokens, intake):
    cat = await client.get(f"{P}/open/datasets")
    assert cat.headers["content-type"].startswith("application/ld+json")
    body = cat.json()
    assert body["@type"] == "dcat:Catalog"
    ids = [d["dct:identifier"] for d in body["dcat:dataset"]]
    assert "applications-per-item-month" in ids
    # Make sure there is personal data in the service to leak.
    await test_approved_decision_issues_one_certificate_even_if_published_twice(client, tokens)
    await test_archive_answers_only_the_applicants_own_history(client, tokens)
    async with client.app.state.db.transaction() as s:
        holders = set((await s.execute(text("SELECT holder_id FROM archived_application"))).scalars())
        names = set((await s.execute(text("SELECT holder_name FROM certificate"))).scalars())
    per_month = (await client.get(f"{P}/open/datasets/applications-per-item-month.json")).json()["rows"]
    assert any(r["item_code"] == "ITEM-ARCH" and r["month"] == "2026-10" and r["accepted"] >= 1 for r in per_month)
    on_time = (await client.get(f"{P}/open/datasets/decisions-on-time.json")).json()["rows"]
    assert any(r["item_code"] == "ITEM-FOOD" and r["on_time"] >= 1 for r in on_time)
    for d in ids:
        for ext in ("csv", "json"):
            r = await client.get(f"{P}/open/datasets/{d}.{ext}")
            assert r.status_code == 200
            for secret in (holders | names) - {None}:
                assert secret not in r.text
            assert "好味餐饮店" not in r.text and "钱七" not in r.text
            assert not re.search(r"\d{17}[\dX]|1[3-9]\d{9}", r.text)
    assert (await client.get(f"{P}/open/datasets/nope.csv")).status_code == 404
    assert (await client.get(f"{P}/open/datasets/published-items.xml")).status_code == 404


async def test_a_certificate_past_its_validity_verifies_as_expired_and_is_not_shared(client, tokens):
    holder = credit_code()
    r = await client.post(f"{P}/certificates", headers=scjgj(tokens), json={
        "type_code": FOOD_PERMIT, "holder_id": holder, "holder_kind": "001", "fields": {"name": "旧店"},
        "issued_on": "2019-03-01"})
    assert r.status_code == 201 and r.json()["valid_until"] == "2024-02-29"
    number = r.json()["number"]
    v = (await client.get(f"{P}/certificates/{number}/verification")).json()
    assert v["status"] == "expired"
    doc = (await client.post(f"{P}/certificates/verify-document", json=r.json()["document"])).json()
    assert doc["signature_valid"] is True and doc["valid"] is False and doc["status"] == "expired"


async def test_concurrent_reads_keep_one_unbroken_chain(client, tokens):
    person = id_number()
    gaj = tokens.headers("gaj-3", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    await client.post(f"{P}/registries/population/imports", headers={**gaj, "Content-Type": "application/json"},
                      json=[{"id_number": person, "name": "孙八"}])
    admin, why = admin_by_reason(tokens, "admin-concurrent")
    results = await asyncio.gather(*(client.get(f"{P}/registries/population/{person}", headers=admin, params=why)
                                     for _ in range(12)))
    assert {r.status_code for r in results} == {200}
    supervisor = tokens.headers("sup", kind="staff", roles=["supervisor"])
    report = (await client.get(f"{P}/access-log/verification", headers=supervisor)).json()
    assert report["intact"] is True, report
    mine = (await client.get(f"{P}/me/access-log", headers=tokens.headers("p", hid=person))).json()["items"]
    assert len(mine) == 12 and len({e["seq"] for e in mine}) == 12


async def test_an_append_to_the_access_log_locks_the_head_in_its_last_statement(client, tokens):
    """Issue 14: every read of personal data appends to one chain, whose head row is locked from the append to the
    commit. On PostgreSQL the append is one statement (the database numbers and hashes the row, as `chain_hash`
    does), so concurrent readers queue for a commit, not for three statements and their round trips; the chain
    verifies as before."""
    person = id_number()
    gaj = tokens.headers("gaj-4", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    await client.post(f"{P}/registries/population/imports", headers={**gaj, "Content-Type": "application/json"},
                      json=[{"id_number": person, "name": "周九"}])
    admin, why = admin_by_reason(tokens, "admin-append")
    with recording_statements(client.app.state.db.engine) as log:
        r = await client.get(f"{P}/registries/population/{person}", headers=admin, params=why)
    assert r.status_code == 200, r.text
    appending = [s for s in log.statements if "ACCESS_LOG_HEAD" in s or "INTO ACCESS_LOG_ENTRY" in s]
    postgres = client.app.state.db.engine.dialect.name == "postgresql"
    assert len(appending) == (1 if postgres else 3), appending
    supervisor = tokens.headers("sup", kind="staff", roles=["supervisor"])
    report = (await client.get(f"{P}/access-log/verification", headers=supervisor)).json()
    assert report["intact"] is True, report


async def test_a_restart_keeps_the_signing_key_and_does_not_reseed(settings_for, tokens):
    settings = settings_for("datashare")
    async with running_app(create_app, settings, tokens=tokens) as first:
        cert = await issue_licence(first, tokens, credit_code())
        types = (await first.get(f"{P}/certificate-types")).json()
    async with running_app(create_app, settings, tokens=tokens) as second:
        assert (await second.get(f"{P}/certificate-types")).json() == types
        check = (await second.post(f"{P}/certificates/verify-document", json=cert["document"])).json()
        assert check["valid"] is True
        assert len((await second.get(f"{P}/certificates/verification-key")).json()["keys"]) == 1


async def test_a_departments_credit_code_comes_from_catalog_events(client, tokens):
    code = credit_code()
    dept = f"LD-T{code[-4:]}"
    await publish(client, "yimen.catalog.department.upserted", dept, {"code": dept, "name": "测试局", "credit_code": code})
    admin = tokens.headers("admin-2", kind="staff", roles=["admin"])
    body = {"name": "测试证", "issuer_department": dept, "field_schema": {"type": "object", "properties": {}}}

    async def created() -> Any:
        r = await client.post(f"{P}/certificate-types", headers=admin, json={**body, "code": f"{code}001"})
        return r.json() if r.status_code == 201 else None

    # Before the event is applied the department is unknown (422, the credit code is asked for).
    t = await eventually(created)
    assert t["issuer_credit_code"] == code
    r = await client.post(f"{P}/certificate-types", headers=admin,
                          json={**body, "code": f"{code}002", "issuer_department": "LD-NOWHERE"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.issuer_credit_code"


async def test_a_withdrawn_item_leaves_the_published_items_dataset(client):
    item = food_item()
    await publish_item(client, item)

    async def listed() -> bool:
        rows = (await client.get(f"{P}/open/datasets/published-items.json")).json()["rows"]
        return any(r["item_code"] == item["code"] for r in rows)

    assert await eventually(listed)
    await publish(client, "yimen.catalog.item.withdrawn", item["code"],
                  {"code": item["code"], "version": 1, "withdrawn_at": "2026-11-26T02:00:00+00:00"})
    await eventually(lambda: _not(listed))
    csv_text = (await client.get(f"{P}/open/datasets/published-items.csv")).text
    assert csv_text.splitlines()[0].startswith("item_code,version,name,department")


async def _not(check: Any) -> bool:
    return not await check()


async def test_a_department_reads_a_certificate_for_its_own_task_only_and_only_the_materials_fields(
        client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    org = credit_code()
    cert = await issue_licence(client, tokens, org, address="罗城街道兴华路1号")
    app_id = intake.add(item["code"], holder_id=org)
    wjj = tokens.headers("wjj-cert", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    url = f"{P}/certificates/{cert['number']}"
    r = await client.get(url, headers=wjj, params={"application_id": app_id})
    assert r.status_code == 403 and r.json()["type"].endswith("no-open-task")
    await assign_task(client, app_id, "LD-WJJ", item["code"])
    r = await client.get(url, headers=wjj, params={"application_id": app_id})
    assert r.status_code == 200, r.text
    read = r.json()
    assert read["fields"] == {"name": "好味餐饮店", "legal_representative": "陈明"}  # M-LICENCE's fields, no address
    assert read["document"] is None and read["verification_code"] is None
    # Verification by holder for the same purpose; another holder under this case is refused.
    q = {"holder": org, "holder_kind": "001", "type_code": BUSINESS_LICENCE, "reason": "卫生许可并联审查",
         "application_id": app_id}
    r = await client.get(f"{P}/certificates/verification", params=q, headers=wjj)
    assert r.status_code == 200 and [v["number"] for v in r.json()] == [cert["number"]]
    r = await client.get(f"{P}/certificates/verification", params={**q, "holder": credit_code()}, headers=wjj)
    assert r.status_code == 403 and r.json()["type"].endswith("holder-not-in-application")
    # The issuing department reads its own record, masked; the holder reads it whole with its code.
    own = (await client.get(url, headers=scjgj(tokens))).json()
    assert own["fields"]["address"] == "罗城街道兴华路1号" and own["document"] is None
    mine = (await client.get(url, headers=agent(tokens, org))).json()
    assert mine["verification_code"] == cert["verification_code"] and mine["document"] is not None
    log = (await client.get(f"{P}/me/access-log", headers=agent(tokens, org))).json()["items"]
    reads = [e for e in log if e["action"] == "certificate_read"]
    assert [e["outcome"] for e in reads] == ["found", "found", "refused"]
    assert reads[1]["application_id"] == app_id and reads[1]["purpose"] == "department"
    assert reads[0]["purpose"] == "issuer"

# --- #15: who the data is about, and certificates that carry their data ------------------------------------------


async def _import(client, tokens, registry: str, dept: str, rows: list[dict[str, Any]]) -> None:
    staff = tokens.headers(f"reg-{dept}", kind="staff", roles=["department_reviewer"], dept=dept)
    r = await client.post(f"{P}/registries/{registry}/imports", headers=staff, json=rows)
    assert r.status_code == 200 and r.json()["imported"] == len(rows), r.text


async def test_an_organisations_legal_representative_identity_is_fetched_and_logged_for_them(client, tokens, intake):
    item = food_item()
    await publish_item(client, item)
    org, rep = credit_code(), id_number("19800808")
    await _import(client, tokens, "population", "LD-GAJ", [{"id_number": rep, "name": "黄法人", "gender": "女"}])
    await _import(client, tokens, "legal-persons", "LD-SCJGJ", [
        {"credit_code": org, "name": "罗城小厨有限公司", "legal_representative": "黄法人", "legal_representative_id": rep}])
    app_id = intake.add(item["code"], holder_id=org)
    body = {"application_id": app_id, "item_code": item["code"], "item_version": 1, "material_code": "M-REP-ID",
            "holder_id": org, "holder_kind": "organisation"}
    r = await client.post(f"{P}/requests", headers=agent(tokens, org), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "found" and r.json()["record"] == {"name": "黄法人", "gender": "女"}
    # The person whose record was read sees it, with the application and its purpose in words.
    mine = (await client.get(f"{P}/me/access-log", headers=tokens.headers("rep", kind="person", hid=rep))).json()
    entry = next(e for e in mine["items"] if e["application_id"] == app_id)
    assert entry["material_code"] == "M-REP-ID" and "法定代表人身份证明" in entry["purpose"]
    assert "食品经营许可" in entry["purpose"]
    # An organisation the registry does not know: nothing found, not someone else's record.
    stranger = credit_code()
    app2 = intake.add(item["code"], holder_id=stranger)
    r = await client.post(f"{P}/requests", headers=agent(tokens, stranger),
                          json={**body, "application_id": app2, "holder_id": stranger})
    assert r.status_code == 200 and r.json()["status"] == "no_match"


async def test_an_issued_certificate_carries_the_holders_name_and_the_fields_its_item_maps(client, tokens):
    item = food_item()
    item["form_fields"] = [{"name": "business_name", "label": "经营者名称", "type": "text"},
                           {"name": "business_address", "label": "经营场所", "type": "address"}]
    item["result"]["fields"] = {"name": "form.business_name", "address": "form.business_address",
                                "business_premises": "form.business_address", "operator": "applicant.name"}
    await publish_item(client, item)
    org = credit_code()
    await _import(client, tokens, "legal-persons", "LD-SCJGJ", [{"credit_code": org, "name": "罗城小厨有限公司"}])
    app_id = f"mapped-{org}"
    applicant = {"kind": "organisation", "id": org, "holder_id": org, "name": None, "agent_id": "p-agent"}
    await publish(client, "yimen.intake.application.accepted", app_id, {
        "application_id": app_id, "receipt_number": f"R-{app_id}", "item_code": item["code"], "item_version": 1,
        "item_name": "食品经营许可", "department": "LD-SCJGJ", "applicant": applicant, "channel": "online",
        "online": True, "accepted_at": "2026-11-20T02:00:00+00:00", "accepted_by": "system",
        "form": {"business_name": "罗城小厨", "business_address": "罗城街道兴华路1号"}, "materials": [],
    })

    async def archived() -> Any:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(text("SELECT 1 FROM archived_application WHERE application_id = :a"),
                                    {"a": app_id})).scalar()

    await eventually(archived)
    await publish(client, "yimen.workflow.application.decided", app_id,
                  {**decided(app_id, org), "item_code": item["code"], "applicant": applicant})

    async def certificate() -> Certificate | None:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(select(Certificate).where(Certificate.application_id == app_id))).scalar()

    cert = await eventually(certificate)
    assert cert.holder_name == "罗城小厨有限公司"
    assert cert.fields == {"name": "罗城小厨", "address": "罗城街道兴华路1号", "business_premises": "罗城街道兴华路1号",
                           "operator": "罗城小厨有限公司"}


async def test_a_decision_that_overtakes_its_acceptance_still_issues_the_certificate_with_its_data(client, tokens):
    """Acceptance and decision travel on different consumers: after a leader election or a restart the decision
    can be applied first. It waits for the acceptance instead of issuing an empty certificate or none at all."""
    item = food_item()
    item["form_fields"] = [{"name": "business_name", "label": "经营者名称", "type": "text"},
                           {"name": "business_address", "label": "经营场所", "type": "address"}]
    item["result"]["fields"] = {"name": "form.business_name", "address": "form.business_address",
                                "business_premises": "form.business_address", "operator": "applicant.name"}
    await publish_item(client, item)
    org = credit_code()
    await _import(client, tokens, "legal-persons", "LD-SCJGJ", [{"credit_code": org, "name": "罗城小厨有限公司"}])
    app_id = f"overtaken-{org}"
    applicant = {"kind": "organisation", "id": org, "holder_id": org, "name": None, "agent_id": "p-agent"}
    await publish(client, "yimen.workflow.application.decided", app_id,
                  {**decided(app_id, org), "item_code": item["code"], "applicant": applicant})

    async def certificate() -> Certificate | None:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(select(Certificate).where(Certificate.application_id == app_id))).scalar()

    async def decision_retried() -> Any:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(text("SELECT 1 FROM archived_application WHERE application_id = :a"),
                                    {"a": app_id})).scalar() is None and await certificate() is None
    assert await decision_retried()  # nothing archived half-way, nothing issued
    await publish(client, "yimen.intake.application.accepted", app_id, {
        "application_id": app_id, "receipt_number": f"R-{app_id}", "item_code": item["code"], "item_version": 1,
        "item_name": "食品经营许可", "department": "LD-SCJGJ", "applicant": applicant, "channel": "online",
        "online": True, "accepted_at": "2026-11-20T02:00:00+00:00", "accepted_by": "system",
        "form": {"business_name": "罗城小厨", "business_address": "罗城街道兴华路1号"}, "materials": [],
    })
    cert = await eventually(certificate, timeout=30)
    assert cert.fields["name"] == "罗城小厨" and cert.holder_name == "罗城小厨有限公司"


def test_a_gathered_batch_of_task_events_holds_several_cases():
    """Issue 14: the task consumer's batch is what arrives within its gathering window, not the worker's default of
    20 messages: a five-department case alone is 12 task events (six tasks assigned and decided)."""
    from services.datashare.events.handlers import CONSUMERS
    from services.datashare.store.tables import messaging
    from shared.bus import Bus
    from shared.messaging import InboxConsumer

    consumer = next(c for c in CONSUMERS if c.name == "datashare-tasks")
    worker = InboxConsumer(None, messaging, consumer, Bus("nats://127.0.0.1:1", prefix="unused")).worker()  # type: ignore[arg-type]
    assert worker.gather > 0
    assert worker.batch >= 10 * 12, "ten five-department cases' task events in one batch"


async def test_a_batch_of_task_events_is_applied_in_order_as_one_event_at_a_time_would(client):
    """A fetched batch's task rows are written in one statement: the outcome is the one the events give one by
    one (an assignment after its task's decision does not reopen it)."""
    from services.datashare.events.handlers import CONSUMERS
    from shared.messaging import InboxConsumer

    consumer = next(c for c in CONSUMERS if c.name == "datashare-tasks")
    app_id = f"batch-{credit_code()}"

    def task_event(kind: str, task: str, department: str, **extra: Any):
        return new_event(f"yimen.workflow.task.{kind}", source="/yimen/workflow", subject=task, data={
            "task_id": task, "application_id": app_id, "department": department, "item_code": "ITEM-FOOD", **extra})

    events = [
        task_event("assigned", f"{app_id}-1", "LD-SCJGJ"),
        task_event("assigned", f"{app_id}-2", "LD-WJJ"),
        task_event("decided", f"{app_id}-3", "LD-XFJ", outcome="approve"),  # overtook its assignment
        task_event("assigned", f"{app_id}-3", "LD-XFJ"),
        task_event("decided", f"{app_id}-2", "LD-WJJ", outcome="request_correction"),  # stays the department's
        task_event("assigned", f"{app_id}-4", "LD-STHJJ"),
        task_event("cancelled", f"{app_id}-4", "LD-STHJJ"),
        task_event("handler_assigned", f"{app_id}-1", "LD-SCJGJ"),  # not the consumer's: skipped
    ]
    inbox = InboxConsumer(client.app.state.db, client.app.state.messaging, consumer, client.app.state.bus)
    assert await inbox.apply_batch([e for e in events if consumer.wants(e.type)]) == 7
    async with client.app.state.db.transaction() as s:
        rows = (await s.execute(text("SELECT task_id, state, item_code FROM workflow_task WHERE application_id = :a "
                                     "ORDER BY task_id"), {"a": app_id})).all()
    assert [tuple(r) for r in rows] == [(f"{app_id}-1", "open", "ITEM-FOOD"), (f"{app_id}-2", "open", "ITEM-FOOD"),
                                        (f"{app_id}-3", "closed", None), (f"{app_id}-4", "closed", "ITEM-FOOD")]
    # The same batch again (a redelivery) changes nothing; a later decision closes the one still open.
    assert await inbox.apply_batch([e for e in events if consumer.wants(e.type)]) == 0
    assert await inbox.apply(task_event("decided", f"{app_id}-1", "LD-SCJGJ", outcome="approve"))
    async with client.app.state.db.transaction() as s:
        from services.datashare.store import tasks
        assert await tasks.open_departments(s, app_id) == {"LD-WJJ"}



async def test_every_cut_of_a_run_of_task_events_into_batches_leaves_what_one_at_a_time_leaves(client):
    """However the consumer's gathering cuts a run of task events into batches, and whatever is delivered again,
    the projection ends as when each event is applied alone."""
    from services.datashare.events.handlers import CONSUMERS
    from shared.messaging import InboxConsumer

    consumer = next(c for c in CONSUMERS if c.name == "datashare-tasks")
    inbox = InboxConsumer(client.app.state.db, client.app.state.messaging, consumer, client.app.state.bus)
    run = [  # (kind, task, department, outcome)
        ("assigned", "1", "LD-SCJGJ", None),
        ("decided", "2", "LD-XFJ", "approve"),  # overtakes its assignment
        ("assigned", "2", "LD-XFJ", None),
        ("decided", "1", "LD-SCJGJ", "request_correction"),  # stays the department's
        ("assigned", "4", "LD-STHJJ", None),
        ("reopened", "3", "LD-WJJ", None),  # before its assignment
        ("assigned", "3", "LD-WJJ", None),
        ("cancelled", "4", "LD-STHJJ", None),
    ]

    def events_of(app_id: str) -> list[Any]:
        return [new_event(f"yimen.workflow.task.{kind}", source="/yimen/workflow", subject=f"{app_id}-{task}", data={
            "task_id": f"{app_id}-{task}", "application_id": app_id, "department": department,
            "item_code": "ITEM-FOOD", **({"outcome": outcome} if outcome else {})}) for kind, task, department, outcome
            in run]

    async def projection(app_id: str) -> list[tuple[Any, ...]]:
        async with client.app.state.db.transaction() as s:
            rows = (await s.execute(text(
                "SELECT task_id, department, item_code, state FROM workflow_task WHERE application_id = :a "
                "ORDER BY task_id"), {"a": app_id})).all()
        return [(r.task_id.removeprefix(app_id), r.department, r.item_code, r.state) for r in rows]

    alone = f"alone-{credit_code()}"
    for event in events_of(alone):
        assert await inbox.apply(event)
    expected = await projection(alone)
    assert [(task, state) for task, _, _, state in expected] == [
        ("-1", "open"), ("-2", "closed"), ("-3", "open"), ("-4", "closed")]

    n = len(run)
    for cuts in range(2 ** (n - 1)):  # bit i set: a batch ends after event i
        app_id = f"cut{cuts}-{credit_code()}"
        events, start = events_of(app_id), 0
        for end in [i + 1 for i in range(n - 1) if cuts >> i & 1] + [n]:
            batch = events[start:end]
            applied = await inbox.apply_batch(batch) if len(batch) > 1 else int(await inbox.apply(batch[0]))
            assert applied == len(batch)
            assert await inbox.apply_batch(events[:end]) == 0  # a redelivery, with what came before
            start = end
        assert await projection(app_id) == expected, bin(cuts)


async def test_a_decision_closes_its_tasks_without_waiting_for_their_rows_and_for_good(client):
    """The decision closes its application's tasks through its archive row, not by writing their rows: it does
    not wait for a transaction holding them (the task consumer's batch: they waited on each other, and once
    deadlocked), and a task event applied after it (the two consumers are apart) opens none again."""
    from datetime import UTC, datetime

    from services.datashare.events.handlers import CONSUMERS
    from services.datashare.store import tasks
    from shared.messaging import InboxConsumer

    db = client.app.state.db
    org = credit_code()
    app_id = f"lock-{org}"
    now = datetime.now(UTC)
    first, second = f"{app_id}-1", f"{app_id}-2"
    for task_id, department in ((first, "LD-A"), (second, "LD-B")):
        async with db.transaction() as s:
            tasks.task_assigned(s, task_id=task_id, application_id=app_id, department=department, item_code=None,
                                at=now)
    async with db.transaction() as s:
        assert await tasks.open_departments(s, app_id) == {"LD-A", "LD-B"}
    messaging, bus = client.app.state.messaging, client.app.state.bus
    deciding = InboxConsumer(db, messaging, next(c for c in CONSUMERS if c.name == "datashare-decided"), bus)
    task_events = InboxConsumer(db, messaging, next(c for c in CONSUMERS if c.name == "datashare-tasks"), bus)
    decision = new_event("yimen.workflow.application.decided", source="/yimen/workflow", subject=app_id,
                         data=decided(app_id, org, "rejected"))
    if db.engine.dialect.name == "postgresql":  # (SQLite has one writer: any transaction waits for another)
        async with db.transaction() as blocker:
            await blocker.execute(text("UPDATE workflow_task SET updated_at = updated_at WHERE task_id = :t"),
                                  {"t": first})
            assert await asyncio.wait_for(deciding.apply(decision), 5)
    else:
        assert await deciding.apply(decision)
    late = new_event("yimen.workflow.task.assigned", source="/yimen/workflow", subject=f"{app_id}-3", data={
        "task_id": f"{app_id}-3", "application_id": app_id, "department": "LD-C", "item_code": None})
    assert await task_events.apply(late)
    async with db.transaction() as s:
        assert await tasks.open_departments(s, app_id) == set()


async def test_both_consumers_lock_task_rows_by_application_then_task():
    """Across applications too: the task consumer's batch writes its rows by application, then task, and the
    decision consumer's batch applies its applications in the same order."""
    from datetime import UTC, datetime

    from services.datashare.events import handlers
    from services.datashare.store import tasks

    class Session:
        info: dict[str, Any] = {}

    now = datetime.now(UTC)
    s = Session()
    # Task ids in the opposite order of their applications'.
    for task_id, app_id in (("t-1", "app-b"), ("t-2", "app-a"), ("t-0", "app-b")):
        tasks.task_assigned(s, task_id=task_id, application_id=app_id, department="LD-A", item_code=None,  # type: ignore[arg-type]
                            at=now)
    [(_, params)] = tasks._statements("postgresql", s.info[tasks._PENDING])
    assert params["b_task_id"] == ["t-2", "t-0", "t-1"]

    closed: list[str] = []

    class Recording:
        async def flush(self) -> None:
            pass

        def expunge_all(self) -> None:
            pass

    async def record(session, event):  # type: ignore[no-untyped-def]
        closed.append(event.data["application_id"])

    decided = [new_event("yimen.workflow.application.decided", source="/yimen/workflow", subject=a,
                         data={"application_id": a}) for a in ("app-c", "app-a", "app-b")]
    original = handlers.on_application_decided
    handlers.on_application_decided = record  # type: ignore[assignment]
    try:
        await handlers.on_application_decisions(Recording(), decided)  # type: ignore[arg-type]
    finally:
        handlers.on_application_decided = original  # type: ignore[assignment]
    assert closed == ["app-a", "app-b", "app-c"]
    assert next(c for c in handlers.CONSUMERS if c.name == "datashare-decided").batch_handler is \
        handlers.on_application_decisions
