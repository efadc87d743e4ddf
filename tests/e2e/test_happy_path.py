"""The happy path across all six services as real processes, with the simulator as the departments, and
the negative paths a hostile or mistaken user tries on the same case."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from standardwebhooks import Webhook

from deploy.demo import HappyPath, citizen_id, credit_code, expect

pytestmark = pytest.mark.e2e

CORRECTING = "LD-WJJ"
SILENT = "LD-STHJJ"


@pytest.fixture(scope="module")
def path(platform):
    p = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                  seed=20161)
    return p


@pytest.fixture(scope="module")
def decided(path):
    """Steps 1–5: catalogue, people, company, one-time notice, submission, parallel approval with a correction."""
    path.admin_and_catalogue()
    path.people_and_company()
    expect(path.http.put(f"/simulator/v1/departments/{CORRECTING}/rule",
                         json={"mode": "correct_once", "delay_seconds": 0.5, "channel": "bus"},
                         headers=path.admin_headers), 200)
    path.facts["correcting_department"] = CORRECTING
    notice = path.draft_and_check()
    first, second = path.complete_and_submit()
    app = path.parallel_approval()
    expect(path.http.put(f"/simulator/v1/departments/{CORRECTING}/rule",
                         json={"mode": "approve", "delay_seconds": 0.5}, headers=path.admin_headers), 200)
    return {"notice": notice, "first": first, "second": second, "app": app}


def test_the_item_runs_in_parallel_over_three_or_more_departments_with_a_datashare_and_a_commitment_material(path, decided):
    item = path.facts["permit"]
    parallel = path.facts["parallel"]
    assert len(parallel["departments"]) >= 3 and parallel["lead_department"] in parallel["departments"]
    sources = {m["source"] for m in item["materials"]}
    assert "certificate" in sources
    assert any(m["commitment_allowed"] for m in item["materials"])


def test_one_answer_lists_everything_and_the_certificate_is_fetched_not_asked(decided):
    notice = decided["notice"]
    assert notice["complete"] is False
    missing = {p["field"] for p in notice["problems"]}
    assert {"materials.floor_plan", "materials.food_safety_commitment"} <= missing
    by_code = {m["code"]: m for m in notice["materials"]}
    assert by_code["business_licence"]["provided"] == "fetched"
    assert "materials.business_licence" not in missing
    # The company's legal representative's identity comes from the registries (法人库 → 人口库), not the agent.
    assert by_code["legal_rep_id"]["provided"] == "fetched" and "materials.legal_rep_id" not in missing


def test_a_double_submit_with_one_key_is_one_application_with_a_receipt(decided):
    assert decided["first"] == decided["second"]
    assert decided["first"]["receipt_number"]


def test_the_stage_completed_once_after_a_correction_and_the_result_was_delivered(path, decided):
    case = path.facts["case"]
    assert case["outcome"] == "approved"
    stage = next(s for s in case["stages"] if s["kind"] == "parallel")
    assert stage["completed_at"] and stage["outcome"] == "approved"
    departments = [t["department"] for t in stage["tasks"]]
    assert sorted(departments) == sorted(set(departments)), "one task per department"
    assert all(t["outcome"] == "approve" for t in stage["tasks"])
    app = decided["app"]
    assert app["status"] in ("delivered", "closed")
    assert app["result"]["type_code"] == "11441781MB0000001A002"
    assert path.facts["clock_paused"] == "paused"
    steps = [t["status"] for t in app["timeline"]]
    assert "awaiting_correction" in steps and "delivered" in steps
    # The certificate carries its data: the holder's name and every field its type requires, from the form.
    cert = path.http.get(f"/datashare/v1/certificates/{app['result']['certificate_number']}",
                         headers=path.agent.headers)
    assert cert.status_code == 200, cert.text
    assert cert.json()["holder_name"] and cert.json()["fields"]["name"] == path.company_name
    assert cert.json()["fields"]["address"] == app["form"]["business_address"]


def test_timeline_public_status_and_access_log(path, decided):
    seen = path.transparency()
    for step in seen["application"]["timeline"]:
        assert step["at"] and step["unit"] and step["code"] and step["unit_name"], step
    timeline = seen["application"]["timeline"]
    assert [t["at"] for t in timeline] == sorted(t["at"] for t in timeline), "in time order"
    assigned = [t for t in timeline if t["code"] == "task_assigned"]
    assert len({t["unit"] for t in assigned}) >= 4, "every department of the parallel stage is shown"
    public = json.dumps(seen["public"], ensure_ascii=False)
    for secret in (path.agent.id_number, path.owner.id_number, path.agent.name, path.owner.name, "13800138000"):
        assert secret not in public
    fetches = [e for e in seen["access_log"] if e["application_id"] == path.app_id]
    assert any(e["target"].startswith("certificate-type:") and e["outcome"] == "found" for e in fetches)
    assert all(e["purpose"] for e in fetches), "every read of the company's data says why"


def test_rating_figures_and_the_clock(path, decided):
    out = path.rating_and_figures()
    clock = out["clock"]["application"]
    assert clock["state"] == "stopped" and clock["elapsed_workdays"] >= 0
    assert clock["pauses"], "the correction paused the clock"
    figures = {f["key"]: f for f in out["kpis"]["figures"]}
    assert figures["online_application_rate"]["numerator"] >= 1
    assert figures["online_completion_rate"]["numerator"] >= 1
    assert figures["zero_visit_rate"]["numerator"] >= 1


def test_a_second_application_reuses_the_first_and_the_new_certificate(path, decided):
    out = path.reuse()
    by_code = {m["code"]: m for m in out["notice"]["materials"]}
    assert by_code["food_permit"]["provided"] == "fetched"
    assert out["prefill"]


def test_a_department_that_never_answers_gets_yellow_then_red_and_supervision(path, decided):
    # The rules are an admin's: without a token the simulator refuses (through the gateway as anywhere).
    assert path.http.put(f"/simulator/v1/departments/{SILENT}/rule", json={"mode": "never"}).status_code == 401
    expect(path.http.put(f"/simulator/v1/departments/{SILENT}/rule", json={"mode": "never"},
                         headers=path.admin_headers), 200)
    try:
        out = path.cards(SILENT)
    finally:
        path.http.put(f"/simulator/v1/departments/{SILENT}/rule", json={"mode": "approve", "delay_seconds": 0.5},
                      headers=path.admin_headers)
    case_cards = {day: [c["colour"] for c in found if not c.get("task_id")] for day, found in out["cards"].items()}
    assert case_cards == {"yellow": ["yellow"], "red": ["red"]}, "the case itself: yellow before, red after"
    silent_tasks = [c for c in out["cards"]["red"] if c.get("task_id")]
    assert {c["department"] for c in silent_tasks} == {SILENT}, "only the silent department's task is overdue"
    assert any(s["application_id"] == out["application"]["id"] for s in out["supervision"]["items"])


# ---- negative paths on the same case -----------------------------------------------------------------------

def test_people_and_company_are_registry_verified_and_a_level_1_account_cannot_submit(path, decided):
    assert path.facts["assurance_levels"] == [2, 2], "both people matched against the population registry"
    out = path.unverified_is_refused()
    assert out["person"]["assurance_level"] == 1 and out["person"]["assurance_note"]
    assert out["refusal"]["type"].endswith("/assurance-level-too-low") and out["refusal"]["required_level"] == 2
    assert path.application(path.agent, path.app_id)["status"] in ("delivered", "closed")


def test_someone_elses_number_or_company_is_refused_at_registration(path, decided):
    """Issue #13's findings, through the gateway: a valid ID number with another name, and a credit code whose
    legal representative is someone else."""
    r = path.http.post("/identity/v1/people", json={"name": "冒名者", "id_number": path.owner.id_number,
                                                      "phone": "13600136000", "password": "copycat-lantern-42"})
    assert r.status_code in (409, 422)  # the owner is registered already; either way nobody new becomes them
    second = credit_code(path.rng)
    expect(path.http.post("/datashare/v1/registries/legal-persons/imports", headers=path.admin_headers, json=[{
        "credit_code": second, "name": "罗定市第二分店", "legal_representative_id": path.owner.id_number}]), 200)
    agent = {"Authorization": f"Bearer {path.login(path.agent.id_number, path.agent.password)}"}
    squat = path.http.post("/identity/v1/organisations", headers=agent, json={
        "name": "罗定市第二分店", "credit_code": second, "legal_representative_id_number": path.agent.id_number})
    assert squat.status_code == 403 and squat.json()["type"].endswith("/not-legal-representative"), squat.text


def test_a_password_change_ends_earlier_tokens_at_every_service(path, decided):
    suffix = path.rng.randrange(1000, 9999)
    person = {"name": f"改密{suffix}", "id_number": citizen_id("19930303", path.rng), "phone": "13500135000",
              "password": f"first-harbor-{suffix}"}
    expect(path.http.post("/datashare/v1/registries/population/imports", headers=path.admin_headers,
                          json=[{"id_number": person["id_number"], "name": person["name"]}]), 200)
    expect(path.http.post("/identity/v1/people", json=person), 201)
    old = {"Authorization": f"Bearer {path.login(person['id_number'], person['password'])}"}
    routes = ["/identity/v1/me", "/datashare/v1/me/access-log", "/intake/v1/me/applications"]
    assert all(path.http.get(r, headers=old).status_code == 200 for r in routes)
    expect(path.http.post("/identity/v1/me/password", headers=old, json={
        "current_password": person["password"], "new_password": f"second-meadow-{suffix}"}), 204)
    new = {"Authorization": f"Bearer {path.login(person['id_number'], f'second-meadow-{suffix}')}"}
    path.wait_for("every service to refuse the old token",
                  lambda: all(path.http.get(r, headers=old).status_code == 401 for r in routes), timeout=15)
    assert all(path.http.get(r, headers=new).status_code == 200 for r in routes)


def test_another_citizen_cannot_see_the_case(path, decided):
    stranger_id = citizen_id("20000202", path.rng)
    expect(path.http.post("/identity/v1/people", json={
        "name": "路人", "id_number": stranger_id, "phone": "13700137000", "password": "stranger-pass-1"}), 201)
    token = path.login(stranger_id, "stranger-pass-1")
    h = {"Authorization": f"Bearer {token}"}
    assert path.http.get(f"/intake/v1/applications/{path.app_id}", headers=h).status_code in (403, 404)
    assert path.http.get(f"/workflow/v1/cases/{path.app_id}", headers=h).status_code in (403, 404)
    assert path.http.get(f"/efficacy/v1/clocks/{path.app_id}", headers=h).status_code in (403, 404)
    r = path.http.get(f"/intake/v1/status/{path.receipt}", params={"code": "000000"})
    assert r.status_code == 404


def _department_token(path, department: str) -> str:
    client = expect(path.http.post("/identity/v1/department-clients", headers=path.admin_headers,
                                   json={"department": department, "name": f"e2e {department}"}), 201)
    r = path.http.post("/identity/v1/token", data={
        "grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": client["client_secret"]})
    return expect(r, 200)["access_token"]


def test_a_department_cannot_decide_another_departments_task_and_a_closed_task_is_409(path, decided):
    stage = next(s for s in path.facts["case"]["stages"] if s["kind"] == "parallel")
    fire_task = next(t for t in stage["tasks"] if t["department"] == "LD-XFJ")
    health = {"Authorization": f"Bearer {_department_token(path, 'LD-WJJ')}"}
    fire = {"Authorization": f"Bearer {_department_token(path, 'LD-XFJ')}"}
    body = {"outcome": "approve", "reasons": ["ok"]}
    r = path.http.post(f"/workflow/v1/tasks/{fire_task['id']}/decision", headers=health, json=body)
    assert r.status_code in (403, 404) and r.headers["content-type"] == "application/problem+json"
    r = path.http.post(f"/workflow/v1/tasks/{fire_task['id']}/decision", headers=fire, json=body)
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"


def test_an_unsigned_or_tampered_webhook_is_refused(path, decided):
    event = {"specversion": "1.0", "id": "forged-1", "source": "/yimen/workflow", "type": "yimen.workflow.task.assigned",
             "data": {"task_id": "nope", "application_id": path.app_id, "department": "LD-XFJ"}}
    r = path.http.post("/simulator/v1/webhooks/LD-XFJ", json=event)
    assert r.status_code in (400, 401)
    wh = Webhook("whsec_" + "A" * 32)
    ts = int(time.time())
    payload = json.dumps(event)
    forged = {"webhook-id": "msg_forged", "webhook-timestamp": str(ts),
              "webhook-signature": wh.sign("msg_forged", __import__("datetime").datetime.fromtimestamp(ts), payload)}
    r = path.http.post("/simulator/v1/webhooks/LD-XFJ", content=payload,
                       headers={**forged, "content-type": "application/json"})
    assert r.status_code in (400, 401)
    decisions = httpx.get(f"{path.base}/simulator/v1/decisions").json()["items"]
    assert not any(d.get("task_id") == "nope" for d in decisions)
