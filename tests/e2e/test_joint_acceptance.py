"""竣工联合验收 through the real platform (issue 17): an organisation applies, the simulator's departments take part
in the joint acceptance by webhook (the lead schedules and consolidates, each participant gives its opinion), one
department fails a point, the owner corrects once, the re-inspection covers only that point and passes, and the
decision is issued."""

from __future__ import annotations

import hashlib

import pytest

from deploy.demo import PDF, HappyPath, expect

pytestmark = pytest.mark.e2e

FAILING = "LD-XFJ"
POINT = "消防车通道"


@pytest.fixture(scope="module")
def path(platform):
    p = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                  seed=20170)
    p.admin_and_catalogue()
    p.people_and_company()
    return p


def _upload(path: HappyPath, app_id: str, code: str, body: bytes) -> None:
    expect(path.http.post(f"/intake/v1/applications/{app_id}/materials", headers=path.agent.headers,
                          data={"material_code": code, "sha256": hashlib.sha256(body).hexdigest()},
                          files={"file": (f"{code}.pdf", body, "application/pdf")}), 201)


def test_a_joint_acceptance_fails_one_point_is_corrected_reinspected_and_decided(path):
    expect(path.http.put(f"/simulator/v1/departments/{FAILING}/rule", headers=path.admin_headers,
                         json={"mode": "fail_point_once", "point": POINT, "delay_seconds": 0.3}), 200)
    try:
        items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
        code = next(i["code"] for i in items if i["name"] == "竣工联合验收")
        item = expect(path.http.get(f"/catalog/v1/items/{code}"), 200)
        step = next(s for s in item["process"]["steps"] if s["kind"] == "joint_review")
        assert step["review_kind"] == "acceptance" and step["lead_department"] == "LD-ZJJ"

        app = expect(path.http.post("/intake/v1/applications", headers=path.agent.headers, json={
            "item_code": code, "channel": "online", "service_point": "LD-CENTRE",
            "form": {"project_name": "罗定某厂新建厂房", "project_code": "2026-441781-04-01-123456",
                     "construction_site": "罗定市素龙街道工业园8号", "applicant_name": path.agent.name,
                     "phone": "13800138000"}}), 201)
        app_id = app["id"]
        _upload(path, app_id, "completion_report", PDF)
        expect(path.http.post(f"/intake/v1/applications/{app_id}/submit", headers=path.agent.headers), 200, 201)

        # Round 1: the lead scheduled, every department gave its opinion, the lead consolidated; the failed point
        # came back to the owner as one notice.
        def awaiting():  # type: ignore[no-untyped-def]
            a = path.application(path.agent, app_id)
            return a if a["status"] == "awaiting_correction" else None

        waiting = path.wait_for("the joint acceptance's correction notice", awaiting, timeout=90)
        assert any(POINT in str(n.get("message")) for n in waiting["notice"]), waiting["notice"]
        reviews = expect(path.http.get("/workflow/v1/joint-reviews", params={"application_id": app_id},
                                       headers=path.agent.headers), 200)
        assert len(reviews) == 1
        review = reviews[0]
        first = review["rounds"][0]
        assert review["state"] == "awaiting_correction" and first["result"] == "correction_required"
        assert sorted(first["participants"]) == sorted(step["departments"]) and first["mode"] == "on_site"
        by_dept = {o["department"]: o for o in first["opinions"]}
        assert by_dept[FAILING]["verdict"] == "fail" and by_dept[FAILING]["failed_points"][0]["point"] == POINT
        assert all(o["verdict"] == "pass" for d, o in by_dept.items() if d != FAILING)

        # The owner corrects once; the re-inspection covers that point only, with only the department that failed it.
        _upload(path, app_id, "completion_report", PDF + b"% corrected\n")
        expect(path.http.post(f"/intake/v1/applications/{app_id}/corrections", headers=path.agent.headers,
                              json={}), 200, 201, 202)

        def decided():  # type: ignore[no-untyped-def]
            a = path.application(path.agent, app_id)
            return a if a["status"] in ("approved", "delivered", "closed") else None

        done = path.wait_for("the re-inspection and the decision", decided, timeout=90)
        review = expect(path.http.get(f"/workflow/v1/joint-reviews/{review['id']}", headers=path.agent.headers), 200)
        assert review["state"] == "passed" and review["result"] == "passed"
        second = review["rounds"][1]
        assert second["reinspection"] and second["participants"] == [FAILING] == second["eligible"]
        assert [p["point"] for p in second["points"]] == [POINT]
        assert [(o["department"], o["verdict"]) for o in second["opinions"]] == [(FAILING, "pass")]
        case = expect(path.http.get(f"/workflow/v1/cases/{app_id}", headers=path.agent.headers), 200)
        assert case["outcome"] == "approved"
        assert done["outcome"] == "approved"
        # The simulated lead consolidated by webhook, as a department system would.
        decisions = expect(path.http.get("/simulator/v1/decisions", params={"application_id": app_id}), 200)["items"]
        assert any(d["step_key"] == "joint_review:consolidation" for d in decisions)
    finally:
        path.http.put(f"/simulator/v1/departments/{FAILING}/rule", headers=path.admin_headers,
                      json={"mode": "approve", "delay_seconds": 2})
