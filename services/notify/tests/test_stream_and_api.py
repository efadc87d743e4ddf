"""The live stream (SSE), the inbox, preferences, templates, receipts and the daily jobs through the running
service."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from services.notify.service import run_daily
from services.notify.tests import helpers as h
from shared.testing import eventually


class SseReader:
    """Reads a text/event-stream response into events, keeping comments (heartbeats) apart."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments = 0

    async def next(self, timeout: float = 20) -> dict[str, Any]:
        async def one() -> dict[str, Any]:
            event: dict[str, Any] = {}
            async for line in self.lines:
                if line == "":
                    if "data" in event or "event" in event:
                        return event
                    event = {}
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(":")
                event[name] = value.lstrip(" ")
            raise EOFError

        return await asyncio.wait_for(one(), timeout)


async def test_the_stream_sends_a_persons_case_steps_as_they_happen_and_resumes_from_last_event_id(platform):
    p = platform
    person, app, task = h.new_id("p"), h.new_id(), h.new_id("t")
    me = p.person(person)
    async with p.client.stream("GET", "/notify/v1/me/stream", headers=me) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"].startswith("no-cache")
        sse = SseReader(r)
        await p.publish(h.submitted(app, person))
        await p.publish(h.accepted(app, person, h.phone()))
        await p.publish(h.task_assigned(app, task))
        # Someone else's case never shows.
        await p.publish(h.accepted(h.new_id(), h.new_id("p"), None))
        got = [await sse.next() for _ in range(3)]
        assert [e["event"] for e in got] == ["submitted", "accepted", "task_assigned"]
        data = [json.loads(e["data"]) for e in got]
        assert all(d["application_id"] == app for d in data)
        assert data[1]["promised_on"] == "2026-12-10" and "445381" not in got[1]["data"]
        ids = [int(e["id"]) for e in got]
        assert ids == sorted(ids)
        await asyncio.sleep(1.2)  # heartbeats every 0.5 s while nothing happens
        await p.publish(h.correction_requested(app, task))
        assert (await sse.next())["event"] == "task_request_correction"
        assert sse.comments >= 1
    # Reconnect after the second step: the third and fourth come again, nothing else.
    async with p.client.stream("GET", "/notify/v1/me/stream", headers={**me, "Last-Event-ID": str(ids[1])}) as r:
        sse = SseReader(r)
        again = [await sse.next(), await sse.next()]
        assert [e["event"] for e in again] == ["task_assigned", "task_request_correction"]
    async with p.client.stream("GET", "/notify/v1/me/stream", headers={**me, "Last-Event-ID": "x"}) as r:
        assert r.status_code == 422
    async with p.client.stream("GET", "/notify/v1/me/stream") as r:
        assert r.status_code == 401


async def test_an_organisations_agent_sees_each_step_once_and_another_agent_of_it_too(platform):
    p = platform
    org, agent, other, app, task = "91445381MA5" + h.new_id("")[:7], h.new_id("p"), h.new_id("p"), h.new_id(), \
        h.new_id("t")
    mine = p.tokens.headers(agent, roles=["citizen", "org_agent"], org=org)
    colleague = p.tokens.headers(other, roles=["citizen", "org_agent"], org=org)
    async with p.client.stream("GET", "/notify/v1/me/stream", headers=mine) as a, \
            p.client.stream("GET", "/notify/v1/me/stream", headers=colleague) as b:
        sa, sb = SseReader(a), SseReader(b)
        await p.publish(h.org_accepted(app, org, agent, h.phone()))
        await p.publish(h.task_assigned(app, task))
        got_a = [await sa.next(), await sa.next()]
        got_b = [await sb.next(), await sb.next()]
        assert [e["event"] for e in got_a] == [e["event"] for e in got_b] == ["accepted", "task_assigned"]
        await p.publish(h.delivered(app))
        assert (await sa.next())["event"] == "delivered"  # not a second `task_assigned` or `accepted`
    # The messages go to the agent who applied; the organisation's other agent does not get their SMS.
    inbox = (await p.client.get("/notify/v1/me/notifications", headers=mine)).json()["items"]
    assert any(i["application_id"] == app and i["kind"] == "application_accepted" for i in inbox)
    theirs = (await p.client.get("/notify/v1/me/notifications", headers=colleague)).json()["items"]
    assert not any(i["application_id"] == app for i in theirs)


async def test_streams_per_person_are_bounded_and_end_with_the_token(platform):
    p = platform
    person = h.new_id("p")
    me = p.person(person)
    opened = []
    async with contextlib_exit() as stack:
        for _ in range(p.config.stream_max_per_person):
            r = await stack.enter_async_context(p.client.stream("GET", "/notify/v1/me/stream", headers=me))
            assert r.status_code == 200
            opened.append(r)
        async with p.client.stream("GET", "/notify/v1/me/stream", headers=me) as extra:
            assert extra.status_code == 429
            assert extra.headers["content-type"] == "application/problem+json"
    # Slots are given back when clients leave.
    async def free() -> bool:
        async with p.client.stream("GET", "/notify/v1/me/stream", headers=me) as r:
            return r.status_code == 200
    assert await eventually(free)
    # A token about to expire ends the stream with `bye` (the client reconnects with a fresh one).
    short = p.tokens.headers(person, ttl=timedelta(seconds=2))
    async with p.client.stream("GET", "/notify/v1/me/stream", headers=short) as r:
        sse = SseReader(r)
        bye = await sse.next(timeout=15)
        assert bye["event"] == "bye"


def contextlib_exit():  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.AsyncExitStack()


async def test_inbox_lists_reads_and_pages_only_my_messages(platform):
    p = platform
    person, app = h.new_id("p"), h.new_id()
    me = p.person(person)
    await p.publish(h.accepted(app, person, None))  # no number anywhere: the SMS fails with the reason
    await p.publish(h.delivered(app))

    async def three() -> Any:
        items = (await p.client.get("/notify/v1/me/notifications", headers=me)).json()["items"]
        return items if len(items) == 3 else None

    items = await eventually(three, timeout=30)
    assert [i["kind"] for i in items][-1] == "application_accepted"
    sms = next(c for c in items[-1]["channels"] if c["channel"] == "sms")
    assert sms["status"] == "failed" and sms["reason"].startswith("no_contact_number")
    page = (await p.client.get("/notify/v1/me/notifications", params={"limit": 2}, headers=me)).json()
    rest = (await p.client.get("/notify/v1/me/notifications", params={"limit": 2, "cursor": page["next_cursor"]},
                               headers=me)).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in items] and rest["next_cursor"] is None
    first = items[0]["id"]
    assert (await p.client.post(f"/notify/v1/me/notifications/{first}/read", headers=p.person("someone"))
            ).status_code == 404
    assert (await p.client.post(f"/notify/v1/me/notifications/{first}/read", headers=me)).status_code == 204
    assert (await p.client.post(f"/notify/v1/me/notifications/{first}/read", headers=me)).status_code == 204
    unread = (await p.client.get("/notify/v1/me/notifications", params={"unread": "true"}, headers=me)).json()
    assert first not in [i["id"] for i in unread["items"]] and len(unread["items"]) == 2
    assert (await p.client.get(f"/notify/v1/messages/{first}", headers=p.person("someone"))).status_code == 404
    bad = await p.client.get("/notify/v1/me/notifications", params={"cursor": "!!"}, headers=me)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


async def test_a_refusal_to_accept_tells_the_applicant_the_reasons_and_the_legal_basis(platform):
    p = platform
    person, app = h.new_id("p"), h.new_id()
    await p.publish(h.submitted(app, person))
    await p.publish(h.not_accepted(app))

    async def told() -> Any:
        items = (await p.client.get("/notify/v1/me/notifications", headers=p.person(person))).json()["items"]
        return items or None

    items = await eventually(told, timeout=30)
    assert [i["kind"] for i in items] == ["application_not_accepted"]
    assert "不属于本机关职权范围" in items[0]["body"] and "第三十二条" in items[0]["body"]


async def test_preferences_choose_channels_and_refuse_what_is_not_a_rule(platform):
    p = platform
    person, mobile, app = h.new_id("p"), h.phone(), h.new_id()
    me = p.person(person)
    r = await p.client.get("/notify/v1/me/preferences", headers=me)
    assert r.status_code == 200 and r.json()["channels"]["application_accepted"] == ["inbox", "sms"]
    r = await p.client.put("/notify/v1/me/preferences", headers=me, json={
        "channels": {"application_accepted": ["inbox"]}, "phone": mobile, "quiet_hours": None})
    assert r.status_code == 200 and r.json()["channels"]["application_accepted"] == ["inbox"]
    assert r.json()["phone"] == mobile
    await p.publish(h.accepted(app, person, h.phone()))
    await p.publish(h.delivered(app))  # SMS goes to the person's own number, not the form's

    async def done() -> Any:
        rows = (await p.client.get("/notify/v1/messages", params={"application_id": app}, headers=p.admin)).json()
        rows = rows["items"]
        return rows if len(rows) == 4 and all(m["status"] == "delivered" for m in rows) else None

    rows = await eventually(done, timeout=30)
    assert sorted((m["kind"], m["channel"]) for m in rows) == [
        ("application_accepted", "inbox"), ("application_delivered", "inbox"), ("application_delivered", "sms"),
        ("rating_invited", "inbox")]
    assert len(await h.sms_to(p.sim, mobile)) == 1
    for body, field in (({"channels": {"nonsense": ["sms"]}}, "body.channels.nonsense"),
                        ({"channels": {"payment_due": ["fax"]}}, "body.channels.payment_due.0"),
                        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "body.quiet_hours.start"),
                        ({"phone": "12345"}, "body.phone")):
        r = await p.client.put("/notify/v1/me/preferences", headers=me, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field


async def test_an_admin_edits_a_template_with_if_match_and_previews_it(platform):
    p = platform
    url = "/notify/v1/templates/application_accepted"
    assert (await p.client.get(url, headers=p.person("x"))).status_code == 403
    r = await p.client.get(url, headers=p.admin)
    assert r.status_code == 200 and "promised_on" in r.json()["placeholders"]
    etag, channels = r.headers["etag"], r.json()["channels"]
    r = await p.client.post(url + "/preview", headers=p.admin, json={})
    assert r.status_code == 200
    sms = r.json()["channels"]["sms"]
    assert sms["body"].startswith("【罗定政务】") and sms["sms_parts"] == 1 and sms["length"] <= 70
    draft = {**channels, "sms": {"body": "您的身份证号((id_number))已受理"}}
    r = await p.client.post(url + "/preview", headers=p.admin, json={"channels": draft})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "unknown_placeholder"
    r = await p.client.post(url + "/preview", headers=p.admin, json={"personalisation": {"item_name": "x"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.personalisation.receipt_number"
    new = {**channels, "sms": {"body": "((item_name))已受理，承诺((promised_on))前办结。" + "详" * 60}}
    assert (await p.client.put(url, headers=p.admin, json={"channels": new})).status_code == 428
    assert (await p.client.put(url, headers={**p.admin, "If-Match": '"999"'}, json={"channels": new})
            ).status_code == 412
    r = await p.client.put(url, headers={**p.admin, "If-Match": etag}, json={"channels": new})
    assert r.status_code == 200 and r.json()["version"] == int(etag.strip('"')) + 1
    r = await p.client.post(url + "/preview", headers=p.admin, json={})
    assert r.json()["version"] == int(etag.strip('"')) + 1 and r.json()["channels"]["sms"]["sms_parts"] == 2
    # Restore the shorter text for the other tests (a third version; the second stays in history).
    r = await p.client.put(url, headers={**p.admin, "If-Match": r.headers.get("etag") or f'"{r.json()["version"]}"'},
                           json={"channels": channels})
    assert r.status_code == 200
    assert (await p.client.get("/notify/v1/templates/nope", headers=p.admin)).status_code == 404


async def test_receipts_must_be_signed_by_the_gateway(platform):
    p = platform
    body = json.dumps({"reference": "nope", "id": "g1", "status": "delivered"})
    r = await p.client.post("/notify/v1/sms/receipts", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 401
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    wrong = Webhook("whsec_" + "d3JvbmctZ2F0ZXdheS1zZWNyZXQ=").sign("m1", now, body)
    r = await p.client.post("/notify/v1/sms/receipts", content=body, headers={
        "webhook-id": "m1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": wrong})
    assert r.status_code == 401
    right = Webhook(p.config.sms_callback_secret).sign("m1", now, body)
    r = await p.client.post("/notify/v1/sms/receipts", content=body, headers={
        "webhook-id": "m1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": right})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_daily_jobs_remind_expiring_certificates_and_send_the_digest_once(platform):
    p = platform
    person, app = h.new_id("p"), h.new_id()
    today = date(2031, 3, 1)  # a day no other test's jobs ran on
    await p.publish(h.accepted(app, person, h.phone()))
    await p.publish(h.certificate_issued(app, "C-" + app, today + timedelta(days=20)))
    await p.publish(h.certificate_issued(None, "C2-" + app, today + timedelta(days=90)))
    await p.publish(h.card(app, "yellow"))

    async def known() -> bool:
        from sqlalchemy import select

        from services.notify.store.tables import certificate

        async with p.app.state.db.transaction() as s:
            rows = (await s.execute(select(certificate).where(certificate.c.certificate_number.like(f"%{app}")))).all()
        return len(rows) == 2 and all(r.person_id == person for r in rows)

    await eventually(known, timeout=30)
    async with p.app.state.db.transaction() as s:
        first = await run_daily(s, today)
    async with p.app.state.db.transaction() as s:
        second = await run_daily(s, today)
    assert first["expiry"] >= 2 and first["digest"] >= 1 and second == {"expiry": 0, "digest": 0, "purged": 0}
    me = (await p.client.get("/notify/v1/me/notifications", headers=p.person(person))).json()["items"]
    expiring = [i for i in me if i["kind"] == "certificate_expiring"]
    assert len(expiring) == 1 and "还有20天" in expiring[0]["body"]  # the 90-day one is outside the window
    sup = p.tokens.headers("sup-1", kind="staff", roles=["supervisor"])
    digest = [i for i in (await p.client.get("/notify/v1/me/notifications", headers=sup)).json()["items"]
              if i["kind"] == "supervisor_digest"]
    assert digest and "2031年2月28日" in digest[0]["title"]


async def test_a_step_names_the_case_as_it_now_reads_when_another_replica_changed_it(platform):
    from sqlalchemy import update

    from services.notify.store.tables import case_contact

    p = platform
    person, app, task = h.new_id("p"), h.new_id(), h.new_id("t")
    me = p.person(person)
    async with p.client.stream("GET", "/notify/v1/me/stream", headers=me) as r:
        sse = SseReader(r)
        await p.publish(h.accepted(app, person, None))
        assert json.loads((await sse.next())["data"])["item_name"] == "食品经营许可"
        # As if another replica had applied an event renaming the item: this one remembers the old name.
        async with p.app.state.db.transaction() as s:
            await s.execute(update(case_contact).where(case_contact.c.application_id == app)
                            .values(item_name="食品经营许可（延续）"))
        await p.publish(h.task_assigned(app, task))
        step = await sse.next()
        assert step["event"] == "task_assigned" and json.loads(step["data"])["item_name"] == "食品经营许可（延续）"
        # A step about a case known to nobody makes nothing, and the next one of this case still comes.
        await p.publish(h.task_assigned(h.new_id(), h.new_id("t")))
        await p.publish(h.task_assigned(app, h.new_id("t"), "LD-SCJ"))
        assert json.loads((await sse.next())["data"])["department"] == "LD-SCJ"


async def test_notify_runs_no_outbox_relay_only_its_consumer_and_senders(platform):
    """Notify publishes nothing (`publishes=False`): no relay polls its empty outbox, while its consumer and its
    senders run."""
    p = platform
    assert not hasattr(p.app.state, "relay")
    running = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
    assert {"notify-notify-events", "notify-dispatcher"} <= running, running
    assert "notify-relay" not in running


async def test_an_inbox_message_and_a_persons_step_enter_only_the_indexes_that_find_them(platform):
    """Issue 14: an inbox message has no next attempt and no gateway id, and a person's case step no organisation;
    the dispatcher's queue, the gateway's index and the organisations' feed index are partial, so those inserts
    write none of their entries (each was a B-tree descent per row)."""
    from sqlalchemy import text

    db = platform.app.state.db
    postgres = db.engine.dialect.name == "postgresql"
    query = ("SELECT indexdef FROM pg_indexes WHERE indexname = :n" if postgres
             else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n")
    async with db.transaction() as s:
        for name, column in (("ix_message_due", "next_attempt_at"), ("ix_message_gateway_id", "gateway_id"),
                             ("ix_feed_entry_organisation_seq", "organisation_id")):
            definition = (await s.execute(text(query), {"n": name})).scalar_one()
            assert f"WHERE ({column} IS NOT NULL)" in definition.replace("((", "(").replace("))", ")") or (
                f"WHERE {column} IS NOT NULL" in definition), definition
