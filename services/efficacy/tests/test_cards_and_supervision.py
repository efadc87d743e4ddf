"""红黄牌 and 督办 through the running service: forecast, evaluation at an instant, exactly one card per
crossing, the event, the supervisors' webhook, the queue, the department's answer, clearing on decision, and the
background job."""

from __future__ import annotations

import asyncio
import json

import pytest_asyncio
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.tests.helpers import accepted, decided, new_id, submitted
from shared.testing import eventually, running_app

SUPERVISOR = {"sub": "sup-1", "kind": "staff", "roles": ["supervisor"]}
SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLWNhcmRzLXdlYmhvb2s="


class Receiver:
    """A supervisors' endpoint: records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/cards"


@pytest_asyncio.fixture(scope="module")
async def receiver():
    r = Receiver()
    r.url = await r.start()
    yield r
    r.server.close()


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens, receiver):
    config = EfficacyConfig(evaluation_interval_seconds=0.3, supervisor_webhook_url=receiver.url,
                            supervisor_webhook_secret=SECRET)
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens, config=config) as c:
        yield c


async def started(client, tokens, app, when="2026-03-02T09:00:00", **kw):
    await client.app.state.bus.publish(accepted(app, when, **kw))

    async def seen():
        r = await client.get(f"/efficacy/v1/clocks/{app}", headers=tokens.headers(**SUPERVISOR))
        return r.status_code == 200
    await eventually(seen)


async def raised(client, tokens, app, colour=None):
    params = {"application_id": app} | ({"colour": colour} if colour else {})
    r = await client.get("/efficacy/v1/cards/raised", params=params, headers=tokens.headers(**SUPERVISOR))
    assert r.status_code == 200, r.text
    return r.json()


async def evaluation(client, tokens, as_of):
    r = await client.post("/efficacy/v1/cards/evaluation", params={"as_of": as_of}, headers=tokens.headers(**SUPERVISOR))
    assert r.status_code == 200, r.text
    return r.json()["raised"]


async def test_forecast_names_the_cases_yellow_or_red_on_a_future_date_without_raising_them(client, tokens):
    app = new_id()
    # Accepted in 2031: far ahead of the background job's "now", so only the forecast says anything.
    await started(client, tokens, app, when="2031-03-03T09:00:00")  # 5 working days → 2031-03-10
    sup = tokens.headers(**SUPERVISOR)

    async def forecast(day, colour=None):
        params = {"as_of": day} | ({"colour": colour} if colour else {})
        r = await client.get("/efficacy/v1/cards", params=params, headers=sup)
        assert r.status_code == 200, r.text
        return [c for c in r.json()["items"] if c["application_id"] == app]
    assert await forecast("2031-03-04") == []
    yellow = await forecast("2031-03-06", "yellow")
    assert len(yellow) == 1 and yellow[0]["remaining_workdays"] == 2 and yellow[0]["deadline_on"] == "2031-03-10"
    assert yellow[0]["assumed_years"] == [2031]
    assert await forecast("2031-03-06", "red") == []
    red = await forecast("2031-03-11", "red")
    assert red[0]["reason"] == "promised_limit_exceeded"
    assert await raised(client, tokens, app) == []
    r = await client.get("/efficacy/v1/cards", params={"as_of": "soon"}, headers=sup)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.as_of"
    r = await client.get("/efficacy/v1/cards", params={"colour": "green"}, headers=sup)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.colour"
    assert (await client.get("/efficacy/v1/cards", headers=tokens.headers("p-1"))).status_code == 403


async def test_a_card_is_raised_once_per_crossing_however_often_evaluated(client, tokens, receiver):
    app = new_id()
    await started(client, tokens, app, when="2031-03-03T09:00:00")
    assert [c for c in await evaluation(client, tokens, "2031-03-04T12:00:00+08:00") if c["application_id"] == app] == []
    first = [c for c in await evaluation(client, tokens, "2031-03-06T12:00:00+08:00") if c["application_id"] == app]
    assert [c["colour"] for c in first] == ["yellow"]
    again = await evaluation(client, tokens, "2031-03-09T12:00:00+08:00")
    assert [c for c in again if c["application_id"] == app] == []
    # the same acceptance arriving again changes nothing
    await client.app.state.bus.publish(accepted(app, "2031-03-03T09:00:00"))
    red = [c for c in await evaluation(client, tokens, "2031-03-11T12:00:00+08:00") if c["application_id"] == app]
    assert [c["colour"] for c in red] == ["red"]
    await evaluation(client, tokens, "2031-03-12T12:00:00+08:00")
    cards = await raised(client, tokens, app)
    assert sorted(c["colour"] for c in cards) == ["red", "yellow"]

    from services.efficacy.store.tables import messaging
    async with client.app.state.db.transaction() as s:
        types = list((await s.execute(select(messaging.outbox.c.type, messaging.outbox.c.payload))).all())
    mine = [t for t, p in types if json.loads(p)["subject"] == app]
    assert sorted(mine) == ["yimen.efficacy.card.red", "yimen.efficacy.card.yellow"]
    payload = json.loads(next(p for t, p in types if json.loads(p)["subject"] == app))["data"]
    assert set(payload) == {"card_id", "application_id", "task_id", "department", "colour", "reason",
                            "deadline_at", "raised_at"}

    async def delivered():
        return [(h, b) for h, b in receiver.received if json.loads(b)["data"]["application_id"] == app]
    got = await eventually(lambda: _len(delivered, 2))
    for headers, body in got:
        Webhook(SECRET).verify(body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")})


async def _len(fn, n):
    got = await fn()
    return got if len(got) >= n else None


async def test_a_red_card_opens_a_case_that_the_department_answers(client, tokens):
    app = new_id()
    await started(client, tokens, app, when="2031-03-03T09:00:00", department="LD-WJJ")
    await evaluation(client, tokens, "2031-03-11T12:00:00+08:00")
    reviewer = tokens.headers("r-1", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    other = tokens.headers("r-2", kind="staff", roles=["department_reviewer"], dept="LD-XFJ")
    r = await client.get("/efficacy/v1/supervision", params={"kind": "red_card"}, headers=reviewer)
    assert r.status_code == 200, r.text
    case = next(i for i in r.json()["items"] if i["application_id"] == app)
    assert case["is_case"] is True and case["state"] == "open" and case["department"] == "LD-WJJ"
    theirs = (await client.get("/efficacy/v1/supervision", headers=other)).json()["items"]
    assert all(i["department"] == "LD-XFJ" for i in theirs)
    assert (await client.get("/efficacy/v1/supervision", headers=tokens.headers("p-1"))).status_code == 403
    url = f"/efficacy/v1/supervision/{case['id']}/answer"
    assert (await client.post(url, json={"answer": "已督促办结"}, headers=other)).status_code == 403
    r = await client.post(url, json={"answer": ""}, headers=reviewer)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.answer"
    r = await client.post(url, json={"answer": "专家评审延误，已办结。"}, headers=reviewer)
    assert r.status_code == 200 and r.json()["state"] == "answered"
    assert (await client.post(url, json={"answer": "again"}, headers=reviewer)).status_code == 409
    assert (await client.post("/efficacy/v1/supervision/999999/answer", json={"answer": "xx"},
                              headers=reviewer)).status_code == 404


async def test_cards_clear_when_the_case_is_decided(client, tokens):
    app = new_id()
    await started(client, tokens, app, when="2031-03-03T09:00:00")
    await evaluation(client, tokens, "2031-03-06T12:00:00+08:00")
    assert (await raised(client, tokens, app))[0]["cleared_at"] is None
    await client.app.state.bus.publish(decided(app, "2031-03-09T10:00:00"))

    async def cleared():
        return all(c["cleared_at"] for c in await raised(client, tokens, app))
    await eventually(cleared)
    assert [c for c in await evaluation(client, tokens, "2031-03-11T12:00:00+08:00") if c["application_id"] == app] == []
    sup = (await client.get("/efficacy/v1/supervision", params={"kind": "yellow_card"},
                            headers=tokens.headers(**SUPERVISOR))).json()["items"]
    assert next(i for i in sup if i["application_id"] == app)["state"] == "cleared"


async def test_the_background_job_raises_overdue_cards_by_itself(client, tokens):
    app = new_id()
    await started(client, tokens, app, when="2026-03-02T09:00:00")  # long overdue by the machine's clock

    async def red():
        return await raised(client, tokens, app, "red")
    cards = await eventually(red)
    assert len(cards) == 1 and cards[0]["reason"] in ("promised_limit_exceeded", "statutory_limit_exceeded")


async def test_the_dashboard_counts_open_clocks_cards_and_queue_per_department(client, tokens):
    app = new_id()
    await started(client, tokens, app, when="2031-03-03T09:00:00", department="LD-YBJ")
    await evaluation(client, tokens, "2031-03-11T12:00:00+08:00")
    r = await client.get("/efficacy/v1/dashboard", headers=tokens.headers(**SUPERVISOR))
    assert r.status_code == 200, r.text
    body = r.json()
    ybj = next(p for p in body["departments"] if p["department"] == "LD-YBJ")
    assert ybj["open_red_cards"] >= 1 and ybj["running_applications"] >= 1
    assert ybj["open_supervision"].get("red_card", 0) >= 1
    assert body["totals"]["open_red_cards"] >= ybj["open_red_cards"]
    mine = await client.get("/efficacy/v1/dashboard", headers=tokens.headers(
        "r-9", kind="staff", roles=["department_reviewer"], dept="LD-YBJ"))
    assert [p["department"] for p in mine.json()["departments"]] == ["LD-YBJ"]
    assert (await client.get("/efficacy/v1/dashboard", headers=tokens.headers("p-1"))).status_code == 403


async def test_events_in_reverse_order_and_twice_still_raise_one_card_per_crossing_at_the_moved_deadline(client, tokens):
    from services.efficacy.tests.helpers import assigned, reopened, task_decided
    app = new_id()
    bus = client.app.state.bus
    acc = accepted(app, "2031-03-03T09:00:00")  # Monday; 5 working days → 03-10, one paused day → 03-11
    events = [reopened(app, "T1", "2031-03-05T10:00:00"),
              task_decided(app, "T1", "2031-03-04T10:00:00", "request_correction"),
              assigned(app, "T1", "2031-03-03T09:05:00", limit_days=3), acc,
              acc.model_copy(update={"id": "again-" + acc.id})]
    for e in events + events[:2]:
        await bus.publish(e)

    async def settled():
        r = await client.get(f"/efficacy/v1/clocks/{app}", params={"as_of": "2031-03-06T12:00:00+08:00"},
                             headers=tokens.headers(**SUPERVISOR))
        b = r.json()
        return (r.status_code == 200 and b["application"] and b["application"]["started_at"] and b["tasks"]
                and b["tasks"][0]["started_at"] and b["application"]["state"] == "running" and b)
    body = await eventually(settled)
    assert body["application"]["deadline_on"] == "2031-03-11" and body["tasks"][0]["deadline_on"] == "2031-03-07"
    for as_of in ("2031-03-05T12:00:00+08:00", "2031-03-06T12:00:00+08:00", "2031-03-06T18:00:00+08:00",
                  "2031-03-07T12:00:00+08:00", "2031-03-07T12:00:00+08:00"):
        await evaluation(client, tokens, as_of)
    cards = await raised(client, tokens, app)
    assert sorted((c["task_id"] or "", c["colour"]) for c in cards) == [("", "yellow"), ("T1", "yellow")]
    app_card = next(c for c in cards if c["task_id"] is None)
    assert app_card["deadline_at"].startswith("2031-03-11")


async def test_a_submission_left_unaccepted_gets_cards_on_the_acceptance_step_and_reaches_supervisors(client, tokens):
    app, sup = new_id(), tokens.headers(**SUPERVISOR)
    await client.app.state.bus.publish(submitted(app, "2031-03-03T09:00:00"))  # online, a Monday

    async def clock():
        r = await client.get(f"/efficacy/v1/clocks/{app}", headers=sup)
        return r.status_code == 200 and r.json()["acceptance"]
    acceptance = await eventually(clock)
    assert acceptance["kind"] == "acceptance" and acceptance["deadline_on"] == "2031-03-04"
    forecast = (await client.get("/efficacy/v1/cards", params={"as_of": "2031-03-04"}, headers=sup)).json()["items"]
    assert [(c["colour"], c["reason"]) for c in forecast if c["application_id"] == app] == [
        ("yellow", "acceptance_near_deadline")]
    red = [c for c in await evaluation(client, tokens, "2031-03-05T12:00:00+08:00") if c["application_id"] == app]
    assert [(c["colour"], c["reason"], c["department"]) for c in red] == [
        ("red", "acceptance_limit_exceeded", "LD-SCJGJ")]
    queue = (await client.get("/efficacy/v1/supervision", headers=sup)).json()["items"]
    assert any(i["application_id"] == app and i["kind"] == "red_card" for i in queue)
    panel = (await client.get("/efficacy/v1/dashboard", headers=sup)).json()["totals"]
    assert panel["awaiting_acceptance"] >= 1
    # Accepted at last: the acceptance clock stops, the case's own clock starts.
    await client.app.state.bus.publish(accepted(app, "2031-03-05T15:00:00"))

    async def stopped():
        r = (await client.get(f"/efficacy/v1/clocks/{app}", headers=sup)).json()
        return r["acceptance"]["state"] == "stopped" and r["application"] and r
    body = await eventually(stopped)
    assert body["acceptance"]["stop_reason"] == "accepted" and body["application"]["state"] == "running"

async def test_where_people_get_stuck_counts_materials_sent_back_and_steps_using_their_limit(client, tokens):
    from datetime import datetime, timedelta

    from services.efficacy.domain.calendar import CHINA
    from services.efficacy.tests.helpers import assigned, ev, submitted, task_decided
    from services.efficacy.tests.helpers import at as local

    item = "ITEM-STUCK-" + new_id()[-6:]
    bus = client.app.state.bus
    today = datetime.now(CHINA).date()
    day = [(today - timedelta(days=n)).isoformat() for n in (20, 19, 18, 15)]
    # Returned at the window before acceptance (补正), then accepted; a department asks for the floor plan again.
    first, second = new_id(), new_id()
    await bus.publish(submitted(first, f"{day[0]}T09:00:00", item=item, department="LD-SCJGJ"))
    await bus.publish(ev("yimen.intake.application.returned", first, receipt_number="R" + first, reasons="材料不齐",
                         missing=[{"field": "materials.floor_plan", "rule": "illegible", "message": "不清晰"},
                                  {"field": "materials.lease", "rule": "required", "message": "缺"}],
                         returned_at=local(f"{day[0]}T10:00:00")))
    for app in (first, second):
        await bus.publish(accepted(app, f"{day[1]}T09:00:00", item=item, department="LD-SCJGJ"))
        await bus.publish(assigned(app, "T-" + app, f"{day[1]}T09:00:00", department="LD-WJJ", limit_days=4,
                                   step_key="hygiene"))
    correction = task_decided(second, "T-" + second, f"{day[2]}T09:00:00", outcome="request_correction")
    correction.data["missing"] = [{"material_code": "floor_plan", "field": None, "reason": "未标功能分区"}]
    await bus.publish(correction)
    await bus.publish(task_decided(first, "T-" + first, f"{day[3]}T16:00:00"))
    sup = tokens.headers(**SUPERVISOR)
    params = {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat(), "item": item}

    async def report():
        # Intake's and workflow's events reach efficacy through different consumers, in either order: wait until
        # every event is applied (the three corrections, and the first case's task clock stopped by its decision).
        r = await client.get("/efficacy/v1/insights/stuck", params=params, headers=sup)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        if not (items and items[0]["steps"] and sum(c["times"] for c in items[0]["corrections"]) == 3):
            return None
        clock = (await client.get(f"/efficacy/v1/clocks/{first}", headers=sup)).json()["tasks"][0]
        return (items, clock) if clock["state"] == "stopped" else None

    items, clock = await eventually(report)
    assert [i["item_code"] for i in items] == [item]
    assert items[0]["corrections"] == [{"material": "floor_plan", "times": 2}, {"material": "lease", "times": 1}]
    step = items[0]["steps"][0]
    assert (step["step_key"], step["department"], step["tasks"]) == ("hygiene", "LD-WJJ", 1)
    # The share is the task clock's working days used over its limit, as the clock itself counts them.
    assert step["average_share"] == round(clock["elapsed_workdays"] / 4, 4)
    assert step["over_limit"] == int(clock["elapsed_workdays"] > 4)
    # A department's staff see their own department's cases only; a citizen sees nothing; bounds are checked.
    other = tokens.headers("rev", kind="staff", roles=["department_reviewer"], dept="LD-MZJ")
    assert (await client.get("/efficacy/v1/insights/stuck", params=params, headers=other)).json()["items"] == []
    assert (await client.get("/efficacy/v1/insights/stuck", params={**params, "department": "LD-SCJGJ"},
                             headers=other)).status_code == 403
    assert (await client.get("/efficacy/v1/insights/stuck", params=params,
                             headers=tokens.headers("p-1"))).status_code == 403
    wide = await client.get("/efficacy/v1/insights/stuck", params={"from": "2025-01-01", "to": "2026-03-31"},
                            headers=sup)
    assert wide.status_code == 422 and wide.json()["errors"][0]["field"] == "query.to"
    ancient = await client.get("/efficacy/v1/insights/stuck", params={"from": "0001-01-01", "to": "0001-01-01"},
                               headers=sup)
    assert ancient.status_code == 422 and ancient.json()["errors"][0]["field"] == "query.from"


async def test_an_evaluated_clock_is_read_again_only_when_its_next_card_can_fall_due(client, tokens):
    """Flat in open cases: once its yellow card is raised a clock is not read on every round until it stops,
    only from the day after its deadline; once every crossing is behind it, not at all until it changes."""
    from datetime import date, timedelta

    from services.efficacy.domain.clocks import SETTLED
    from services.efficacy.store import cases
    from services.efficacy.store.tables import clock

    app = new_id()
    await started(client, tokens, app, when="2031-03-03T09:00:00")

    async def watch_on() -> date:
        async with client.app.state.db.transaction() as s:
            return (await s.execute(select(clock.c.watch_on).where(clock.c.application_id == app))).scalar_one()

    async def read_on(day: date) -> bool:
        async with client.app.state.db.transaction() as s:
            return any([c.application_id == app async for batch in cases.running_clocks(s, day) for c in batch])

    assert [c["colour"] for c in await evaluation(client, tokens, "2031-03-06T12:00:00+08:00")
            if c["application_id"] == app] == ["yellow"]
    red_day = await watch_on()
    assert red_day > date(2031, 3, 6)
    assert not await read_on(date(2031, 3, 9))  # between the two crossings nothing reads it
    assert await read_on(red_day)
    assert [c["colour"] for c in await evaluation(client, tokens, f"{red_day.isoformat()}T12:00:00+08:00")
            if c["application_id"] == app] == ["red"]
    # Next: the day after the statutory limit (a second red); after it nothing, until the clock changes.
    statutory_day = await watch_on()
    assert statutory_day > red_day and not await read_on(statutory_day - timedelta(days=1))
    assert [c["reason"] for c in await evaluation(client, tokens, f"{statutory_day.isoformat()}T12:00:00+08:00")
            if c["application_id"] == app] == ["statutory_limit_exceeded"]
    assert await watch_on() == SETTLED
    assert not await read_on(date(2031, 12, 31))
