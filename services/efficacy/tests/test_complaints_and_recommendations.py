"""Complaints (投诉举报), repeated applications, recommendations (精准推送) and certificate reminders."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest_asyncio

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.calendar import CHINA
from services.efficacy.tests.helpers import accepted, new_id
from shared.events import new_event
from shared.testing import eventually, running_app

SUPERVISOR = {"sub": "sup-1", "kind": "staff", "roles": ["supervisor"]}


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens,
                           config=EfficacyConfig(evaluation_interval_seconds=3600)) as c:
        yield c


async def test_an_anonymous_complaint_is_answered_by_the_department_and_rated_with_its_secret(client, tokens):
    r = await client.post("/efficacy/v1/complaints", json={
        "about": {"kind": "window", "ref": "LD-CENTRE-W12"}, "department": "LD-SCJGJ",
        "text": "窗口要求提供办事指南以外的材料。"})
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["anonymous"] is True and filed["state"] == "open" and filed["deadline_on"] > date.today().isoformat()
    url = f"/efficacy/v1/complaints/{filed['complaint_id']}"
    assert (await client.get(url)).status_code == 401  # neither a token nor the secret
    assert (await client.get(url, params={"secret": "guess"})).status_code == 401
    assert (await client.get(url, headers=tokens.headers("p-stranger"))).status_code == 404  # like an unknown one
    assert (await client.get(url, params={"secret": filed["secret"]})).status_code == 200
    wrong = tokens.headers("r-2", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    dept = tokens.headers("r-1", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    assert (await client.post(url + "/answer", json={"answer": "已核实"}, headers=wrong)).status_code == 403
    assert (await client.post(url + "/rating", json={"score": 5, "secret": filed["secret"]})).status_code == 409
    r = await client.post(url + "/answer", json={"answer": "已核实并纠正，向您致歉。"}, headers=dept)
    assert r.status_code == 200 and r.json()["state"] == "answered"
    assert (await client.post(url + "/answer", json={"answer": "again"}, headers=dept)).status_code == 409
    assert (await client.post(url + "/rating", json={"score": 5, "secret": "guess"})).status_code == 403
    r = await client.post(url + "/rating", json={"score": 6, "secret": filed["secret"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.score"
    r = await client.post(url + "/rating", json={"score": 4, "secret": filed["secret"]})
    assert r.status_code == 200 and r.json()["state"] == "closed" and r.json()["answer_score"] == 4
    counts = (await client.get("/efficacy/v1/complaints/departments")).json()
    scj = next(c for c in counts if c["department"] == "LD-SCJGJ")
    assert scj["received"] >= 1 and scj["answered"] >= 1


async def test_a_retried_complaint_with_the_same_idempotency_key_is_filed_once(client):
    body = {"about": {"kind": "department", "ref": "LD-GAJ"}, "text": "户籍窗口排队过长。"}
    key = {"Idempotency-Key": new_id("k")}
    first = await client.post("/efficacy/v1/complaints", json=body, headers=key)
    again = await client.post("/efficacy/v1/complaints", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["complaint_id"] == again.json()["complaint_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await client.post("/efficacy/v1/complaints", json=body | {"text": "另一件事。。"}, headers=key)
    assert other.status_code == 422 and other.json()["errors"][0]["rule"] == "idempotency_key_reused"


async def test_a_named_complaint_about_a_case_finds_its_department(client, tokens):
    app = new_id()
    await client.app.state.bus.publish(accepted(app, "2026-03-02T09:00:00", department="LD-MZJ"))

    async def seen():
        return (await client.get(f"/efficacy/v1/clocks/{app}", headers=tokens.headers(**SUPERVISOR))).status_code == 200
    await eventually(seen)
    me = tokens.headers("p-complainer")
    r = await client.post("/efficacy/v1/complaints", json={"about": {"kind": "case", "ref": app},
                                                          "text": "超过承诺时限仍未办结。"}, headers=me)
    assert r.status_code == 201 and r.json()["department"] == "LD-MZJ" and r.json()["anonymous"] is False
    assert (await client.get(f"/efficacy/v1/complaints/{r.json()['complaint_id']}", headers=me)).status_code == 200
    r = await client.post("/efficacy/v1/complaints", json={"about": {"kind": "case", "ref": new_id()},
                                                          "text": "不知道是哪个部门。"})
    assert r.status_code == 422 and r.json()["errors"][0] == {
        "field": "body.department", "rule": "required",
        "message": "Name the department (it could not be found from the case)."}
    r = await client.post("/efficacy/v1/complaints", json={"about": {"kind": "planet", "ref": "x"}, "text": "hello"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.about.kind"
    assert (await client.get(f"/efficacy/v1/complaints/{new_id()}")).status_code == 401  # no token, no secret
    assert (await client.get(f"/efficacy/v1/complaints/{new_id()}", headers=tokens.headers("p-1"))).status_code == 404
    # The case's complaints, listed for supervisors and the department concerned, without the complainant.
    params = {"about_kind": "case", "about_ref": app}
    listed = await client.get("/efficacy/v1/complaints", params=params, headers=tokens.headers(**SUPERVISOR))
    assert listed.status_code == 200 and [c["about"]["ref"] for c in listed.json()["items"]] == [app]
    assert "p-complainer" not in listed.text
    mzj = tokens.headers("rev-mzj", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    assert len((await client.get("/efficacy/v1/complaints", params=params, headers=mzj)).json()["items"]) == 1
    other = tokens.headers("rev-x", kind="staff", roles=["department_reviewer"], dept="LD-XFJ")
    assert (await client.get("/efficacy/v1/complaints", params=params, headers=other)).json()["items"] == []
    assert (await client.get("/efficacy/v1/complaints", params={"department": "LD-MZJ"},
                             headers=other)).status_code == 403
    assert (await client.get("/efficacy/v1/complaints", headers=me)).status_code == 403


async def test_applying_again_for_the_same_item_within_the_window_is_flagged(client, tokens):
    hid, item = "44538119900101" + uuid.uuid4().hex[:4], "ITEM-" + uuid.uuid4().hex[:6]
    first, second = new_id(), new_id()
    await client.app.state.bus.publish(accepted(first, "2026-03-02T09:00:00", hid=hid, item=item))
    await client.app.state.bus.publish(accepted(second, "2026-03-20T09:00:00", hid=hid, item=item))

    async def flagged():
        r = await client.get("/efficacy/v1/supervision", params={"kind": "repeated_application"},
                             headers=tokens.headers(**SUPERVISOR))
        return [i for i in r.json()["items"] if item in i["detail"]]
    items = await eventually(flagged)
    assert len(items) == 1 and first in items[0]["detail"] and second in items[0]["detail"]


async def test_recommendations_come_from_what_the_same_applicants_applied_for(client):
    tag = uuid.uuid4().hex[:6]
    a, b, c = f"A-{tag}", f"B-{tag}", f"C-{tag}"
    bus = client.app.state.bus
    for person, items in (("x", (a, b)), ("y", (a, b)), ("z", (a, c)), ("w", (c,))):
        for it in items:
            await bus.publish(accepted(new_id(), "2026-03-02T09:00:00", hid=f"{person}-{tag}", item=it))

    async def ready():
        r = await client.get("/efficacy/v1/recommendations", params={"item": a})
        body = r.json()["also_needed"]
        return body if sum(x["applicants"] for x in body) == 3 else None
    got = await eventually(ready)
    assert [(x["item_code"], x["applicants"]) for x in got] == [(b, 2), (c, 1)]
    r = await client.get("/efficacy/v1/recommendations")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.item"


async def test_certificates_about_to_expire_are_reminded_to_their_holder(client, tokens):
    hid = "44538119900101" + uuid.uuid4().hex[:4]
    today = datetime.now(CHINA).date()

    def issued(number, valid_until):
        return new_event("yimen.datashare.certificate.issued", source="/yimen/datashare", subject=number, data={
            "certificate_number": number, "type_code": "11441781MB0000001A002", "type_name": "食品经营许可证",
            "holder_id": hid, "holder_kind": "person", "holder_name": "张三", "issuer_department": "LD-SCJGJ",
            "application_id": None, "issued_on": str(today), "valid_until": str(valid_until)})
    bus = client.app.state.bus
    # the revocation overtakes the issue: it must still hold
    await bus.publish(new_event("yimen.datashare.certificate.revoked", source="/yimen/datashare", subject="GONE",
                                data={"certificate_number": "GONE-" + hid, "reason": "x", "revoked_at": str(today)}))
    await bus.publish(issued("SOON-" + hid, today + timedelta(days=10)))
    await bus.publish(issued("LATER-" + hid, today + timedelta(days=400)))
    await bus.publish(issued("GONE-" + hid, today + timedelta(days=5)))
    me = tokens.headers("p-holder", hid=hid)

    async def reminded():
        r = await client.get("/efficacy/v1/me/reminders", headers=me)
        assert r.status_code == 200, r.text
        return r.json() if any(x["certificate_number"] == "SOON-" + hid for x in r.json()) else None
    got = await eventually(reminded)
    await eventually(lambda: _revoked_gone(client, me, hid))
    assert [x["days_left"] for x in got if x["certificate_number"] == "SOON-" + hid] == [10]
    assert (await client.get("/efficacy/v1/me/reminders", headers=tokens.headers("p-other", hid="x"))).json() == []
    assert (await client.get("/efficacy/v1/me/reminders")).status_code == 401


async def _revoked_gone(client, me, hid):
    numbers = {x["certificate_number"] for x in (await client.get("/efficacy/v1/me/reminders", headers=me)).json()}
    return "SOON-" + hid in numbers and "GONE-" + hid not in numbers and "LATER-" + hid not in numbers


async def test_asking_again_for_a_material_already_provided_is_flagged(client, tokens):
    from services.efficacy.tests.helpers import task_decided
    app = new_id()
    acc = accepted(app, "2026-03-02T09:00:00", department="LD-SCJGJ")
    acc.data["materials"] = [{"code": "floor_plan", "kind": "upload", "reference": "f-1"}]
    ask = task_decided(app, "T-m", "2026-03-03T09:00:00", "request_correction", department="LD-WJJ")
    ask.data["missing"] = [{"material_code": "floor_plan", "field": None, "reason": "看不清"},
                           {"material_code": "hygiene_plan", "field": None, "reason": "缺"}]
    await client.app.state.bus.publish(acc)

    async def seen():
        return (await client.get(f"/efficacy/v1/clocks/{app}", headers=tokens.headers(**SUPERVISOR))).status_code == 200
    await eventually(seen)
    await client.app.state.bus.publish(ask)

    async def flagged():
        r = await client.get("/efficacy/v1/supervision", params={"kind": "material_asked_again"},
                             headers=tokens.headers(**SUPERVISOR))
        return [i for i in r.json()["items"] if i["application_id"] == app]
    items = await eventually(flagged)
    assert len(items) == 1 and "floor_plan" in items[0]["detail"] and "hygiene_plan" not in items[0]["detail"]
    assert items[0]["department"] == "LD-WJJ"


async def test_a_complaint_left_unanswered_past_its_deadline_goes_to_supervision(client, tokens):
    r = await client.post("/efficacy/v1/complaints", json={"about": {"kind": "item", "ref": "ITEM-9"},
                                                          "department": "LD-RSJ", "text": "材料清单与指南不一致。"})
    complaint_id = r.json()["complaint_id"]
    sup = tokens.headers(**SUPERVISOR)

    async def items():
        r = await client.get("/efficacy/v1/supervision", params={"kind": "complaint_overdue"}, headers=sup)
        return [i for i in r.json()["items"] if complaint_id in i["detail"]]
    day_before = (datetime.fromisoformat(r.json()["deadline_on"])).isoformat() + "+08:00"
    await client.post("/efficacy/v1/cards/evaluation", params={"as_of": day_before}, headers=sup)
    assert await items() == []
    for _ in range(2):
        await client.post("/efficacy/v1/cards/evaluation", params={"as_of": "2031-01-01T12:00:00+08:00"}, headers=sup)
    got = await items()
    assert len(got) == 1 and got[0]["department"] == "LD-RSJ" and got[0]["is_case"] is True
