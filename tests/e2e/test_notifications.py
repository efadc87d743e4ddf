"""Notify across the real platform: the SMS the applicant receives at acceptance, at a department's correction
request and at delivery (through the simulator's sandbox SMS gateway), and a front end's live stream (SSE)
receiving the case's steps through the gateway as they happen."""

from __future__ import annotations

import pytest

from deploy.demo import HappyPath, expect

pytestmark = pytest.mark.e2e

CORRECTING = "LD-WJJ"


@pytest.fixture(scope="module")
def told(platform):
    path = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                     seed=20164)
    path.admin_and_catalogue()
    path.people_and_company()
    expect(path.http.put(f"/simulator/v1/departments/{CORRECTING}/rule",
                         json={"mode": "correct_once", "delay_seconds": 0.5, "channel": "bus"},
                         headers=path.admin_headers), 200)
    path.facts["correcting_department"] = CORRECTING
    try:
        live = path.follow_live()
        path.draft_and_check()
        path.complete_and_submit()
        # The case cannot be delivered before the agent answers the correction (inside parallel_approval):
        # seeing `accepted` now proves the gateway passes the stream on as it comes, unbuffered.
        path.wait_for("the accepted step on the live stream", lambda: "accepted" in live.steps(), timeout=30)
        accepted_seen = len(live.events)
        path.parallel_approval()
    finally:
        expect(path.http.put(f"/simulator/v1/departments/{CORRECTING}/rule",
                             json={"mode": "approve", "delay_seconds": 0.5}, headers=path.admin_headers), 200)
    result = path.notifications()
    result.update(path=path, accepted_seen=accepted_seen)
    return result


def test_the_applicant_gets_an_sms_at_acceptance_correction_and_delivery_and_no_id_number(told):
    sms = told["sms"]
    assert "已受理" in sms["application_accepted"]["content"]
    assert "要求补正" in sms["correction_requested"]["content"]
    assert "罗定市卫生健康局" in sms["correction_requested"]["content"]
    assert "送达" in sms["application_delivered"]["content"]
    path = told["path"]
    for s in sms.values():
        assert s["to"] == "138****8000" and s["receipt"] == "delivered"
        assert s["content"].startswith("【罗定政务】") and len(s["content"]) <= 70
        assert path.agent.id_number not in s["content"] and path.company not in s["content"]


def test_each_message_is_sent_once_and_its_status_is_visible_to_the_applicant(told):
    path = told["path"]
    items = expect(path.http.get("/notify/v1/me/notifications", headers=path.agent.headers,
                                 params={"limit": 100}), 200)["items"]
    mine = [i for i in items if i["application_id"] == path.app_id]
    kinds = [i["kind"] for i in mine]
    assert sorted(set(kinds)) == sorted(kinds), "one inbox message per kind"
    assert {"application_accepted", "correction_requested", "application_decided", "application_delivered",
            "rating_invited"} <= set(kinds)
    sms_id = next(c["message_id"] for i in mine if i["kind"] == "application_accepted" for c in i["channels"]
                  if c["channel"] == "sms")
    message = expect(path.http.get(f"/notify/v1/messages/{sms_id}", headers=path.agent.headers), 200)
    assert message["status"] == "delivered" and message["destination"] == "138****8000"
    assert path.http.get(f"/notify/v1/messages/{sms_id}", headers=path.owner.headers).status_code == 404
    got = expect(path.http.get("/simulator/v1/sms", params={"reference": sms_id}), 200)["items"]
    assert len(got) == 1


def test_the_front_end_stream_receives_the_case_steps_as_they_happen(told):
    steps = told["steps"]
    assert steps[0] in ("submitted", "accepted") and steps[-1] == "delivered"
    for step in ("accepted", "task_assigned", "task_request_correction", "decided", "delivered"):
        assert step in steps, steps
    assert steps.index("accepted") < steps.index("task_request_correction") < steps.index("decided")
    # The agent follows both their own and their company's cases: still each step once.
    assert steps.count("accepted") == steps.count("decided") == steps.count("delivered") == 1
    assert told["accepted_seen"] < len(steps)
    ids = [int(e["id"]) for e in told["events"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    path = told["path"]
    assert all(e["data"]["application_id"] == path.app_id for e in told["events"])
