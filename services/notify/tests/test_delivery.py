"""Messages from events, with the real bus, the real sandbox gateway and real HTTP: one per event and channel
under redelivery and a restart, nothing lost while the gateway is down, quiet hours hold and release."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from services.notify.domain.schedule import CHINA
from services.notify.tests import helpers as h
from shared.testing import eventually


async def messages(p: Any, app: str) -> list[dict[str, Any]]:
    r = await p.client.get("/notify/v1/messages", params={"application_id": app, "limit": 200}, headers=p.admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def settled(p: Any, app: str, count: int) -> list[dict[str, Any]]:
    """Wait until the application has `count` messages and none is still on its way."""
    async def check() -> Any:
        rows = await messages(p, app)
        return rows if len(rows) >= count and all(m["status"] in ("delivered", "failed") for m in rows) else None

    return await eventually(check, timeout=30)


def per_kind_channel(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((m["kind"], m["channel"]) for m in rows)


async def test_each_trigger_makes_one_message_per_channel_under_redelivery_and_a_restart(platform):
    p = platform
    person, mobile, app, task = h.new_id("p"), h.phone(), h.new_id(), h.new_id("t")
    events = [h.submitted(app, person), h.accepted(app, person, mobile), h.returned(app),
              h.task_assigned(app, task), h.correction_requested(app, task), h.decided(app, person),
              h.payment_requested(app, person), h.ready_for_collection(app, person), h.delivered(app)]
    for e in events:
        await p.publish(e)
    kinds = ["application_accepted", "application_returned", "correction_requested", "application_decided",
             "payment_due", "ready_for_collection", "application_delivered"]
    # Seven kinds on inbox and SMS, and the invitation to rate in the inbox only.
    expected = Counter({**{(k, "inbox"): 1 for k in kinds}, **{(k, "sms"): 1 for k in kinds},
                        ("rating_invited", "inbox"): 1})
    rows = await settled(p, app, sum(expected.values()))
    assert per_kind_channel(rows) == expected
    assert all(m["status"] == "delivered" for m in rows), [m for m in rows if m["status"] != "delivered"]

    # Every event again (new message ids, so JetStream cannot drop them), then a restart of notify with its
    # consumer's position forgotten, so the whole stream is delivered to it once more.
    for e in events:
        await p.redeliver(e)
    await p.publish(h.card(app, "yellow"))
    await eventually(lambda: _has(p, app, ("card_raised", "sms")), timeout=30)
    await p.notify.stop()
    bus_names = p.app.state.bus.names
    import nats

    nc = await nats.connect(p.settings.platform.nats_url)
    try:
        await nc.jetstream().delete_consumer(bus_names.stream, bus_names.durable("notify-events"))
    finally:
        await nc.close()
    await p.restart()
    probe = h.new_id()
    await p.publish(h.accepted(probe, person, mobile))  # consumed after the whole replay
    await settled(p, probe, 2)
    rows = await settled(p, app, sum(expected.values()) + 2)
    assert per_kind_channel(rows) == expected + Counter({("card_raised", "inbox"): 1, ("card_raised", "sms"): 1})

    # The gateway received each SMS once, and each says only what its template names.
    sms = await h.sms_to(p.sim, mobile)
    about_app = [s for s in sms if s["reference"] in {m["id"] for m in rows}]
    assert len(about_app) == len(kinds) and len({s["reference"] for s in about_app}) == len(kinds)
    assert all(s["receipt"] == "delivered" and s["content"].startswith("【罗定政务】") for s in about_app)
    assert not any("445381199001011230" in m["body"] or "4453" in m["body"] for m in rows)
    accepted_sms = next(s["content"] for s in about_app if "已受理" in s["content"])
    assert "食品经营许可" in accepted_sms and "2026年12月10日" in accepted_sms, accepted_sms  # 10 working days
    assert len(accepted_sms) <= 70
    payment_sms = next(s["content"] for s in about_app if "缴款码" in s["content"])
    assert "应缴50.00元" in payment_sms and "4400123456789" in payment_sms and "2026年12月15日" in payment_sms
    assert any("罗城街道便民服务中心" in s["content"] for s in about_app)  # the chosen collection point


async def _has(p: Any, app: str, key: tuple[str, str]) -> bool:
    return key in per_kind_channel(await messages(p, app))


async def test_the_gateway_down_for_a_while_then_up_loses_nothing(platform):
    p = platform
    person, mobile = h.new_id("p"), h.phone()
    r = await p.sim.put("/simulator/v1/sms/outage", json={"seconds": 4})
    assert r.status_code == 200 and r.json()["down_for_seconds"] > 0
    apps = [h.new_id() for _ in range(3)]
    for app in apps:
        await p.publish(h.accepted(app, person, mobile))

    async def waiting() -> Any:
        rows = [m for app in apps for m in await messages(p, app) if m["channel"] == "sms"]
        return rows if len(rows) == 3 and all(m["attempts"] >= 1 and m["status"] == "queued" for m in rows) else None

    rows = await eventually(waiting, timeout=30)
    assert all("HTTP 503" in (m["reason"] or "") for m in rows)
    mine = await p.client.get(f"/notify/v1/messages/{rows[0]['id']}", headers=p.person(person))
    assert mine.status_code == 200 and mine.json()["status"] == "queued" and mine.json()["destination"].count("*") == 4
    assert await h.sms_to(p.sim, mobile) == []
    for app in apps:  # the gateway comes back by itself; everything goes, once
        await settled(p, app, 2)
    sms = await h.sms_to(p.sim, mobile)
    assert sorted(s["reference"] for s in sms) == sorted(m["id"] for m in rows)
    for app in apps:
        assert all(m["status"] == "delivered" for m in await messages(p, app))


async def test_quiet_hours_hold_sms_and_release_them(platform):
    p = platform
    person, mobile, app = h.new_id("p"), h.phone(), h.new_id()
    now = datetime.now(CHINA)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime("%H:%M")
    r = await p.client.put("/notify/v1/me/preferences", headers=p.person(person),
                           json={"quiet_hours": {"start": start, "end": end}})
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] == {"start": start, "end": end}
    await p.publish(h.accepted(app, person, mobile))

    async def held() -> Any:
        rows = {m["channel"]: m for m in await messages(p, app)}
        return rows if rows.get("sms", {}).get("status") == "held" else None

    rows = await eventually(held, timeout=30)
    assert rows["inbox"]["status"] == "delivered"  # the inbox is silent: never held
    release = datetime.fromisoformat(rows["sms"]["next_attempt_at"]).astimezone(CHINA)
    assert release.strftime("%H:%M") == end and release > now
    assert await h.sms_to(p.sim, mobile) == []
    # The person ends their quiet hours: what was held goes now.
    r = await p.client.put("/notify/v1/me/preferences", headers=p.person(person), json={"quiet_hours": None})
    assert r.status_code == 200 and r.json()["quiet_hours"] is None
    rows = await settled(p, app, 2)
    assert {m["channel"]: m["status"] for m in rows} == {"inbox": "delivered", "sms": "delivered"}
    assert len(await h.sms_to(p.sim, mobile)) == 1


async def test_department_cards_and_data_anomalies_reach_the_contact_without_personal_data(platform):
    p = platform
    app = h.new_id()
    await p.publish(h.card(app, "red", department="LD-WJJ"))
    await p.publish(h.anomaly())
    rows = await settled(p, app, 2)
    sms = next(m for m in rows if m["channel"] == "sms")
    assert sms["urgent"] is True and sms["destination"] == "137****7000" and "红牌" in sms["body"]
    staff = p.tokens.headers("r-1", kind="staff", roles=["department_reviewer"], dept="LD-WJJ")
    inbox = (await p.client.get("/notify/v1/me/notifications", headers=staff)).json()["items"]
    assert any(i["application_id"] == app and i["kind"] == "card_raised" for i in inbox)
    other = p.tokens.headers("r-2", kind="staff", roles=["department_reviewer"], dept="LD-XFJ")
    assert (await p.client.get(f"/notify/v1/messages/{sms['id']}", headers=other)).status_code == 404

    office = p.tokens.headers("r-3", kind="staff", roles=["department_reviewer"], dept="LD-ZSJ")

    async def anomaly_seen() -> Any:
        items = (await p.client.get("/notify/v1/me/notifications", headers=office)).json()["items"]
        return [i for i in items if i["kind"] == "access_anomaly"]

    items = await eventually(anomaly_seen, timeout=30)
    assert "445381199001011230" not in items[0]["body"] and "4453**********1230" in items[0]["body"]
    assert any(c["channel"] == "sms" for c in items[0]["channels"])


async def test_a_number_the_carrier_cannot_reach_ends_failed_with_the_carriers_reason(platform):
    p = platform
    person, app = h.new_id("p"), h.new_id()
    await p.publish(h.accepted(app, person, "19900001234"))  # the sandbox answers 空号 for 1990000…
    rows = await settled(p, app, 2)
    sms = next(m for m in rows if m["channel"] == "sms")
    assert sms["status"] == "failed" and sms["reason"] == "carrier: 空号" and sms["sent_at"] is not None
    inbox = (await p.client.get("/notify/v1/me/notifications", headers=p.person(person))).json()["items"]
    assert [c["status"] for c in inbox[0]["channels"] if c["channel"] == "sms"] == ["failed"]


async def test_an_sms_waiting_an_hour_for_the_gateway_still_goes_and_one_waiting_a_day_is_given_up(platform):
    from sqlalchemy import update

    from services.notify.store.tables import message
    from shared.types import utcnow

    p = platform
    person, mobile, late, stale = h.new_id("p"), h.phone(), h.new_id(), h.new_id()
    await p.sim.put("/simulator/v1/sms/outage", json={"seconds": 60})
    await p.publish(h.accepted(late, person, mobile))
    await p.publish(h.accepted(stale, person, mobile))

    async def retrying() -> Any:
        rows = [m for app in (late, stale) for m in await messages(p, app) if m["channel"] == "sms"]
        return rows if len(rows) == 2 and all(m["attempts"] >= 1 for m in rows) else None

    rows = {m["application_id"]: m for m in await eventually(retrying, timeout=30)}
    # As if the gateway had been down for 59 minutes, and for 25 hours.
    async with p.app.state.db.transaction() as s:
        await s.execute(update(message).where(message.c.id == rows[late]["id"])
                        .values(created_at=utcnow() - timedelta(minutes=59)))
        await s.execute(update(message).where(message.c.id == rows[stale]["id"])
                        .values(created_at=utcnow() - timedelta(hours=25)))
    await p.sim.put("/simulator/v1/sms/outage", json={"seconds": 0})  # the gateway is back
    by_app = {}
    for app in (late, stale):
        by_app[app] = next(m for m in await settled(p, app, 2) if m["channel"] == "sms")
    assert by_app[late]["status"] == "delivered"
    assert by_app[stale]["status"] == "failed" and by_app[stale]["reason"].startswith("gave_up: not sent within 24 h")
    assert [s["reference"] for s in await h.sms_to(p.sim, mobile)] == [rows[late]["id"]]
