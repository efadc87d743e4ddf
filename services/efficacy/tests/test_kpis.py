"""The reform's KPIs from the event stream: each figure as defined, and incremental rows equal to a recompute
from the stored events."""

from __future__ import annotations

import uuid

import pytest_asyncio

from services.efficacy.app import create_app
from services.efficacy.config import EfficacyConfig
from services.efficacy.tests.helpers import (
    accepted,
    decided,
    delivered,
    new_id,
    reopened,
    submitted,
    task_decided,
    visit,
)
from shared.events import new_event
from shared.testing import eventually, running_app


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("efficacy"), tokens=tokens,
                           config=EfficacyConfig(evaluation_interval_seconds=3600)) as c:
        yield c


def item(code: str, department: str, fully_online: bool):
    return new_event("yimen.catalog.item.published", source="/yimen/catalog", subject=code, data={
        "code": code, "version": 1, "name": code, "department": department, "fully_online": fully_online,
        "process": {"steps": [{"key": "hearing", "excluded_from_limit": True}]}})


def figure(report, key):
    return next(f for f in report["figures"] if f["key"] == key)


async def test_kpis_count_each_figure_and_the_recompute_equals_the_incremental_rows(client):
    bus = client.app.state.bus
    dept = "LD-T" + uuid.uuid4().hex[:6]
    a1, a2, a3, a4 = (new_id() for _ in range(4))
    events = [
        item(dept + "-1", dept, True), item(dept + "-2", dept, False),
        submitted(a1, "2026-03-02T08:00:00", channel="online", department=dept),
        accepted(a1, "2026-03-02T09:00:00", channel="online", department=dept),
        task_decided(a1, "T1", "2026-03-03T10:00:00", "request_correction"),
        reopened(a1, "T1", "2026-03-04T10:00:00"),
        decided(a1, "2026-03-05T10:00:00"), delivered(a1, "2026-03-05T11:00:00", "electronic"),
        submitted(a2, "2026-03-03T08:00:00", channel="window", department=dept),
        accepted(a2, "2026-03-03T09:00:00", channel="window", department=dept), visit(a2, "2026-03-03T09:00:00"),
        decided(a2, "2026-03-20T10:00:00"),
        submitted(a3, "2026-03-04T08:00:00", channel="mobile", department=dept),
        accepted(a3, "2026-03-04T09:00:00", channel="mobile", department=dept),
        visit(a3, "2026-03-05T09:00:00"), visit(a3, "2026-03-06T09:00:00"),
        delivered(a3, "2026-03-10T09:00:00", "pickup"),
        submitted(a4, "2026-04-02T08:00:00", channel="online", department=dept),
    ]
    for e in events:
        await bus.publish(e)
    await bus.publish(events[-2])  # a duplicate the bus drops
    again = visit(a3, "2026-03-06T09:00:00")  # the same visit re-issued under a new id: one visit
    await bus.publish(again)
    params = {"from": "2026-03-01", "to": "2026-03-31", "department": dept}

    async def complete():
        r = await client.get("/efficacy/v1/kpis", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        ok = (body["applications"] == 3 and figure(body, "on_time_rate")["denominator"] == 2
              and figure(body, "fully_online_item_rate")["denominator"] == 2
              and figure(body, "online_completion_rate")["numerator"] == 1
              and figure(body, "zero_visit_rate")["denominator"] == 2
              and figure(body, "at_most_one_visit_rate")["numerator"] == 1
              and figure(body, "corrections_per_application")["numerator"] == 1)
        return ok and body
    report = await eventually(complete)
    values = {f["key"]: f["value"] for f in report["figures"]}
    assert values == {
        "fully_online_item_rate": 0.5, "online_application_rate": 0.6667, "online_completion_rate": 0.3333,
        "at_most_one_visit_rate": 0.5, "zero_visit_rate": 0.5, "on_time_rate": 0.5,
        "average_workdays_used": 7.5,  # a1: 3 working days less 1 paused; a2: 13 (03-03 → 03-20)
        "average_promised_workdays": 5.0, "corrections_per_application": 0.3333, "rating_score": None,
    }
    assert figure(report, "fully_online_item_rate")["meets_target"] is True
    assert figure(report, "online_completion_rate")["meets_target"] is False
    assert figure(report, "at_most_one_visit_rate")["target"] == 0.8
    assert all(f["definition"] for f in report["figures"])
    recomputed = (await client.get("/efficacy/v1/kpis", params=params | {"source": "recomputed"})).json()
    assert recomputed["figures"] == report["figures"]
    everything = {"from": "2020-01-01", "to": "2030-12-31", "department": dept}

    async def all_four():
        body = (await client.get("/efficacy/v1/kpis", params=everything)).json()
        return body["applications"] == 4 and body
    inc = await eventually(all_four)
    rec = (await client.get("/efficacy/v1/kpis", params=everything | {"source": "recomputed"})).json()
    assert inc["figures"] == rec["figures"] and inc["applications"] == rec["applications"] == 4
    by_point = (await client.get("/efficacy/v1/kpis", params=params | {"service_point": "LD-SL"})).json()
    assert by_point["applications"] == 0 and figure(by_point, "online_application_rate")["value"] is None


async def test_kpis_export_as_csv_and_refuse_bad_periods(client):
    r = await client.get("/efficacy/v1/kpis", params={"from": "2026-03-01", "to": "2026-03-31", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0] == "key,name,value,numerator,denominator,target,meets_target,definition"
    assert len(lines) == 11 and lines[1].startswith("fully_online_item_rate,网上全流程办理率")
    r = await client.get("/efficacy/v1/kpis", params={"from": "2026-03-31", "to": "2026-03-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "order"
    r = await client.get("/efficacy/v1/kpis", params={"from": "2026-03-01", "to": "2026-03-31", "format": "xml"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.format"
    r = await client.get("/efficacy/v1/kpis", params={"to": "2026-03-31"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.from"
