"""Applications end to end through the running service: routes, store, outbox, the real bus."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx

from services.intake.tests import factories as f
from shared.events import new_event
from shared.testing import eventually

BASE = "/intake/v1"
PROBLEM = "application/problem+json"


async def draft(h, headers, code, **body):
    body = {"item_code": code, "channel": "online", "service_point": "LD-CENTRE", **body}
    r = await h.client.post(f"{BASE}/applications", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def upload(h, headers, app_id, code, data=f.PDF, filename="file.pdf", **fields):
    return await h.client.post(f"{BASE}/applications/{app_id}/materials", headers=headers,
                               data={"material_code": code, **fields}, files={"file": (filename, data, "application/pdf")})


async def commit(h, headers, app_id, code="M04"):
    r = await h.client.post(f"{BASE}/applications/{app_id}/materials", headers=headers,
                            json={"material_code": code, "kind": "commitment"})
    return r


async def complete_draft(h, headers, code, **body):
    app = await draft(h, headers, code, form={"shop_name": "罗城小厨", "address": "兴华路1号"}, **body)
    assert (await upload(h, headers, app["id"], "M03")).status_code == 201
    assert (await commit(h, headers, app["id"])).status_code == 201
    return app


async def submit(h, headers, app_id, key=None):
    hdrs = {**headers, **({"Idempotency-Key": key} if key else {})}
    return await h.client.post(f"{BASE}/applications/{app_id}/submit", headers=hdrs)


def fields(problem_body):
    return {(e["field"], e["rule"]) for e in problem_body["errors"]}


# --- the local copy of the catalogue ----------------------------------------------------------------------------


async def test_every_published_version_is_kept_once_and_a_withdrawal_marks_only_its_version(intake, tokens):
    code = f.item_code()
    v1 = f.food_permit_item(code)
    event = f.published(v1)
    await intake.bus.publish(event)
    await intake.bus.publish(f.published(v1))  # the same version again, as a new event: still one row
    await intake.publish_item(f.food_permit_item(code, version=2, name="食品经营许可（新）"))
    kept = await intake.item_kept(code, 1)
    assert kept.name == "食品经营许可" and kept.payload["materials"][0]["code"] == "M01"
    await intake.bus.publish(f.withdrawn(code, 1))
    await eventually(lambda: _withdrawn(intake, code, 1))
    assert (await intake.item_kept(code, 2)).withdrawn_at is None
    # A new draft cites the newest version still published.
    app = await draft(intake, f.citizen(tokens), code)
    assert app["item_version"] == 2 and app["item_name"] == "食品经营许可（新）"


async def _withdrawn(h, code, version):
    row = await h.item_kept(code, version)
    return row is not None and row.withdrawn_at is not None


# --- drafts and the one-time notice --------------------------------------------------------------------------------


async def test_check_lists_every_problem_at_once_and_fetches_what_datashare_holds(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"], form={"staff_count": "many"})
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=me)
    assert r.status_code == 200, r.text
    notice = r.json()
    assert notice["complete"] is False
    assert {(p["field"], p["rule"]) for p in notice["problems"]} == {
        ("form.shop_name", "required"), ("form.address", "required"), ("form.staff_count", "type"),
        ("materials.M03", "required"), ("materials.M04", "required"),
    }
    provided = {m["code"]: m["provided"] for m in notice["materials"]}
    assert provided == {"M01": "fetched", "M02": "fetched", "M03": None, "M04": None, "M05": None}
    asked = [q for q in intake.datashare.requests if q["application_id"] == app["id"]]
    assert {q["material_code"] for q in asked} == {"M01", "M02"}
    assert all(q["authorization"] == me["Authorization"] and q["holder_id"] == f.ID_NUMBER for q in asked)
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
    fetched = {m["material_code"]: m["reference"] for m in got["materials"]}
    assert fetched["M01"] == "441781600012345"
    assert got["notice"] and len(got["notice"]) == 5
    # Concurrent checks fetch once.
    twin = await draft(intake, me, item["code"])
    await asyncio.gather(*(intake.client.post(f"{BASE}/applications/{twin['id']}/check", headers=me) for _ in range(3)))
    twin_materials = (await intake.client.get(f"{BASE}/applications/{twin['id']}", headers=me)).json()["materials"]
    assert sorted(m["material_code"] for m in twin_materials) == ["M01", "M02"]
    # Asking again does not fetch again: what was fetched stays attached.
    before = len(intake.datashare.requests)
    await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=me)
    assert len(intake.datashare.requests) == before


async def test_no_match_or_an_outage_is_told_and_the_applicant_may_upload_instead(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    stranger = f.citizen(tokens, hid="445381198502020021")
    app = await draft(intake, stranger, item["code"], form={"shop_name": "a", "address": "b"})
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=stranger)
    rules = {(p["field"], p["rule"]) for p in r.json()["problems"]}
    assert ("materials.M01", "not_found_in_datashare") in rules
    intake.datashare.down = True
    try:
        r = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=stranger)
    finally:
        intake.datashare.down = False
    rules = {(p["field"], p["rule"]) for p in r.json()["problems"]}
    assert {("materials.M01", "datashare_unavailable"), ("materials.M02", "datashare_unavailable")} <= rules
    nameless = f.citizen(tokens, hid=None)
    theirs = await draft(intake, nameless, item["code"])
    r = await intake.client.post(f"{BASE}/applications/{theirs['id']}/check", headers=nameless)
    assert ("materials.M01", "datashare_refused") in {(p["field"], p["rule"]) for p in r.json()["problems"]}
    assert (await upload(intake, stranger, app["id"], "M01")).status_code == 201
    intake.datashare.known_holders.add("445381198502020021")
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=stranger)
    assert {p["field"] for p in r.json()["problems"]} == {"materials.M03", "materials.M04"}


async def test_bad_uploads_and_references_are_refused_with_precise_problems(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app_id = (await draft(intake, me, item["code"]))["id"]
    cases = [
        (await upload(intake, me, app_id, "M03", filename="plan.docx"), 422, ("file", "file_type")),
        (await upload(intake, me, app_id, "M03", data=f.PNG, filename="plan.pdf"), 422, ("file", "file_type")),
        (await upload(intake, me, app_id, "M03", data=f.PDF + b"x" * 1000), 413, ("file", "max_bytes")),
        (await upload(intake, me, app_id, "M03", sha256="0" * 64), 422, ("sha256", "sha256_mismatch")),
        (await upload(intake, me, app_id, "NOPE"), 422, ("material_code", "unknown_material")),
        (await commit(intake, me, app_id, "M03"), 422, ("kind", "commitment_not_allowed")),
        (await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers=me,
                                  json={"material_code": "M03", "kind": "certificate_ref", "reference": "1"}),
         422, ("kind", "certificate_ref_not_allowed")),
        (await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers=me,
                                  json={"material_code": "M01", "kind": "certificate_ref"}), 422, ("reference", "required")),
        (await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers=me,
                                  json={"material_code": "M01", "kind": "wish"}), 422, ("kind", "literal_error")),
        (await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers=me,
                                  data={"material_code": "M03"}), 422, ("file", "required")),
    ]
    for response, status, rule in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert rule in fields(response.json()), response.text
    r = await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers={**me, "content-type": "text/plain"},
                                 content=b"hello")
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM
    good = await upload(intake, me, app_id, "M03", sha256=f.sha(f.PDF).upper())
    assert good.status_code == 201 and good.json()["sha256"] == f.sha(f.PDF)
    ref = await intake.client.post(f"{BASE}/applications/{app_id}/materials", headers=me,
                                   json={"material_code": "M01", "kind": "certificate_ref", "reference": "441781600099999"})
    assert ref.status_code == 201 and ref.json()["kind"] == "certificate_ref"


async def test_a_draft_refuses_what_the_item_does_not_offer_and_callers_who_cannot_apply(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    r = await intake.client.post(f"{BASE}/applications", headers=me,
                                 json={"item_code": item["code"], "channel": "post", "service_point": "LD-FC"})
    assert r.status_code == 422 and fields(r.json()) == {("channel", "channel_not_offered"),
                                                        ("service_point", "service_point_not_offered")}
    r = await intake.client.post(f"{BASE}/applications", headers=me,
                                 json={"item_code": "NO-SUCH", "channel": "online", "service_point": "LD-CENTRE"})
    assert r.status_code == 422 and fields(r.json()) == {("item_code", "unknown_item")}
    r = await intake.client.post(f"{BASE}/applications", headers=me,
                                 json={"item_code": item["code"], "channel": "fax", "service_point": "LD-CENTRE"})
    assert r.status_code == 422 and ("body.channel", "literal_error") in fields(r.json())
    r = await intake.client.post(f"{BASE}/applications", headers=me, json={
        "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE", "delivery": {"method": "post"}})
    assert r.status_code == 422 and fields(r.json()) == {("delivery.address", "required")}
    r = await intake.client.post(f"{BASE}/applications", headers=f.clerk(tokens),
                                 json={"item_code": item["code"], "channel": "window", "service_point": "LD-CENTRE"})
    assert r.status_code == 403
    r = await intake.client.post(f"{BASE}/applications",
                                 json={"item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE"})
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    natural_only = await intake.publish_item(f.food_permit_item(audience=["natural_person"]))
    r = await intake.client.post(f"{BASE}/applications", headers=f.citizen(tokens, org="91441781MA4W000001"),
                                 json={"item_code": natural_only["code"], "channel": "online", "service_point": "LD-CENTRE"})
    assert r.status_code == 422 and fields(r.json()) == {("applicant", "audience")}


# --- submission ----------------------------------------------------------------------------------------------------


async def test_an_incomplete_submission_is_refused_with_the_whole_notice(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"])
    r = await submit(intake, me, app["id"], key="k-incomplete")
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert fields(r.json()) == {("form.shop_name", "required"), ("form.address", "required"),
                                ("materials.M03", "required"), ("materials.M04", "required")}
    # The refusal did not spend the key: after completing, the same key submits.
    patch = {"form": {"shop_name": "a", "address": "b"}}
    url = f"{BASE}/applications/{app['id']}"
    assert (await intake.client.patch(url, headers=me, json=patch)).status_code == 428
    assert (await intake.client.patch(url, headers={**me, "If-Match": '"stale"'}, json=patch)).status_code == 412
    tag = (await intake.client.get(url, headers=me)).headers["ETag"]
    r = await intake.client.patch(url, headers={**me, "If-Match": tag}, json=patch)
    assert r.status_code == 200 and r.json()["form"] == {"shop_name": "a", "address": "b"} and r.headers["ETag"] != tag
    assert (await intake.client.patch(url, headers={**me, "If-Match": tag}, json=patch)).status_code == 412
    await upload(intake, me, app["id"], "M03")
    await commit(intake, me, app["id"])
    assert (await submit(intake, me, app["id"], key="k-incomplete")).status_code == 200


async def test_submit_is_idempotent_and_gives_a_documented_receipt_number(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    first = await submit(intake, me, app["id"], key="tap-1")
    assert first.status_code == 200, first.text
    body = first.json()
    today = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    assert re.fullmatch(re.escape(item["code"] + today) + r"\d{4}", body["receipt_number"])
    assert re.fullmatch(r"\d{6}", body["verification_code"]) and body["status"] == "submitted"
    again = await submit(intake, me, app["id"], key="tap-1")
    assert again.status_code == 200 and again.json() == body and again.headers["Idempotent-Replayed"] == "true"
    other_key = await submit(intake, me, app["id"], key="tap-2")
    assert other_key.status_code == 409 and other_key.headers["content-type"] == PROBLEM
    second_app = await complete_draft(intake, me, item["code"])
    reused = await submit(intake, me, second_app["id"], key="tap-1")
    assert reused.status_code == 422 and ("header.Idempotency-Key", "idempotency_key_reused") in fields(reused.json())
    event = await intake.wait_event("yimen.intake.application.submitted", app["id"])
    assert event.data["receipt_number"] == body["receipt_number"]
    assert event.data["applicant"] == {"kind": "person", "id": body["applicant"]["id"], "holder_id": f.ID_NUMBER,
                                       "name": "张三", "agent_id": None}
    second = await submit(intake, me, second_app["id"], key="tap-3")
    assert second.json()["receipt_number"] != body["receipt_number"]


async def test_a_concurrent_double_submit_makes_one_submission(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    same_key = await asyncio.gather(*(submit(intake, me, app["id"], key="double-tap") for _ in range(4)))
    assert {r.status_code for r in same_key} <= {200, 409} and any(r.status_code == 200 for r in same_key)
    assert len({r.json()["receipt_number"] for r in same_key if r.status_code == 200}) == 1
    other = await complete_draft(intake, me, item["code"])
    different_keys = await asyncio.gather(*(submit(intake, me, other["id"], key=f"k{i}") for i in range(3)))
    assert sorted(r.status_code for r in different_keys) == [200, 409, 409]
    # What intake publishes is what its outbox holds (written with the submission): one event each.
    assert await intake.emitted("yimen.intake.application.submitted", app["id"]) == 1
    assert await intake.emitted("yimen.intake.application.submitted", other["id"]) == 1
    await intake.wait_event("yimen.intake.application.submitted", app["id"])
    await intake.wait_event("yimen.intake.application.submitted", other["id"])
    assert await intake.announced("yimen.intake.application.submitted", app["id"]) == 1
    assert await intake.announced("yimen.intake.application.submitted", other["id"]) == 1
    assert len(intake.published("yimen.intake.application.submitted", app["id"])) == 1
    assert len(intake.published("yimen.intake.application.submitted", other["id"])) == 1


async def test_a_submission_against_a_withdrawn_item_version_is_refused(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    await intake.bus.publish(f.withdrawn(item["code"], 1))
    await eventually(lambda: _withdrawn(intake, item["code"], 1))
    r = await submit(intake, me, app["id"], key="late")
    assert r.status_code == 422 and fields(r.json()) == {("item_version", "item_withdrawn")}
    check = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=me)
    assert ("item_version", "item_withdrawn") in {(p["field"], p["rule"]) for p in check.json()["problems"]}


async def test_a_fully_online_complete_application_is_accepted_automatically(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    r = await submit(intake, me, app["id"])
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    accepted = (await intake.wait_event("yimen.intake.application.accepted", app["id"])).data
    assert accepted["accepted_by"] == "system" and accepted["online"] is True
    assert accepted["case_kind"] == "promised"
    assert accepted["promised_limit"] == {"value": 10, "unit": "working_days"}
    assert accepted["statutory_limit"] == {"value": 20, "unit": "working_days"}
    assert accepted["commitments"] == ["M04"] and accepted["item_name"] == "食品经营许可"
    assert {m["code"]: m["kind"] for m in accepted["materials"]} == {
        "M01": "fetched", "M02": "fetched", "M03": "upload", "M04": "commitment"}
    assert accepted["form"] == {"shop_name": "罗城小厨", "address": "兴华路1号"}
    plan = next(m for m in accepted["materials"] if m["code"] == "M03")["reference"]
    assert plan.endswith(f"?sha256={f.sha(f.PDF)}")
    reviewer = tokens.headers("h2", kind="department_system", roles=["department_system"], dept="LD-XFJ")
    download = await intake.client.get(plan, headers=reviewer)  # a parallel reviewer's system follows the event
    assert download.status_code == 200 and download.content == f.PDF
    assert accepted["receipt_number"] == r.json()["receipt_number"]


async def test_a_window_clerk_accepts_and_is_recorded_as_first_responder(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(case_kind="immediate"))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"], channel="window")
    await submit(intake, me, app["id"])
    elsewhere = f.clerk(tokens, point="LD-LC", dept="LD-MZJ")
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=elsewhere)).status_code == 404
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=me)).status_code == 403
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    assert r.status_code == 200, r.text
    got = r.json()
    # 即办件: decided at acceptance.
    assert got["status"] == "decided" and got["outcome"] == "approved"
    assert got["first_responder"]["name"] == "李窗口"
    accept_step = next(t for t in got["timeline"] if t["step"] == "受理")
    assert accept_step["staff_name"] == "李窗口" and accept_step["staff_contact"] == "0766-3822000"
    accepted = (await intake.wait_event("yimen.intake.application.accepted", app["id"])).data
    assert accepted["case_kind"] == "immediate" and accepted["online"] is False
    again = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


async def test_the_clerks_queue_shows_when_each_was_handed_in_and_finds_one_by_receipt_number(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(case_kind="immediate"))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"], channel="window")
    submitted = (await submit(intake, me, app["id"])).json()
    receipt = submitted["receipt_number"]
    clerk = f.clerk(tokens)
    queue = (await intake.client.get(f"{BASE}/queue", headers=clerk, params={"status": "submitted"})).json()["items"]
    mine = next(a for a in queue if a["id"] == app["id"])
    assert mine["submitted_at"] and mine["receipt_number"] == receipt
    found = (await intake.client.get(f"{BASE}/queue", headers=clerk, params={"receipt_number": receipt})).json()
    assert [a["id"] for a in found["items"]] == [app["id"]]
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=clerk)).status_code == 200
    # Once accepted it is out of the acceptance queue, but the receipt number still finds it (any state).
    found = (await intake.client.get(f"{BASE}/queue", headers=clerk, params={"receipt_number": receipt})).json()
    assert [a["status"] for a in found["items"]] == ["decided"]
    # Another point's clerk of another department does not find it; a malformed number is a 422.
    other = f.clerk(tokens, point="LD-LC", dept="LD-MZJ")
    assert (await intake.client.get(f"{BASE}/queue", headers=other, params={"receipt_number": receipt})).json()["items"] == []
    bad = await intake.client.get(f"{BASE}/queue", headers=clerk, params={"receipt_number": "R-1; drop"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.receipt_number"


async def test_return_for_correction_then_resubmit_and_not_accepting_with_legal_basis(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    clerk = f.clerk(tokens, point="LD-LC", dept="LD-SCJGJ")  # the item's department: sees cases at any point
    app = await complete_draft(intake, me, item["code"])
    receipt = (await submit(intake, me, app["id"])).json()["receipt_number"]
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/return", headers=clerk, json={
        "reasons": "平面图不清晰", "missing": [{"field": "materials.M03", "rule": "illegible", "message": "请重新上传清晰的平面图"}]})
    assert r.status_code == 200 and r.json()["status"] == "returned"
    returned = (await intake.wait_event("yimen.intake.application.returned", app["id"])).data
    assert returned["missing"][0]["rule"] == "illegible" and returned["receipt_number"] == receipt
    assert (await upload(intake, me, app["id"], "M03", data=f.PNG, filename="plan.png")).status_code == 201
    again = await submit(intake, me, app["id"])
    assert again.json()["status"] == "submitted" and again.json()["receipt_number"] == receipt
    bad = await intake.client.post(f"{BASE}/applications/{app['id']}/not-accept", headers=clerk, json={"reasons": "x"})
    assert bad.status_code == 422 and ("body.legal_basis", "missing") in fields(bad.json())
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/not-accept", headers=clerk, json={
        "reasons": "不属于本机关职权范围", "legal_basis": "《行政许可法》第三十二条"})
    assert r.status_code == 200 and r.json()["status"] == "not_accepted"
    event = (await intake.wait_event("yimen.intake.application.not_accepted", app["id"])).data
    assert event["legal_basis"] == "《行政许可法》第三十二条"


async def test_the_applicant_withdraws_before_the_decision_only(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    await submit(intake, me, app["id"])
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/withdraw", headers=f.clerk(tokens))).status_code == 403
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/withdraw", headers=me)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    await intake.wait_event("yimen.intake.application.withdrawn", app["id"])
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/withdraw", headers=me)).status_code == 409


# --- workflow and datashare events -----------------------------------------------------------------------------------


def _workflow(type_, app_id, **data):
    return new_event(type_, source="/yimen/workflow", subject=app_id, data={"application_id": app_id, **data})


async def test_correction_decision_and_electronic_delivery_follow_the_events(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    receipt = (await submit(intake, me, app["id"])).json()["receipt_number"]
    now = datetime.now(UTC).isoformat()
    await intake.bus.publish(_workflow("yimen.workflow.task.assigned", app["id"], task_id="t1", receipt_number=receipt,
                                       item_code=item["code"], department="LD-WJJ", step_key="joint", step_name="并联审查",
                                       stage_kind="parallel", lead=False, limit_days=5, due_at=now, assigned_at=now))
    correction = _workflow(
        "yimen.workflow.task.decided", app["id"], task_id="t1", receipt_number=receipt, department="LD-WJJ",
        step_key="joint", outcome="request_correction", reasons="缺少消毒设施说明", legal_basis=None,
        missing=[{"material_code": "M05", "field": None, "reason": "请补充消毒设施说明"}],
        decided_by={"kind": "staff", "id": "w1", "name": "王审查", "contact": "0766-3800001"}, deemed=False, decided_at=now)
    await intake.bus.publish(correction)
    # The same event again past JetStream's duplicate detection (another message id): the inbox drops it.
    await intake.bus.publish_raw(intake.bus.names.subject(correction.type), correction.to_json(), correction.id + "-again")
    await eventually(lambda: _in_state(intake, me, app["id"], "awaiting_correction"))
    await intake.drained("intake-review")  # the second copy arrived and was dropped
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
    assert got["notice"] == [{"field": "materials.M05", "rule": "correction_requested", "message": "请补充消毒设施说明"}]
    step = next(t for t in got["timeline"] if t["step"].startswith("要求补正"))
    assert (step["unit"], step["staff_name"], step["staff_contact"]) == ("LD-WJJ", "王审查", "0766-3800001")
    assert sum(t["step"].startswith("要求补正") for t in got["timeline"]) == 1
    awaiting = (await intake.client.get(f"{BASE}/me/awaiting", headers=me)).json()["items"]
    assert app["id"] in {a["id"] for a in awaiting}
    assert (await upload(intake, me, app["id"], "M05")).status_code == 201
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/corrections", headers=me, json={"note": "已补充"})
    assert r.status_code == 200 and r.json()["status"] == "in_review"
    corrected = (await intake.wait_event("yimen.intake.application.corrected", app["id"])).data
    assert corrected["task_id"] == "t1" and corrected["receipt_number"] == receipt
    await intake.bus.publish(_workflow(
        "yimen.workflow.application.decided", app["id"], receipt_number=receipt, item_code=item["code"], item_version=1,
        outcome="approved", reasons="符合条件", legal_basis=None, decided_at=now, applicant={}, department="LD-SCJGJ",
        result=item["result"]))
    await eventually(lambda: _in_state(intake, me, app["id"], "decided"))
    issued = {
        "certificate_number": "JY14417810001234", "type_code": f.FOOD_PERMIT, "type_name": "食品经营许可证",
        "holder_id": f.ID_NUMBER, "holder_kind": "person", "holder_name": "张三", "issuer_department": "LD-SCJGJ",
        "application_id": app["id"], "issued_on": "2026-11-26", "valid_until": "2031-11-25"}
    await intake.bus.publish(new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-1",
                                       data=issued))
    done = await eventually(lambda: _in_state(intake, me, app["id"], "delivered"))
    # Announced again as a new event: already attached, nothing changes.
    await intake.bus.publish(new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-1",
                                       data=issued))
    assert done["result"]["certificate_number"] == "JY14417810001234"
    delivered = (await intake.wait_event("yimen.intake.application.delivered", app["id"])).data
    assert delivered == {**delivered, "method": "electronic", "certificate_number": "JY14417810001234", "online": True}
    await intake.drained("intake-certificate-issued")  # the second announcement was taken, and changed nothing
    assert await intake.announced("yimen.intake.application.delivered", app["id"]) == 1
    final = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
    assert sum(t["step"].startswith("电子证照已签发") for t in final["timeline"]) == 1
    assert await intake.emitted("yimen.intake.application.delivered", app["id"]) == 1


async def test_pickup_delivery_waits_for_a_clerk(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"], delivery={"method": "pickup", "service_point": "LD-CENTRE"})
    receipt = (await submit(intake, me, app["id"])).json()["receipt_number"]
    await intake.bus.publish(new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="FP-2", data={
        "certificate_number": "JY2", "type_code": f.FOOD_PERMIT, "application_id": app["id"]}))
    await intake.bus.publish(_workflow("yimen.workflow.application.decided", app["id"], receipt_number=receipt,
                                       outcome="approved", decided_at=datetime.now(UTC).isoformat()))
    await eventually(lambda: _in_state(intake, me, app["id"], "awaiting_pickup"))
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=f.clerk(tokens), json={"method": "pickup"})
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    delivered = (await intake.wait_event("yimen.intake.application.delivered", app["id"])).data
    assert delivered["method"] == "pickup" and delivered["certificate_number"] == "JY2"


async def _in_state(h, headers, app_id, status):
    r = await h.client.get(f"{BASE}/applications/{app_id}", headers=headers)
    return r.json() if r.json()["status"] == status else None


# --- who sees what ---------------------------------------------------------------------------------------------------


async def test_another_citizen_gets_404_and_agents_and_delegates_see_their_principals(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens, sub="owner-1")
    app = await draft(intake, me, item["code"])
    other = f.citizen(tokens, hid="445381198502020021")
    for path in ("", "/check", "/withdraw"):
        method = intake.client.get if not path else intake.client.post
        r = await method(f"{BASE}/applications/{app['id']}{path}", headers=other)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert app["id"] not in {a["id"] for a in (await intake.client.get(f"{BASE}/me/applications", headers=other)).json()["items"]}
    delegate = f.citizen(tokens, act={"sub": "owner-1", "kind": "person", "hid": f.ID_NUMBER, "delegation": "d1"})
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=delegate)).status_code == 200
    on_behalf = await draft(intake, delegate, item["code"])
    assert on_behalf["applicant"]["id"] == "owner-1" and on_behalf["applicant"]["agent_id"] is not None
    mine = (await intake.client.get(f"{BASE}/me/applications", headers=me)).json()["items"]
    assert {app["id"], on_behalf["id"]} <= {a["id"] for a in mine}
    org = "91441781MA4W000009"
    agent_a, agent_b = f.citizen(tokens, org=org), f.citizen(tokens, org=org)
    company_app = await draft(intake, agent_a, item["code"])
    assert company_app["applicant"] == {**company_app["applicant"], "kind": "organisation", "id": org, "holder_id": org}
    assert (await intake.client.get(f"{BASE}/applications/{company_app['id']}", headers=agent_b)).status_code == 200
    outsider_clerk = f.clerk(tokens, point="LD-SD", dept="LD-MZJ")
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=outsider_clerk)).status_code == 404
    reviewer = tokens.headers("r1", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    seen = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=reviewer)
    assert seen.status_code == 200 and seen.json()["applicant"]["holder_id"] == "4453**********1234"
    assert seen.json()["verification_code"] is None


async def test_the_public_status_query_shows_no_personal_data(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens, phone="13812345678")
    app = await complete_draft(intake, me, item["code"], channel="window")
    submitted = (await submit(intake, me, app["id"])).json()
    await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    receipt, code = submitted["receipt_number"], submitted["verification_code"]
    r = await intake.client.get(f"{BASE}/status/{receipt}", params={"code": code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["item_name"] == "食品经营许可" and body["handling_unit"] == "LD-SCJGJ"
    assert [s["step"] for s in body["timeline"]][-1] == "受理"
    for secret in (f.ID_NUMBER, "4453", "张三", "13812345678", "李窗口", "0766-3822000", app["applicant"]["id"]):
        assert secret not in r.text
    wrong = "000000" if code != "000000" else "111111"
    r = await intake.client.get(f"{BASE}/status/{receipt}", params={"code": wrong})
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await intake.client.get(f"{BASE}/status/{receipt}")
    assert r.status_code == 422 and ("query.code", "missing") in fields(r.json())
    assert (await intake.client.get(f"{BASE}/status/{receipt}", params={"code": "12ab56"})).status_code == 422


async def test_my_lists_page_with_a_cursor_and_filter_drafts(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    ids = [(await draft(intake, me, item["code"]))["id"] for _ in range(3)]
    page1 = (await intake.client.get(f"{BASE}/me/drafts", headers=me, params={"limit": 2})).json()
    page2 = (await intake.client.get(f"{BASE}/me/drafts", headers=me,
                                     params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    assert [a["id"] for a in page1["items"] + page2["items"]] == list(reversed(ids)) and page2["next_cursor"] is None
    bad = await intake.client.get(f"{BASE}/me/applications", headers=me, params={"cursor": "!!"})
    assert bad.status_code == 422 and ("query.cursor", "cursor") in fields(bad.json())
    bad = await intake.client.get(f"{BASE}/me/applications", headers=me, params={"status": "lost"})
    assert bad.status_code == 422
    queue = (await intake.client.get(f"{BASE}/queue", headers=f.clerk(tokens))).json()
    assert all(a["status"] in ("submitted", "awaiting_pickup") for a in queue["items"])


async def test_a_delegate_acts_only_within_the_delegations_items_and_until_it_is_revoked(intake, tokens):
    covered = await intake.publish_item(f.food_permit_item())
    uncovered = await intake.publish_item(f.food_permit_item())
    principal, agent, delegation = "owner-d", "agent-d", "dlg-" + covered["code"][-6:]
    data = {"delegation_id": delegation, "principal": {"kind": "person", "id": principal}, "agent_id": agent,
            "items": [covered["code"]], "valid_until": "2030-01-01T00:00:00+00:00"}
    await intake.bus.publish(new_event("yimen.identity.delegation.granted", source="/yimen/identity",
                                       subject=delegation, data=data))
    delegate = f.citizen(tokens, sub=agent, act={"sub": principal, "kind": "person", "hid": f.ID_NUMBER,
                                                 "delegation": delegation})

    async def known():
        r = await intake.client.post(f"{BASE}/applications", headers=delegate, json={
            "item_code": uncovered["code"], "channel": "online", "service_point": "LD-CENTRE"})
        return r if r.status_code == 403 else None

    refused = await eventually(known)
    assert refused.headers["content-type"] == PROBLEM and "cover" in refused.json()["detail"]
    app = await draft(intake, delegate, covered["code"])
    assert app["applicant"]["id"] == principal and app["applicant"]["agent_id"] == agent
    await intake.bus.publish(new_event("yimen.identity.delegation.revoked", source="/yimen/identity",
                                       subject=delegation, data=data))

    async def gone():
        r = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=delegate)
        return r.status_code == 404

    await eventually(gone)
    # The principal still sees their own application; the agent's plain token never did.
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=f.citizen(tokens, sub=principal))).status_code == 200
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=f.citizen(tokens, sub=agent))).status_code == 404


async def test_a_window_clerk_may_run_the_check_and_fetch_for_a_walk_in_applicant(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await draft(intake, me, item["code"], channel="window")
    clerk = f.clerk(tokens)
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=clerk)
    assert r.status_code == 200, r.text
    assert {m["code"]: m["provided"] for m in r.json()["materials"]}["M01"] == "fetched"
    asked = [q for q in intake.datashare.requests if q["application_id"] == app["id"]]
    assert asked and all(q["authorization"] == clerk["Authorization"] for q in asked)
    reviewer = tokens.headers("rv", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    other = await draft(intake, me, item["code"])
    r = await intake.client.post(f"{BASE}/applications/{other['id']}/check", headers=reviewer)
    assert r.status_code == 200
    assert not [q for q in intake.datashare.requests if q["application_id"] == other["id"]]
    outsider = f.clerk(tokens, point="LD-SD", dept="LD-MZJ")
    assert (await intake.client.post(f"{BASE}/applications/{other['id']}/check", headers=outsider)).status_code == 404


async def test_department_steps_show_a_contact_and_unknown_outcomes_become_steps_not_dead_letters(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    receipt = (await submit(intake, me, app["id"])).json()["receipt_number"]
    now = datetime.now(UTC).isoformat()
    common = {"receipt_number": receipt, "step_key": "joint", "reasons": None, "legal_basis": None, "missing": [],
              "deemed": False, "decided_at": now}
    await intake.bus.publish(_workflow("yimen.workflow.task.decided", app["id"], task_id="t-lead", department="LD-SCJGJ",
                                       outcome="approve", decided_by={"kind": "staff", "id": "x", "name": "赵审查"}, **common))
    await intake.bus.publish(_workflow("yimen.workflow.task.decided", app["id"], task_id="t-fire", department="LD-XFJ",
                                       outcome="deemed_approve", decided_by=None, **common))

    async def both():
        got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
        steps = {t["step"]: t for t in got["timeline"]}
        return steps if {"部门审查通过", "部门审查：deemed_approve"} <= set(steps) else None

    steps = await eventually(both)
    lead = steps["部门审查通过"]
    assert (lead["unit"], lead["staff_name"], lead["staff_contact"]) == ("LD-SCJGJ", "赵审查", "0766-3888888")
    assert steps["部门审查：deemed_approve"]["unit"] == "LD-XFJ"
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
    assert got["status"] == "in_review"


async def test_files_are_downloadable_by_the_applicant_and_the_departments_reviewing_the_item(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    await submit(intake, me, app["id"])
    got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
    plan = next(m for m in got["materials"] if m["material_code"] == "M03")
    url = f"{BASE}/applications/{app['id']}/materials/{plan['id']}/file"
    r = await intake.client.get(url, headers=me)
    assert r.status_code == 200 and r.content == f.PDF and r.headers["content-type"] == "application/pdf"
    parallel_reviewer = tokens.headers("h1", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    assert (await intake.client.get(url, headers=parallel_reviewer)).content == f.PDF
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=parallel_reviewer)).status_code == 200
    health_clerk = f.clerk(tokens, point="LD-SD", dept="LD-WJJ")
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=health_clerk)
    assert r.status_code == 403  # reviewing in parallel reads the case; accepting it is the item's department's
    unrelated = tokens.headers("m1", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    assert (await intake.client.get(url, headers=unrelated)).status_code == 404
    assert (await intake.client.get(url, headers=f.citizen(tokens, hid="445381198502020021"))).status_code == 404
    other = await draft(intake, me, item["code"])
    r = await intake.client.get(f"{BASE}/applications/{other['id']}/materials/{plan['id']}/file", headers=me)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


async def test_the_verification_code_cannot_be_guessed_through_the_public_query(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    body = (await submit(intake, me, app["id"])).json()
    receipt, code = body["receipt_number"], body["verification_code"]
    url = f"{BASE}/status/{receipt}"
    app_asgi = intake.client._transport.app  # the started app, reached from two client addresses
    guesser = httpx.AsyncClient(transport=httpx.ASGITransport(app=app_asgi, client=("203.0.113.7", 40000)),
                                base_url="http://test")
    owner = httpx.AsyncClient(transport=httpx.ASGITransport(app=app_asgi, client=("198.51.100.20", 40000)),
                              base_url="http://test")
    async with guesser, owner:
        wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 11)]
        for guess in wrong:
            r = await guesser.get(url, params={"code": guess})
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        # The guesser's address is stopped, right code or not, and learns nothing more ...
        for guess in (wrong[0], code):
            r = await guesser.get(url, params={"code": guess})
            assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
            assert 3500 <= int(r.headers["retry-after"]) <= 3600
        r = await guesser.get(f"{BASE}/status/NOSUCHRECEIPT1", params={"code": code})
        assert r.status_code == 429
        # ... while the owner, from their own address, still follows the case (12 wrong codes used to lock it).
        r = await owner.get(url, params={"code": code})
        assert r.status_code == 200 and r.json()["receipt_number"] == receipt
