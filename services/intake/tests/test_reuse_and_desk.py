"""Reuse of earlier applications, visits, appointments and consultations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.intake.tests import factories as f
from services.intake.tests.test_applications import BASE, PROBLEM, complete_draft, draft, fields, submit


async def test_a_copy_carries_the_form_and_materials_but_not_the_commitment(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    first = await complete_draft(intake, me, item["code"])
    await intake.client.post(f"{BASE}/applications/{first['id']}/check", headers=me)
    r = await intake.client.post(f"{BASE}/applications/{first['id']}/copy", headers=me, json={"service_point": "LD-LC"})
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["status"] == "draft" and copy["copied_from"] == first["id"] and copy["service_point"] == "LD-LC"
    assert copy["form"] == first["form"] == {"shop_name": "罗城小厨", "address": "兴华路1号"}
    assert {m["material_code"]: m["kind"] for m in copy["materials"]} == {"M01": "fetched", "M02": "fetched", "M03": "upload"}
    other = f.citizen(tokens, hid="445381198502020021")
    assert (await intake.client.post(f"{BASE}/applications/{first['id']}/copy", headers=other)).status_code == 404
    r = await intake.client.post(f"{BASE}/applications/{first['id']}/copy", headers=me, json={"service_point": "LD-FC"})
    assert r.status_code == 422 and fields(r.json()) == {("service_point", "service_point_not_offered")}


async def test_prefill_for_another_item_offers_what_earlier_applications_collected(intake, tokens):
    restaurant = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    first = await complete_draft(intake, me, restaurant["code"])
    await intake.client.post(f"{BASE}/applications/{first['id']}/check", headers=me)
    hygiene = f.food_permit_item(name="公共场所卫生许可", department="LD-WJJ")
    hygiene["materials"] = [
        {**hygiene["materials"][0], "code": "H01", "name": "营业执照（副本）"},  # same certificate type
        {**hygiene["materials"][2], "code": "H02"},  # same name: 经营场所平面图
        {**hygiene["materials"][3], "code": "H03", "name": "卫生承诺书"},
    ]
    await intake.publish_item(hygiene)
    r = await intake.client.get(f"{BASE}/me/prefill", headers=me, params={"item_code": hygiene["code"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["form"] == {"shop_name": "罗城小厨", "address": "兴华路1号"}
    got = {m["material_code"]: (m["matched_by"], m["kind"]) for m in body["materials"]}
    assert got == {"H01": ("certificate_type", "fetched"), "H02": ("name", "upload")}
    target = await draft(intake, me, hygiene["code"])
    reuse = next(m for m in body["materials"] if m["material_code"] == "H02")
    # The one-time notice itself points at what an earlier application already holds.
    notice = (await intake.client.post(f"{BASE}/applications/{target['id']}/check", headers=me)).json()
    hints = {m["code"]: (m["reusable"] or {}).get("attachment_id") for m in notice["materials"]}
    assert hints == {"H01": None, "H02": reuse["attachment_id"], "H03": None}
    assert {m["code"]: m["provided"] for m in notice["materials"]}["H01"] == "fetched"
    r = await intake.client.post(f"{BASE}/applications/{target['id']}/materials", headers=me,
                                 json={"material_code": "H02", "kind": "reuse", "attachment_id": reuse["attachment_id"]})
    assert r.status_code == 201 and r.json()["sha256"] == f.sha(f.PDF)
    stranger = f.citizen(tokens, hid="445381198502020021")
    theirs = await draft(intake, stranger, hygiene["code"])
    r = await intake.client.post(f"{BASE}/applications/{theirs['id']}/materials", headers=stranger,
                                 json={"material_code": "H02", "kind": "reuse", "attachment_id": reuse["attachment_id"]})
    assert r.status_code == 404
    assert (await intake.client.get(f"{BASE}/me/prefill", headers=me, params={"item_code": "NONE"})).status_code == 404


async def test_a_clerk_records_visits_and_each_is_published(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"])
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/visits", headers=f.clerk(tokens, point="LD-LC"),
                                 json={"purpose": "核验原件"})
    assert r.status_code == 201 and r.json()["service_point"] == "LD-LC"
    event = (await intake.wait_event("yimen.intake.visit.recorded", app["id"])).data
    assert event["purpose"] == "核验原件" and event["service_point"] == "LD-LC"
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/visits", headers=me,
                                     json={"purpose": "x"})).status_code == 403
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/visits", headers=f.clerk(tokens), json={"purpose": ""})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    visits = (await intake.client.get(f"{BASE}/applications/{app['id']}/visits", headers=me)).json()
    assert [v["purpose"] for v in visits] == ["核验原件"]


async def test_concurrent_bookings_never_exceed_a_slots_capacity(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    clerk = f.clerk(tokens)
    r = await intake.client.post(f"{BASE}/appointment-slots", headers=clerk, json={
        "service_point": "LD-CENTRE", "item_code": item["code"], "starts_at": starts.isoformat(), "capacity": 2})
    assert r.status_code == 201, r.text
    slot = r.json()
    dup = await intake.client.post(f"{BASE}/appointment-slots", headers=clerk, json={
        "service_point": "LD-CENTRE", "item_code": item["code"], "starts_at": starts.isoformat(), "capacity": 2})
    assert dup.status_code == 409
    other_point = await intake.client.post(f"{BASE}/appointment-slots", headers=f.clerk(tokens, point="LD-LC"), json={
        "service_point": "LD-CENTRE", "item_code": item["code"], "starts_at": starts.isoformat(), "capacity": 2})
    assert other_point.status_code == 403
    people = [f.citizen(tokens) for _ in range(5)]
    results = await asyncio.gather(*(intake.client.post(f"{BASE}/appointments", headers=p, json={"slot_id": slot["id"]})
                                     for p in people))
    assert sorted(r.status_code for r in results) == [201, 201, 409, 409, 409]
    booked = [(p, r.json()) for p, r in zip(people, results, strict=True) if r.status_code == 201]
    holder, appt = booked[0]
    again = await intake.client.post(f"{BASE}/appointments", headers=holder, json={"slot_id": slot["id"]})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    listed = (await intake.client.get(f"{BASE}/appointment-slots", params={"item_code": item["code"]})).json()["items"]
    assert listed[0]["booked"] == 2
    assert (await intake.client.post(f"{BASE}/appointments/{appt['id']}/cancel", headers=people[4])).status_code == 404
    r = await intake.client.post(f"{BASE}/appointments/{appt['id']}/cancel", headers=holder)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    waiting = next(p for p, r in zip(people, results, strict=True) if r.status_code == 409)
    assert (await intake.client.post(f"{BASE}/appointments", headers=waiting, json={"slot_id": slot["id"]})).status_code == 201
    assert (await intake.client.post(f"{BASE}/appointments", headers=holder, json={"slot_id": slot["id"]})).status_code == 409
    mine = (await intake.client.get(f"{BASE}/me/appointments", headers=holder)).json()["items"]
    assert [a["status"] for a in mine] == ["cancelled"]
    assert (await intake.client.post(f"{BASE}/appointments", headers=holder, json={"slot_id": 10**9})).status_code == 404


async def test_a_consultation_is_answered_by_the_owning_department_and_visible_to_the_asker(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    r = await intake.client.post(f"{BASE}/consultations", headers=me,
                                 json={"item_code": item["code"], "question": "个体户需要章程吗？"})
    assert r.status_code == 201 and r.json()["department"] == "LD-SCJGJ"
    cid = r.json()["id"]
    outsider = tokens.headers("o1", kind="staff", roles=["department_reviewer"], dept="LD-WJJ", name="外")
    assert (await intake.client.post(f"{BASE}/consultations/{cid}/answer", headers=outsider,
                                     json={"answer": "x"})).status_code == 403
    owner = tokens.headers("o2", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ", name="市监答复员")
    inbox = (await intake.client.get(f"{BASE}/consultations", headers=owner)).json()["items"]
    assert cid in {c["id"] for c in inbox}
    r = await intake.client.post(f"{BASE}/consultations/{cid}/answer", headers=owner, json={"answer": "不需要。"})
    assert r.status_code == 200 and r.json()["answered_by"] == "市监答复员"
    assert (await intake.client.post(f"{BASE}/consultations/{cid}/answer", headers=owner,
                                     json={"answer": "again"})).status_code == 409
    mine = (await intake.client.get(f"{BASE}/me/consultations", headers=me)).json()["items"]
    assert mine[0]["answer"] == "不需要。"
    r = await intake.client.post(f"{BASE}/consultations", headers=me, json={"question": "?"})
    assert r.status_code == 422 and fields(r.json()) == {("item_code", "required")}
    app = await draft(intake, f.citizen(tokens, hid="445381198502020021"), item["code"])
    r = await intake.client.post(f"{BASE}/consultations", headers=me, json={"application_id": app["id"], "question": "?"})
    assert r.status_code == 404


async def test_submit_replays_the_same_answer_for_the_same_key(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    a, b = await submit(intake, me, app["id"], key="same"), await submit(intake, me, app["id"], key="same")
    assert a.json() == b.json()


async def test_commitments_become_a_verification_duty_of_the_items_department(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    draft_only = await complete_draft(intake, me, item["code"])
    await submit(intake, me, app["id"])
    reviewer = tokens.headers("rv", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ", name="核查员")
    due = (await intake.client.get(f"{BASE}/commitments", headers=reviewer, params={"limit": 200})).json()["items"]
    mine = [c for c in due if c["application_id"] == app["id"]]
    assert [c["material_code"] for c in mine] == ["M04"] and mine[0]["verification"] is None
    assert draft_only["id"] not in {c["application_id"] for c in due}  # not yet handed in: no duty
    other = tokens.headers("rv2", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    other_due = (await intake.client.get(f"{BASE}/commitments", headers=other, params={"limit": 200})).json()["items"]
    assert app["id"] not in {c["application_id"] for c in other_due}
    assert (await intake.client.get(f"{BASE}/commitments", headers=me)).status_code == 403
    cid = mine[0]["attachment_id"]
    assert (await intake.client.post(f"{BASE}/commitments/{cid}/verification", headers=other,
                                     json={"outcome": "kept"})).status_code == 404
    r = await intake.client.post(f"{BASE}/commitments/{cid}/verification", headers=reviewer,
                                 json={"outcome": "broken", "note": "现场无自查记录"})
    assert r.status_code == 200 and r.json()["verification"] == "broken"
    again = await intake.client.post(f"{BASE}/commitments/{cid}/verification", headers=reviewer, json={"outcome": "kept"})
    assert again.status_code == 409
    bad = await intake.client.post(f"{BASE}/commitments/{cid}/verification", headers=reviewer, json={"outcome": "maybe"})
    assert bad.status_code == 422 and ("body.outcome", "literal_error") in fields(bad.json())
    timeline = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()["timeline"]
    assert timeline[-1]["step"] == "告知承诺核查：承诺不实" and timeline[-1]["staff_name"] == "核查员"
    still_due = (await intake.client.get(f"{BASE}/commitments", headers=reviewer, params={"limit": 200})).json()["items"]
    assert cid not in {c["attachment_id"] for c in still_due}


async def test_a_refusal_is_handed_over_without_waiting_for_a_certificate(intake, tokens):
    from shared.events import new_event
    from shared.testing import eventually

    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    receipt = (await submit(intake, me, app["id"])).json()["receipt_number"]
    await intake.bus.publish(new_event("yimen.workflow.application.decided", source="/yimen/workflow", subject=app["id"], data={
        "application_id": app["id"], "receipt_number": receipt, "outcome": "rejected", "reasons": "选址不符合要求",
        "legal_basis": "《食品经营许可管理办法》第十一条", "decided_at": datetime.now(UTC).isoformat(),
        "department": "LD-SCJGJ", "result": item["result"]}))
    delivered = (await intake.wait_event("yimen.intake.application.delivered", app["id"])).data
    assert delivered["method"] == "electronic" and delivered["certificate_number"] is None

    async def final():
        r = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
        return r if r["status"] == "delivered" else None

    got = await eventually(final)
    assert got["outcome"] == "rejected"
    assert any("依据" in (t["note"] or "") for t in got["timeline"])


async def test_abandoned_drafts_are_counted_per_item_by_where_they_stopped_without_personal_data(intake, tokens):
    from datetime import timedelta

    from sqlalchemy import update

    from services.intake.store.tables import Application
    from shared.types import utcnow

    item = await intake.publish_item(f.food_permit_item())
    code = item["code"]
    base = "/intake/v1"
    me = f.citizen(tokens)
    ids = []
    for checked in (True, True, False):
        r = await intake.client.post(f"{base}/applications", headers=me, json={
            "item_code": code, "channel": "online", "service_point": "LD-CENTRE", "form": {}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        if checked:
            assert (await intake.client.post(f"{base}/applications/{ids[-1]}/check", headers=me)).status_code == 200
    # Two of them were left alone for ten days; the third is fresh and not abandoned yet.
    async with intake.client.app.state.db.transaction() as s:
        await s.execute(update(Application).where(Application.id.in_(ids[1:]))
                        .values(updated_at=utcnow() - timedelta(days=10)))
    sup = tokens.headers("sup", kind="staff", roles=["supervisor"])
    r = await intake.client.get(f"{base}/insights/abandoned-drafts", params={"idle_days": 7, "item": code}, headers=sup)
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert row["item_code"] == code and row["drafts"] == 2
    stopped = {s["at"]: s["drafts"] for s in row["stopped_at"]}
    assert stopped.pop("not_checked") == 1 and sum(stopped.values()) == 1
    assert "张三" not in r.text and "445381" not in r.text
    # A department sees its own items only; a citizen and a stranger department are refused or see nothing.
    own = tokens.headers("rev", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    assert (await intake.client.get(f"{base}/insights/abandoned-drafts", params={"item": code},
                                    headers=own)).json()["items"][0]["drafts"] == 2
    other = tokens.headers("rev2", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    assert (await intake.client.get(f"{base}/insights/abandoned-drafts", params={"item": code},
                                    headers=other)).json()["items"] == []
    assert (await intake.client.get(f"{base}/insights/abandoned-drafts", params={"department": "LD-SCJGJ"},
                                    headers=other)).status_code == 403
    assert (await intake.client.get(f"{base}/insights/abandoned-drafts", headers=me)).status_code == 403
    bad = await intake.client.get(f"{base}/insights/abandoned-drafts", params={"idle_days": 0}, headers=sup)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.idle_days"
