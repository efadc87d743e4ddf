"""At the counter and after (#15), across the running platform: a receipt slip printed, a fee paid through the
payment platform's signed confirmation, a result collected at a town point (异地领取), and every demo
immediate item (即办件) ending in `delivered` with its certificate or document."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from deploy.demo import HappyPath, apply_and_hand_in, at_the_counter, clerk, expect, pay

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def path(platform):
    p = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                  seed=20162)
    p.admin_and_catalogue()
    p.people_and_company()
    return p


@pytest.fixture(scope="module")
def counter(path):
    return at_the_counter(path)


def test_the_receipt_slip_prints_as_html_and_pdf(path, counter):
    app = counter["application"]
    code = path.application(path.owner, app["id"])["verification_code"]
    assert counter["slip"].status_code == 200 and counter["slip"].headers["content-type"].startswith("text/html")
    assert app["receipt_number"] in counter["slip"].text and code and code in counter["slip"].text
    assert "承诺办结日期" in counter["slip"].text
    assert counter["pdf"].headers["content-type"] == "application/pdf" and counter["pdf"].content.startswith(b"%PDF-")


def test_the_fee_was_asked_after_the_decision_and_paid_once(path, counter):
    app = counter["application"]
    assert app["status"] == "awaiting_payment" and app["outcome"] == "approved"
    assert app["id"] in {u["application_id"] for u in counter["unpaid"]}
    assert counter["paid"]["notified"] == "confirmed" and counter["paid"]["intake_answer"] == {"status": "paid"}
    assert counter["retried"]["intake_answer"] == {"status": "duplicate"}
    final = path.application(path.owner, app["id"])
    assert final["payment"]["status"] == "paid" and final["payment"]["amount"] == "10.00"
    assert sum(t["step"] == "已缴费" for t in final["timeline"]) == 1


def test_the_result_was_collected_at_the_town_point(path, counter):
    assert counter["queued"][0]["service_point"] == "LD-LC" and counter["queued"][0]["handed_in_at"] == "LD-CENTRE"
    done = counter["delivered"]
    assert done["status"] == "delivered" and done["result"]["document_number"]
    assert done["timeline"][-1]["unit"] == "LD-LC"


def test_a_forged_or_unsigned_payment_confirmation_is_refused(path, counter):
    body = {"payment_code": counter["paid"]["payment_code"], "amount": "10.00",
            "paid_at": datetime.now(UTC).isoformat(), "transaction_id": "FORGED"}
    raw = json.dumps(body)
    ts = int(time.time())
    forged = Webhook("whsec_" + "Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2VkLTEy").sign("msg_forged", datetime.fromtimestamp(ts, UTC), raw)
    r = path.http.post("/intake/v1/payments/notifications", content=raw, headers={
        "webhook-id": "msg_forged", "webhook-timestamp": str(ts), "webhook-signature": forged,
        "content-type": "application/json"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert path.http.post("/intake/v1/payments/notifications", json=body).status_code == 401


def test_another_points_clerk_sees_neither_the_queue_nor_may_hand_it_over(path, counter):
    other = clerk(path, "LD-SL")
    r = path.http.get("/intake/v1/points/LD-LC/collections", headers=other.headers)
    assert r.status_code == 403


def test_every_demo_immediate_item_runs_to_delivered_with_its_certificate_or_document(path):
    items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
    immediate = [i for i in (expect(path.http.get(f"/catalog/v1/items/{x['code']}"), 200) for x in items)
                 if i["case_kind"] == "immediate"]
    assert len(immediate) >= 5
    centre = clerk(path, "LD-CENTRE")
    started = {}
    for item in immediate:
        app = apply_and_hand_in(path, path.owner, item["code"], by=centre)
        assert app["outcome"] == "approved", (item["name"], app["status"])
        if item["fees"]["charged"]:
            pay(path, path.owner, app["id"])
        started[item["name"]] = (item, app["id"])
    for name, (item, app_id) in started.items():
        done = path.wait_for(f"{name} delivered",
                             lambda app_id=app_id: (a := path.application(path.owner, app_id))["status"] == "delivered" and a)
        result = done["result"]
        if item["result"]["type"] == "certificate":
            assert result["certificate_number"] and result["type_code"] == item["result"]["certificate_type"], name
        else:
            assert result["document_number"] and result["name"], name
        # Decided once: at acceptance, never again by a department.
        # Workflow records the decision from intake's acceptance event, on its own consumer: a written result
        # can be delivered before it has, so wait for the record rather than read it once.
        case = path.wait_for(f"workflow's record of {name}", lambda app_id=app_id: (
            r := path.http.get(f"/workflow/v1/cases/{app_id}", headers=path.admin_headers)).status_code == 200
            and r.json())
        assert case["outcome"] == "approved" and all(not s["tasks"] for s in case["stages"]), name
