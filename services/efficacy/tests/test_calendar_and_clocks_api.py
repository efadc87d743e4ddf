"""The calendar and the clocks through the running service: real database, real bus."""

from __future__ import annotations

import pytest_asyncio

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.tests.helpers import accepted, assigned, decided, new_id, reopened, task_decided
from shared.testing import eventually, running_app

ADMIN = {"sub": "admin-1", "kind": "staff", "roles": ["admin"]}
SUPERVISOR = {"sub": "sup-1", "kind": "staff", "roles": ["supervisor"]}


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    config = EfficacyConfig(evaluation_interval_seconds=3600)
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens, config=config) as c:
        yield c


async def test_2026_comes_from_the_library_with_its_adjusted_working_sundays(client):
    r = await client.get("/efficacy/v1/calendar/workdays", params={"from": "2026-01-01", "to": "2026-01-10"})
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = {d["date"]: d["kind"] for d in body["days"]}
    assert kinds["2026-01-01"] == "holiday" and kinds["2026-01-04"] == "adjusted_workday"
    assert body["assumed"] is False and body["assumed_years"] == []
    assert body["workdays"] == 6  # 01-04 (调休) to 01-09; 01-10 is a Saturday
    r = await client.get("/efficacy/v1/calendar/workdays", params={"from": "2026-01-01", "to": "2026-12-31"})
    adjusted = [d["date"] for d in r.json()["days"] if d["kind"] == "adjusted_workday"]
    assert adjusted == ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]


async def test_2027_counts_the_statutory_holidays_as_assumed_until_an_admin_loads_the_notice(client, tokens):
    params = {"from": "2026-12-30", "to": "2027-01-04"}
    before = (await client.get("/efficacy/v1/calendar/workdays", params=params)).json()
    assert before["assumed"] is True and before["assumed_years"] == [2027]
    assert before["workdays"] == 3  # 12-30, 12-31, 01-04: New Year's Day is a holiday even without the notice
    assert {d["date"]: d["kind"] for d in before["days"]}["2027-01-01"] == "holiday"
    load = {"holidays": ["2027-01-01"], "workdays": ["2027-02-07"], "source": "国务院办公厅通知"}
    r = await client.put("/efficacy/v1/calendar/2027", json=load, headers=tokens.headers(**ADMIN))
    assert r.status_code == 200, r.text
    after = (await client.get("/efficacy/v1/calendar/workdays", params=params)).json()
    assert after["assumed"] is False and after["workdays"] == 3
    assert {d["date"]: d["kind"] for d in after["days"]}["2027-01-01"] == "holiday"


async def test_loading_a_years_notice_counts_the_open_clocks_through_it_again(client, tokens):
    from sqlalchemy import select

    from services.efficacy.store.tables import clock

    bus, app = client.app.state.bus, new_id()
    await bus.publish(accepted(app, "2032-09-28T09:00:00", days=5))

    async def application_clock():
        r = await clocks(client, tokens, app)
        return r.status_code == 200 and r.json().get("application") and r.json()["application"]

    async def watch_on():
        async with client.app.state.db.transaction() as s:
            return (await s.execute(select(clock.c.watch_on).where(clock.c.application_id == app))).scalar()

    first = await eventually(application_clock)
    # Estimated: the National Day holidays (10-01 to 10-05) are skipped, flagged as assumed.
    assert first["deadline_on"] == "2032-10-08" and 2032 in first["assumed_years"]
    estimated_watch = await watch_on()
    load = {"holidays": ["2032-10-01"], "workdays": [], "source": "国务院办公厅通知（示例）"}
    assert (await client.put("/efficacy/v1/calendar/2032", json=load, headers=tokens.headers(**ADMIN))).status_code == 200
    again = await application_clock()
    assert again["deadline_on"] == "2032-10-06" and 2032 not in again["assumed_years"]
    assert await watch_on() < estimated_watch  # the stored watch day moved with the deadline
    # Announced, so workflow counts its open tasks' due dates again too.
    import json

    from services.efficacy.store.tables import messaging
    async with client.app.state.db.transaction() as s:
        rows = (await s.execute(select(messaging.outbox.c.payload).where(
            messaging.outbox.c.type == "yimen.efficacy.calendar.loaded"))).scalars().all()
    loaded = [json.loads(r)["data"] for r in rows]
    assert any(d["year"] == 2032 and d["holidays"] == ["2032-10-01"] for d in loaded)


async def test_a_year_loads_from_csv(client, tokens):
    csv = "date,kind\n2029-01-01,holiday\n2029-02-04,workday\n"
    r = await client.put("/efficacy/v1/calendar/2029", content=csv.encode(), params={"source": "notice 2029"},
                         headers={**tokens.headers(**ADMIN), "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    days = (await client.get("/efficacy/v1/calendar/workdays", params={"from": "2029-02-04", "to": "2029-02-04"})).json()
    assert days["days"][0]["kind"] == "adjusted_workday" and days["workdays"] == 1


async def test_bad_calendar_input_is_a_precise_problem(client, tokens):
    admin = tokens.headers(**ADMIN)
    cases = [
        ({"holidays": [], "workdays": ["2028-02-08"], "source": "x"}, "weekend"),  # a Tuesday
        ({"holidays": ["2027-12-31"], "workdays": [], "source": "x"}, "within_year"),
        ({"holidays": ["2028-13-01"], "workdays": [], "source": "x"}, "date_from_datetime_parsing"),
        ({"holidays": ["2028-01-01"], "workdays": ["2028-01-01"], "source": "x"}, "conflict"),
    ]
    for body, rule in cases:
        r = await client.put("/efficacy/v1/calendar/2028", json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert rule in {e["rule"] for e in r.json()["errors"]}, r.json()
    r = await client.put("/efficacy/v1/calendar/2028", content=b"2028-01-01,maybe\n",
                         headers={**admin, "content-type": "text/csv"})
    assert r.status_code == 422 and r.json()["errors"][0] == {
        "field": "body.line1", "rule": "kind", "message": "kind must be `holiday` or `workday`."}
    r = await client.put("/efficacy/v1/calendar/2028", json=cases[0][0], headers=tokens.headers("p-9"))
    assert r.status_code == 403
    r = await client.put("/efficacy/v1/calendar/2028", json=cases[0][0])
    assert r.status_code == 401
    r = await client.get("/efficacy/v1/calendar/workdays", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "order"
    r = await client.get("/efficacy/v1/calendar/workdays", params={"from": "2020-01-01", "to": "2026-01-01"})
    assert r.json()["errors"][0]["rule"] == "max_range"
    r = await client.get("/efficacy/v1/calendar/workdays", params={"from": "yesterday", "to": "2026-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.from"


async def clocks(client, tokens, app, who=None):
    return await client.get(f"/efficacy/v1/clocks/{app}", params={"as_of": "2026-10-09T12:00:00+08:00"},
                            headers=tokens.headers(**(who or SUPERVISOR)))


async def test_the_clock_starts_at_acceptance_and_pauses_for_a_correction(client, tokens):
    bus, app = client.app.state.bus, new_id()
    for e in [accepted(app, "2026-09-21T09:00:00", days=10), assigned(app, "T1", "2026-09-21T09:05:00"),
              task_decided(app, "T1", "2026-09-30T10:00:00", "request_correction")]:
        await bus.publish(e)

    async def paused():
        r = await clocks(client, tokens, app)
        return r.status_code == 200 and (r.json()["application"] or {}).get("state") == "paused" and r.json()
    body = await eventually(paused)
    assert body["tasks"][0]["state"] == "paused"
    await bus.publish(reopened(app, "T1", "2026-10-09T10:00:00"))

    async def resumed():
        r = await clocks(client, tokens, app)
        return r.status_code == 200 and (r.json().get("application") or {}).get("state") == "running" and r.json()
    body = await eventually(resumed)
    a = body["application"]
    assert a["deadline_on"] == "2026-10-14" and a["paused_workdays"] == 2 and a["remaining_workdays"] == 4
    assert a["statutory_deadline_on"] == "2026-10-28"  # 20 + 2 paused working days after 09-21
    assert a["pauses"][0]["reason"] == "correction" and a["pauses"][0]["end"] is not None
    assert body["assumed"] is False


async def test_only_the_applicant_and_those_involved_see_a_clock(client, tokens):
    bus, app = client.app.state.bus, new_id()
    await bus.publish(accepted(app, "2026-09-21T09:00:00", person="p-owner", hid="445381199001011234"))
    await bus.publish(assigned(app, "T-x", "2026-09-21T09:05:00", department="LD-XFJ"))
    async def status(who):
        return (await clocks(client, tokens, app, who)).status_code

    async def both_seen():
        r = await clocks(client, tokens, app)
        return r.status_code == 200 and len(r.json()["tasks"]) == 1
    await eventually(both_seen)
    assert await status({"sub": "p-owner"}) == 200
    assert await status({"sub": "someone", "hid": "445381199001011234"}) == 200
    assert await status({"sub": "p-other"}) == 404  # like an unknown application
    assert await status({"sub": "r-1", "kind": "staff", "roles": ["department_reviewer"], "dept": "LD-XFJ"}) == 200
    assert await status({"sub": "r-2", "kind": "staff", "roles": ["department_reviewer"], "dept": "LD-JYJ"}) == 404
    r = await client.get(f"/efficacy/v1/clocks/{new_id()}", headers=tokens.headers(**SUPERVISOR))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/efficacy/v1/clocks/{app}")).status_code == 401


async def test_an_organisation_agent_sees_the_clock_of_the_organisations_case(client, tokens):
    bus, app = client.app.state.bus, new_id()
    await bus.publish(accepted(app, "2026-09-21T09:00:00", person="agent-7", org="91441781MA0000000X"))
    who = {"sub": "agent-8", "roles": ["org_agent"], "org": "91441781MA0000000X"}
    await eventually(lambda: _ok(clocks(client, tokens, app, who)))


async def _ok(coro):
    return (await coro).status_code == 200


async def test_the_same_event_twice_and_events_out_of_order_give_one_clock(client, tokens):
    bus, app = client.app.state.bus, new_id()
    late = decided(app, "2026-09-25T10:00:00")
    await bus.publish(late)  # the decision overtakes everything else
    await bus.publish(task_decided(app, "T2", "2026-09-24T10:00:00"))
    acc = accepted(app, "2026-09-21T09:00:00")
    await bus.publish(acc)
    await bus.publish(acc)  # the bus drops it as a duplicate …
    again = acc.model_copy(update={"id": "re-issued-" + acc.id})
    await bus.publish(again)  # … and a re-issue under a new id is the same fact
    await bus.publish(assigned(app, "T2", "2026-09-21T09:05:00"))

    async def settled():
        r = await clocks(client, tokens, app)
        b = r.json()
        return (r.status_code == 200 and len(b["tasks"]) == 1 and b["tasks"][0]["started_at"]
                and b["application"] and b["application"]["started_at"] and b)
    body = await eventually(settled)
    assert body["application"]["state"] == "stopped" and body["application"]["stop_reason"] == "decided"
    assert body["application"]["elapsed_workdays"] == 3  # 09-22, 09-23, 09-24 (09-25 is a holiday)
    assert body["tasks"][0]["state"] == "stopped"
    from sqlalchemy import func, select

    from services.efficacy.store.tables import case_event
    async with client.app.state.db.transaction() as s:
        n = await s.scalar(select(func.count()).select_from(case_event).where(case_event.c.application_id == app))
    assert n == 4


async def test_a_special_procedure_published_after_the_tasks_still_pauses_the_clock(client, tokens):
    import uuid

    from shared.events import new_event
    bus, app, item = client.app.state.bus, new_id(), "ITEM-" + uuid.uuid4().hex[:6]
    await bus.publish(accepted(app, "2026-03-02T09:00:00", item=item, days=10))
    await bus.publish(assigned(app, "T-h", "2026-03-03T09:00:00", step_key="hearing"))
    await bus.publish(task_decided(app, "T-h", "2026-03-05T09:00:00"))

    async def task_done():
        r = await clocks(client, tokens, app)
        b = r.json()
        return r.status_code == 200 and b["tasks"] and b["tasks"][0]["state"] == "stopped" and b["application"] and b
    body = await eventually(task_done)
    assert body["application"]["pauses"] == []
    await bus.publish(new_event("yimen.catalog.item.published", source="/yimen/catalog", subject=item, data={
        "code": item, "version": 1, "name": "某许可", "department": "LD-SCJGJ", "fully_online": False,
        "process": {"steps": [{"key": "hearing", "name": "听证", "kind": "review", "excluded_from_limit": True}]}}))

    async def paused():
        b = (await clocks(client, tokens, app)).json()
        return b["application"]["pauses"] and b
    body = await eventually(paused)
    a = body["application"]
    assert [p["reason"] for p in a["pauses"]] == ["special_procedure"]
    assert a["paused_workdays"] == 2 and a["deadline_on"] == "2026-03-18"  # 10 + 2 working days after 03-02
