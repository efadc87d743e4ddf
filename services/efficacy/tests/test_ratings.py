"""好差评 through the running service."""

from __future__ import annotations

import json

import pytest_asyncio
from sqlalchemy import select

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.store.tables import messaging
from services.efficacy.tests.helpers import accepted, new_id
from shared.testing import eventually, running_app

SUPERVISOR = {"sub": "sup-1", "kind": "staff", "roles": ["supervisor"]}


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens,
                           config=EfficacyConfig(evaluation_interval_seconds=3600, rectification_days=5)) as c:
        yield c


async def accepted_case(client, tokens, person, department="LD-WJJ"):
    app = new_id()
    await client.app.state.bus.publish(accepted(app, "2026-03-02T09:00:00", person=person, department=department))

    async def seen():
        r = await client.get(f"/efficacy/v1/clocks/{app}", headers=tokens.headers(**SUPERVISOR))
        return r.status_code == 200
    await eventually(seen)
    return app


async def test_the_applicant_rates_once_and_others_may_not(client, tokens):
    app = await accepted_case(client, tokens, "p-rater")
    me = tokens.headers("p-rater")
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "非常满意"},
                          headers=tokens.headers("p-stranger"))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "满意", "tags": ["快"]},
                          headers=me)
    assert r.status_code == 201, r.text
    assert r.json()["level"] == "satisfied" and r.json()["score"] == 4 and r.json()["rectification_state"] is None
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "very_satisfied"}, headers=me)
    assert r.status_code == 409
    r = await client.post("/efficacy/v1/ratings", json={"application_id": new_id(), "level": "满意"}, headers=me)
    assert r.status_code == 404
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "so-so"}, headers=me)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.level"
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "满意", "tags": [""]},
                          headers=me)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.tags.0"
    assert (await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "满意"})).status_code == 401


async def test_a_bad_rating_opens_a_rectification_called_back_and_re_rated(client, tokens):
    app = await accepted_case(client, tokens, "p-unhappy", department="LD-XFJ")
    me = tokens.headers("p-unhappy")
    r = await client.post("/efficacy/v1/ratings", headers=me, json={
        "application_id": app, "level": "不满意", "comment": "超时", "tags": ["未在承诺时限内办结"]})
    assert r.status_code == 201, r.text
    rating = r.json()
    assert rating["rectification_state"] == "open" and rating["rectification_due_on"] is not None
    async with client.app.state.db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.payload).where(
            messaging.outbox.c.type == "yimen.efficacy.rating.bad"))).scalars()
        data = [json.loads(p)["data"] for p in rows]
    assert [d for d in data if d["application_id"] == app] == [{
        "rating_id": rating["rating_id"], "application_id": app, "department": "LD-XFJ", "level": "dissatisfied",
        "tags": ["未在承诺时限内办结"], "comment": "超时"}]
    dept = tokens.headers("r-x", kind="staff", roles=["department_reviewer"], dept="LD-XFJ")
    items = (await client.get("/efficacy/v1/supervision", params={"kind": "bad_rating"}, headers=dept)).json()["items"]
    assert any(i["application_id"] == app and i["is_case"] for i in items)
    url = f"/efficacy/v1/ratings/{rating['rating_id']}"
    assert (await client.post(url + "/rerating", json={"level": "满意"}, headers=me)).status_code == 409
    other = tokens.headers("r-y", kind="staff", roles=["department_reviewer"], dept="LD-JYJ")
    assert (await client.post(url + "/callback", json={"note": "已回访", "outcome": "rectified"},
                              headers=other)).status_code == 404
    r = await client.post(url + "/callback", json={"note": "已回访", "outcome": "maybe"}, headers=dept)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.outcome"
    r = await client.post(url + "/callback", json={"note": "已电话回访并整改", "outcome": "rectified"}, headers=dept)
    assert r.status_code == 200 and r.json()["rectification_state"] == "called_back"
    r = await client.post(url + "/rerating", json={"level": "满意"}, headers=dept)
    assert r.status_code == 403
    r = await client.post(url + "/rerating", json={"level": "满意"}, headers=me)
    assert r.status_code == 200 and r.json()["rerated_level"] == "satisfied"
    assert r.json()["rectification_state"] == "closed"
    scores = (await client.get("/efficacy/v1/ratings/departments")).json()
    xfj = next(s for s in scores if s["department"] == "LD-XFJ")
    assert xfj["bad_ratings"] >= 1 and xfj["rectified"] >= 1 and 1 <= xfj["average_score"] <= 5
    assert (await client.get(url, headers=tokens.headers("p-stranger"))).status_code == 404
    assert (await client.get(url, headers=me)).status_code == 200


async def test_a_bad_rating_not_called_back_in_time_goes_to_supervision(client, tokens):
    app = await accepted_case(client, tokens, "p-late", department="LD-ZJJ")
    r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": "very_dissatisfied"},
                          headers=tokens.headers("p-late"))
    rating_id = r.json()["rating_id"]
    sup = tokens.headers(**SUPERVISOR)
    await client.post("/efficacy/v1/cards/evaluation", params={"as_of": "2031-01-01T12:00:00+08:00"}, headers=sup)
    items = (await client.get("/efficacy/v1/supervision", params={"kind": "rectification_overdue"},
                              headers=sup)).json()["items"]
    assert [i["department"] for i in items if rating_id in i["detail"]] == ["LD-ZJJ"]


async def test_supervisors_list_ratings_by_department_and_item_and_a_department_sees_its_own(client, tokens):
    bad_app = await accepted_case(client, tokens, "p-list-1", department="LD-GAJ")
    good_app = await accepted_case(client, tokens, "p-list-2", department="LD-GAJ")
    other_app = await accepted_case(client, tokens, "p-list-3", department="LD-MZJ")
    for app, person, level in ((bad_app, "p-list-1", "非常不满意"), (good_app, "p-list-2", "满意"),
                               (other_app, "p-list-3", "不满意")):
        r = await client.post("/efficacy/v1/ratings", json={"application_id": app, "level": level},
                              headers=tokens.headers(person))
        assert r.status_code == 201, r.text
    sup = tokens.headers(**SUPERVISOR)
    r = await client.get("/efficacy/v1/ratings", params={"department": "LD-GAJ"}, headers=sup)
    assert r.status_code == 200 and {x["application_id"] for x in r.json()["items"]} == {bad_app, good_app}
    r = await client.get("/efficacy/v1/ratings", params={"department": "LD-GAJ", "bad_only": "true"}, headers=sup)
    assert [(x["application_id"], x["rectification_state"]) for x in r.json()["items"]] == [(bad_app, "open")]
    r = await client.get("/efficacy/v1/ratings", params={"rectification": "open", "application_id": other_app},
                         headers=sup)
    assert [x["application_id"] for x in r.json()["items"]] == [other_app]
    # A department's reviewer sees their department's only, and may not ask for another's.
    gaj = tokens.headers("rev-gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    r = await client.get("/efficacy/v1/ratings", headers=gaj)
    assert r.status_code == 200 and {x["department"] for x in r.json()["items"]} == {"LD-GAJ"}
    assert (await client.get("/efficacy/v1/ratings", params={"department": "LD-MZJ"}, headers=gaj)).status_code == 403
    assert (await client.get("/efficacy/v1/ratings", headers=tokens.headers("p-list-1"))).status_code == 403
    assert (await client.get("/efficacy/v1/ratings")).status_code == 401
    r = await client.get("/efficacy/v1/ratings", params={"rectification": "maybe"}, headers=sup)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.rectification"
    scores = (await client.get("/efficacy/v1/ratings/items", params={"department": "LD-GAJ"})).json()
    assert sum(s["ratings"] for s in scores) == 2 and sum(s["bad_ratings"] for s in scores) == 1
    assert all(s["department"] == "LD-GAJ" for s in scores)
    # The supervision queue filtered to one case: its items only, its bad rating's rectification (整改) among them.
    r = await client.get("/efficacy/v1/supervision", params={"application_id": bad_app}, headers=sup)
    assert {x["application_id"] for x in r.json()["items"]} == {bad_app}
    assert "bad_rating" in {x["kind"] for x in r.json()["items"]}
