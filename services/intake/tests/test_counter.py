"""At the counter and after, through the running service: the points an item is offered at, where the result
goes (异地领取, 邮寄), immediate items ending in `delivered`, fees with the payment platform's signed
confirmation, and the receipt slip (受理回执)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from services.intake.config import IntakeConfig
from services.intake.tests import factories as f
from shared.events import new_event
from shared.testing import eventually

BASE = "/intake/v1"
PROBLEM = "application/problem+json"
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw=="

POINTS = [
    {"code": "LD-CENTRE", "name": "罗定市政务服务中心", "level": "city"},
    {"code": "LD-LC", "name": "罗城街道党群服务中心", "level": "town"},
    {"code": "LD-LC-01", "name": "罗城街道龙华社区党群服务站", "level": "village"},
    {"code": "LD-SL", "name": "素龙街道党群服务中心", "level": "town"},
]
FEE = {"charged": True, "waivable": True, "note": None, "items": [
    {"name": "居民身份证工本费", "standard": "20 元/证", "basis": "发改价格〔2003〕2322号", "amount": "20.00",
     "exemptions": [{"code": "first_application", "name": "首次申领居民身份证", "basis": "《居民身份证法》第二十条",
                     "proof": None}]}]}


@pytest.fixture(autouse=True)
def payment_secret(intake):
    intake.client.app.state.ctx.extras["config"] = IntakeConfig(payment_webhook_secret=SECRET)


def item_with_points(**overrides):
    """An item as catalog publishes it now: points resolved through the tree (LD-LC brings its village)."""
    values = {"offered_at": POINTS[:3], "collect_at": POINTS, "fully_online": True,
              "result": {"type": "document", "certificate_type": None, "name": "办理结果通知书"}, **overrides}
    return f.simple_item(**values)


async def draft(h, headers, code, **body):
    body = {"item_code": code, "channel": "online", "service_point": "LD-CENTRE",
            "form": {"shop_name": "罗城小厨"}, **body}
    return await h.client.post(f"{BASE}/applications", json=body, headers=headers)


async def submitted(h, headers, code, **body):
    r = await draft(h, headers, code, **body)
    assert r.status_code == 201, r.text
    app = r.json()
    up = await h.client.post(f"{BASE}/applications/{app['id']}/materials", headers=headers,
                             data={"material_code": "M03"}, files={"file": ("plan.pdf", f.PDF[:900], "application/pdf")})
    assert up.status_code == 201, up.text
    r = await h.client.post(f"{BASE}/applications/{app['id']}/submit", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def read(h, headers, app_id):
    return (await h.client.get(f"{BASE}/applications/{app_id}", headers=headers)).json()


async def in_state(h, headers, app_id, status):
    app = await read(h, headers, app_id)
    return app if app["status"] == status else None


def decided(app, outcome="approved"):
    return new_event("yimen.workflow.application.decided", source="/yimen/workflow", subject=app["id"], data={
        "application_id": app["id"], "receipt_number": app["receipt_number"], "outcome": outcome,
        "decided_at": datetime.now(UTC).isoformat(), "department": "LD-SCJGJ"})


def fields(problem):
    return {(e["field"], e["rule"]) for e in problem["errors"]}


def signed(body: dict, msg_id: str, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = int(time.time())
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), raw.decode())
    return raw, {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig,
                 "content-type": "application/json"}


async def notify(h, body, msg_id, secret=SECRET):
    raw, headers = signed(body, msg_id, secret)
    return await h.client.post(f"{BASE}/payments/notifications", content=raw, headers=headers)


# --- the service-point tree ---------------------------------------------------------------------------------------


async def test_a_village_under_an_offering_town_takes_the_item_and_unknown_or_unoffered_points_are_refused(intake, tokens):
    item = await intake.publish_item(item_with_points())
    me = f.citizen(tokens)
    assert (await draft(intake, me, item["code"], service_point="LD-LC-01")).status_code == 201
    for point in ("LD-NOWHERE", "LD-SL"):
        r = await draft(intake, me, item["code"], service_point=point)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        assert ("service_point", "service_point_not_offered") in fields(r.json())
    r = await draft(intake, me, item["code"], delivery={"method": "pickup", "service_point": "LD-NOWHERE"})
    assert ("delivery.service_point", "collection_not_offered") in fields(r.json())


async def test_an_appointment_slot_opens_only_where_the_item_is_offered(intake, tokens):
    item = await intake.publish_item(item_with_points())
    admin = tokens.headers("root", kind="staff", roles=["admin"])
    body = {"item_code": item["code"], "starts_at": "2026-12-01T09:00:00+08:00", "capacity": 2}
    r = await intake.client.post(f"{BASE}/appointment-slots", headers=admin, json={**body, "service_point": "LD-SL"})
    assert r.status_code == 422 and ("service_point", "service_point_not_offered") in fields(r.json())
    r = await intake.client.post(f"{BASE}/appointment-slots", headers=admin, json={**body, "service_point": "LD-LC-01"})
    assert r.status_code == 201, r.text


async def test_a_visit_is_recorded_at_the_clerks_own_point_never_the_one_the_client_names(intake, tokens):
    item = await intake.publish_item(item_with_points())
    app = await submitted(intake, f.citizen(tokens), item["code"])
    clerk = f.clerk(tokens, point="LD-LC")
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/visits", headers=clerk,
                                 json={"purpose": "核验原件", "service_point": "LD-CENTRE"})
    assert r.status_code == 422 and ("service_point", "not_your_point") in fields(r.json())
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/visits", headers=clerk, json={"purpose": "核验原件"})
    assert r.status_code == 201 and r.json()["service_point"] == "LD-LC"


# --- where the result goes --------------------------------------------------------------------------------------------


async def test_a_result_collected_at_another_point_waits_in_its_queue_and_its_clerk_hands_it_over(intake, tokens):
    item = await intake.publish_item(item_with_points(fully_online=False))
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"])
    # Changed after submission, before the result is ready: collect it in a town (异地领取).
    r = await intake.client.put(f"{BASE}/applications/{app['id']}/delivery", headers=me,
                                json={"method": "pickup", "service_point": "LD-SL"})
    assert r.status_code == 200, r.text
    assert r.json()["delivery"] == {**r.json()["delivery"], "method": "pickup", "service_point": "LD-SL",
                                    "service_point_name": "素龙街道党群服务中心", "changeable": True}
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    assert r.status_code == 200, r.text
    await intake.bus.publish(decided(app))
    ready = await eventually(lambda: in_state(intake, me, app["id"], "awaiting_pickup"))
    assert ready["result"]["document_number"] == f"{app['receipt_number']}-JG"
    event = (await intake.wait_event("yimen.intake.application.ready_for_collection", app["id"])).data
    assert event == {"application_id": app["id"], "receipt_number": app["receipt_number"],
                     "applicant": event["applicant"], "item_name": item["name"], "service_point": "LD-SL",
                     "service_point_name": "素龙街道党群服务中心"}
    assert event["applicant"]["kind"] == "person" and event["applicant"]["id"]
    # The result is ready: the choice is fixed now.
    r = await intake.client.put(f"{BASE}/applications/{app['id']}/delivery", headers=me, json={"method": "electronic"})
    assert r.status_code == 409 and r.json()["type"].endswith("delivery-fixed")
    town = f.clerk(tokens, point="LD-SL")
    queue = (await intake.client.get(f"{BASE}/points/LD-SL/collections", headers=town)).json()["items"]
    assert [c["application_id"] for c in queue if c["application_id"] == app["id"]] == [app["id"]]
    assert next(c for c in queue if c["application_id"] == app["id"])["handed_in_at"] == "LD-CENTRE"
    other = f.clerk(tokens, point="LD-LC")
    assert (await intake.client.get(f"{BASE}/points/LD-SL/collections", headers=other)).status_code == 403
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=other,
                                     json={"method": "pickup"})).status_code in (403, 404)
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=town, json={"method": "pickup"})
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    assert app["id"] not in {c["application_id"] for c in
                             (await intake.client.get(f"{BASE}/points/LD-SL/collections", headers=town)).json()["items"]}


async def test_by_post_the_clerk_records_carrier_and_tracking_number(intake, tokens):
    item = await intake.publish_item(item_with_points())
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"], delivery={"method": "post", "address": "罗定市罗城街道兴华路1号"})
    await intake.bus.publish(decided(app))
    await eventually(lambda: in_state(intake, me, app["id"], "awaiting_pickup"))
    clerk = f.clerk(tokens)
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=clerk, json={"method": "post"})
    assert r.status_code == 422 and {("body.carrier", "required"), ("body.tracking_number", "required")} <= fields(r.json())
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=clerk, json={"method": "pickup"})
    assert r.status_code == 422 and ("body.method", "not_chosen") in fields(r.json())
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/deliver", headers=clerk,
                                 json={"method": "post", "carrier": "中国邮政EMS", "tracking_number": "1171234567890"})
    assert r.status_code == 200, r.text
    assert r.json()["delivery"] == {**r.json()["delivery"], "carrier": "中国邮政EMS", "tracking_number": "1171234567890"}
    assert (await intake.wait_event("yimen.intake.application.delivered", app["id"])).data["method"] == "post"


# --- immediate items (即办件) -------------------------------------------------------------------------------------


async def test_an_immediate_item_is_decided_at_acceptance_and_delivered_with_its_document_and_a_later_decision_is_ignored(intake, tokens):
    item = await intake.publish_item(item_with_points(case_kind="immediate", fully_online=False))
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"])
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    assert r.json()["outcome"] == "approved" and r.json()["result"]["name"] == "办理结果通知书"
    # Workflow records the decision too; it changes nothing.
    await intake.bus.publish(decided(app, outcome="rejected"))
    await intake.wait_event("yimen.intake.application.delivered", app["id"])
    await eventually(lambda: intake.published("yimen.intake.application.delivered", app["id"]))
    final = await read(intake, me, app["id"])
    assert final["status"] == "delivered" and final["outcome"] == "approved"


async def test_an_immediate_item_with_a_certificate_is_delivered_once_datashare_issues_it(intake, tokens):
    item = await intake.publish_item(item_with_points(
        case_kind="immediate", fully_online=False,
        result={"type": "certificate", "certificate_type": f.FOOD_PERMIT, "name": "许可证"}))
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"])
    r = await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))
    assert r.json()["status"] == "decided"
    await intake.bus.publish(new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject="X", data={
        "certificate_number": "IMM-1", "type_code": f.FOOD_PERMIT, "application_id": app["id"]}))
    done = await eventually(lambda: in_state(intake, me, app["id"], "delivered"))
    assert done["result"]["certificate_number"] == "IMM-1"


# --- fees (收费) --------------------------------------------------------------------------------------------------


async def test_a_fee_is_asked_after_approval_and_delivery_waits_for_the_signed_confirmation(intake, tokens):
    item = await intake.publish_item(item_with_points(fees=FEE))
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"])
    await intake.bus.publish(decided(app))
    waiting = await eventually(lambda: in_state(intake, me, app["id"], "awaiting_payment"))
    notice = waiting["payment"]
    assert notice["amount"] == "20.00" and notice["status"] == "unpaid" and len(notice["payment_code"]) == 20
    requested = (await intake.wait_event("yimen.intake.payment.requested", app["id"])).data
    assert requested == {"application_id": app["id"], "receipt_number": app["receipt_number"],
                         "applicant": requested["applicant"], "item_name": item["name"], "amount": "20.00",
                         "payment_code": notice["payment_code"], "due_on": notice["due_on"]}
    unpaid = (await intake.client.get(f"{BASE}/payments/unpaid", headers=f.clerk(tokens))).json()["items"]
    mine = next(u for u in unpaid if u["payment_code"] == notice["payment_code"])
    assert mine["application_id"] == app["id"] and mine["amount"] == "20.00" and mine["overdue"] is False
    assert (await intake.client.get(f"{BASE}/payments/unpaid", headers=me)).status_code == 403
    body = {"payment_code": notice["payment_code"], "amount": "20.00", "paid_at": datetime.now(UTC).isoformat(),
            "transaction_id": "PAY-1"}
    # Forged (another secret), unsigned, another amount, an unknown code: nothing applied.
    assert (await notify(intake, body, "msg_forged", secret="whsec_" + "Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2VkLTEy")).status_code == 401
    assert (await intake.client.post(f"{BASE}/payments/notifications", json=body)).status_code == 401
    r = await notify(intake, {**body, "paid_at": "2026-11-30T10:00:00"}, "msg_naive")
    assert r.status_code == 422 and ("body.paid_at", "timezone_aware") in fields(r.json())
    r = await notify(intake, {**body, "amount": "2.00"}, "msg_wrong_amount")
    assert r.status_code == 422 and ("body.amount", "amount_mismatch") in fields(r.json())
    r = await notify(intake, {**body, "payment_code": "4417" + "0" * 16}, "msg_unknown")
    assert r.status_code == 422 and ("body.payment_code", "unknown_payment_code") in fields(r.json())
    assert (await read(intake, me, app["id"]))["status"] == "awaiting_payment"
    r = await notify(intake, body, "msg_paid")
    assert r.status_code == 200 and r.json() == {"status": "paid"}
    # The platform's retry (same webhook-id) and a second confirmation under a new id apply nothing again.
    assert (await notify(intake, body, "msg_paid")).json() == {"status": "duplicate"}
    assert (await notify(intake, body, "msg_paid_again")).json() == {"status": "already_paid"}
    done = await eventually(lambda: in_state(intake, me, app["id"], "delivered"))
    assert done["payment"]["status"] == "paid"
    # The event commits with the payment; the relay publishes it a moment later: counted once all are out.
    assert await intake.announced("yimen.intake.payment.confirmed", app["id"]) == 1
    assert intake.published("yimen.intake.payment.confirmed", app["id"])[0].data["amount"] == "20.00"
    unpaid = (await intake.client.get(f"{BASE}/payments/unpaid", headers=f.clerk(tokens))).json()["items"]
    assert notice["payment_code"] not in {u["payment_code"] for u in unpaid}


async def test_a_granted_exemption_skips_the_fee_and_a_refused_one_does_not(intake, tokens):
    item = await intake.publish_item(item_with_points(fees=FEE, fully_online=False))
    me = f.citizen(tokens)
    r = await draft(intake, me, item["code"], fee_exemption="rich_person")
    assert r.status_code == 422 and ("fee_exemption", "unknown_exemption") in fields(r.json())
    exempt = await submitted(intake, me, item["code"], fee_exemption="first_application")
    refused = await submitted(intake, me, item["code"], fee_exemption="first_application")
    plain = await submitted(intake, me, item["code"])
    clerk = f.clerk(tokens)
    r = await intake.client.post(f"{BASE}/applications/{plain['id']}/accept", headers=clerk,
                                 json={"refuse_fee_exemption": "不属首次申领"})
    assert r.status_code == 422 and ("body.refuse_fee_exemption", "no_claim") in fields(r.json())
    assert (await intake.client.post(f"{BASE}/applications/{exempt['id']}/accept", headers=clerk)).status_code == 200
    r = await intake.client.post(f"{BASE}/applications/{refused['id']}/accept", headers=clerk,
                                 json={"refuse_fee_exemption": "户口簿显示已申领过"})
    assert r.status_code == 200 and r.json()["fee_exemption"]["state"] == "refused"
    for app in (exempt, refused):
        await intake.bus.publish(decided(app))
    done = await eventually(lambda: in_state(intake, me, exempt["id"], "delivered"))
    assert done["fee_exemption"] == {"code": "first_application", "name": "首次申领居民身份证",
                                     "basis": "《居民身份证法》第二十条", "state": "granted"}
    assert done["payment"] is None and not intake.published("yimen.intake.payment.requested", exempt["id"])
    await eventually(lambda: in_state(intake, me, refused["id"], "awaiting_payment"))


# --- the receipt slip (受理回执) -----------------------------------------------------------------------------------


async def test_the_receipt_slip_prints_as_html_and_pdf_after_acceptance_only(intake, tokens):
    item = await intake.publish_item(item_with_points(fully_online=False, fees=FEE,
                                                      promised_limit={"value": 5, "unit": "working_days"}))
    me = f.citizen(tokens)
    app = await submitted(intake, me, item["code"], delivery={"method": "pickup", "service_point": "LD-LC"})
    clerk = f.clerk(tokens)
    r = await intake.client.get(f"{BASE}/applications/{app['id']}/receipt-slip", headers=clerk)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=clerk)).status_code == 200
    r = await intake.client.get(f"{BASE}/applications/{app['id']}/receipt-slip", headers=clerk)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "受理回执" in page and app["receipt_number"] in page and app["verification_code"] in page
    assert "承诺办结日期" in page and "5 个工作日" in page and "罗城街道党群服务中心" in page and "缴款通知" in page
    reviewer = tokens.headers("s-rev", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    r = await intake.client.get(f"{BASE}/applications/{app['id']}/receipt-slip", headers=reviewer)
    assert r.status_code == 200 and app["verification_code"] not in r.text
    r = await intake.client.get(f"{BASE}/applications/{app['id']}/receipt-slip",
                                headers={**me, "Accept": "application/pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and b"STSong-Light" in r.content
    stranger = f.citizen(tokens, hid="445381198502020021")
    assert (await intake.client.get(f"{BASE}/applications/{app['id']}/receipt-slip", headers=stranger)).status_code == 404
