"""Integration: the simulator in-process, identity and workflow played by a real HTTP server, the real NATS."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest_asyncio

from services.simulator.app import create_app
from services.simulator.clients import DECISION_CONNECTIONS
from services.simulator.config import SimulatorSettings
from services.simulator.domain.webhooks import sign
from services.simulator.tests.platform_double import PlatformDouble
from shared.events import Event
from shared.settings import PlatformSettings
from shared.testing import TokenIssuer, assert_same_answer, eventually, running_app


def simulator_settings(platform: PlatformDouble, state_file: Path, nats_url: str, bus_prefix: str,
                       var_dir: Path, **overrides: object) -> SimulatorSettings:
    return SimulatorSettings(
        identity_url=platform.url,
        workflow_url=platform.url,
        public_url="http://127.0.0.1:18190",
        admin_username=platform.admin_username,
        admin_password=platform.admin_password,
        state_file=state_file,
        retry_seconds=0.05,
        platform=PlatformSettings(nats_url=nats_url, bus_prefix=bus_prefix, var_dir=var_dir),
        **overrides,
    )


@pytest_asyncio.fixture(scope="module")
async def platform() -> AsyncIterator[PlatformDouble]:
    async with PlatformDouble().serving() as double:
        yield double


@pytest_asyncio.fixture(scope="module")
async def state_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("simulator") / "simulator.json"


@pytest_asyncio.fixture(scope="module")
async def client(platform, state_file, nats_url, bus_prefix, var_dir, tokens):
    settings = simulator_settings(platform, state_file, nats_url, bus_prefix, var_dir)
    async with running_app(create_app, settings, tokens=tokens) as c:
        c.headers.update(tokens.headers("admin-1", kind="staff", roles=["admin"]))  # the rules are an admin's
        yield c


def task_event(department: str, *, task_id: str | None = None, application_id: str | None = None,
               type: str = "yimen.workflow.task.assigned") -> tuple[str, bytes]:
    task_id = task_id or uuid.uuid4().hex
    data = {
        "task_id": task_id,
        "application_id": application_id or uuid.uuid4().hex,
        "receipt_number": "LD2026112600001",
        "item_code": "11441781MB0000001A-FOOD",
        "department": department,
        "step_key": "parallel_review",
        "step_name": "并联审批",
        "stage_kind": "parallel",
        "lead": department == "LD-SCJGJ",
        "limit_days": 5,
        "due_at": "2026-12-03T10:00:00+00:00",
        "assigned_at": "2026-11-26T10:00:00+00:00",
    }
    event = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/yimen/workflow", "type": type,
             "subject": task_id, "time": "2026-11-26T10:00:00+00:00", "datacontenttype": "application/json",
             "data": data}
    return task_id, json.dumps(event, ensure_ascii=False).encode()


def signed_headers(platform: PlatformDouble, department: str, body: bytes, *, at: float | None = None,
                   webhook_id: str | None = None) -> dict[str, str]:
    secret = platform.webhooks[department]["secret"]
    headers = sign(secret, webhook_id or "msg_" + uuid.uuid4().hex, int(at or time.time()), body)
    return {**headers, "content-type": "application/json"}


async def set_rule(client, code: str, **rule: object) -> None:
    r = await client.put(f"/simulator/v1/departments/{code}/rule", json=rule)
    assert r.status_code == 200, r.text


async def deliver(client, platform, department: str, body: bytes, **kw: object):
    return await client.post(
        f"/simulator/v1/webhooks/{department}", content=body, headers=signed_headers(platform, department, body, **kw)
    )


async def test_registers_a_client_and_a_webhook_for_every_department(client, platform, state_file):
    departments = (await client.get("/simulator/v1/departments")).json()
    assert len(departments) >= 4 and all(d["registered"] for d in departments)
    for d in departments:
        hook = platform.webhooks[d["code"]]
        assert hook["url"] == f"http://127.0.0.1:18190/simulator/v1/webhooks/{d['code']}"
        assert hook["enabled"] is True
    saved = json.loads(state_file.read_text())["departments"]
    assert saved["LD-SCJGJ"]["webhook_secret"] == platform.webhooks["LD-SCJGJ"]["secret"]
    assert platform.clients[saved["LD-SCJGJ"]["client_id"]][1] == "LD-SCJGJ"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"


async def test_a_signed_task_is_approved_through_workflow_with_the_department_token(client, platform, state_file):
    await set_rule(client, "LD-SCJGJ", mode="approve", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-SCJGJ")
    r = await deliver(client, platform, "LD-SCJGJ", body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "scheduled" and r.json()["decision"]["outcome"] == "approve"
    call = (await eventually(lambda: platform.decisions_for(task_id)))[0]
    saved = json.loads(state_file.read_text())["departments"]
    assert call.department == "LD-SCJGJ" and call.client_id == saved["LD-SCJGJ"]["client_id"]
    assert call.body["outcome"] == "approve"
    assert set(call.body) == {"outcome", "reasons", "legal_basis", "missing"} and call.body["missing"] == []
    assert call.body["reasons"] and call.body["legal_basis"] is None

    async def sent():
        items = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()["items"]
        return items if items and items[0]["status"] == "sent" else None

    record = (await eventually(sent))[0]
    assert record["response_status"] == 200 and record["channel"] == "rest" and record["attempts"] == 1


async def test_each_department_decides_on_its_own_few_connections(client, platform):
    """A burst of decisions from two departments: each department's go on connections of its own, at most
    DECISION_CONNECTIONS of them (one shared pool opened a connection per decision in flight, and every request
    then checked them all)."""
    departments = ("LD-SCJGJ", "LD-XFJ")
    for code in departments:
        await set_rule(client, code, mode="approve", delay_seconds=0, channel="rest")
    platform.decision_pause = 0.2
    try:
        sent = {code: [task_event(code) for _ in range(3 * DECISION_CONNECTIONS)] for code in departments}
        for code, events in sent.items():
            for _, body in events:
                assert (await deliver(client, platform, code, body)).status_code == 202
        ids = {code: {task_id for task_id, _ in events} for code, events in sent.items()}
        await eventually(lambda: all(all(platform.decisions_for(t) for t in ids[c]) for c in departments), timeout=20)
    finally:
        platform.decision_pause = 0.0
    ports = {code: {d.port for d in platform.decisions if d.task_id in ids[code]} for code in departments}
    assert all(0 < len(p) <= DECISION_CONNECTIONS for p in ports.values()), ports
    assert not ports["LD-SCJGJ"] & ports["LD-XFJ"], ports


async def test_reject_mode_sends_reasons_and_legal_basis(client, platform):
    await set_rule(client, "LD-XFJ", mode="reject", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-XFJ")
    assert (await deliver(client, platform, "LD-XFJ", body)).status_code == 202
    call = (await eventually(lambda: platform.decisions_for(task_id)))[0]
    assert call.body["outcome"] == "reject" and call.body["reasons"] and call.body["legal_basis"]


async def test_the_delay_is_waited_before_answering(client, platform):
    await set_rule(client, "LD-GAJ", mode="approve", delay_seconds=0.6, channel="rest")
    task_id, body = task_event("LD-GAJ")
    started = time.monotonic()
    r = await deliver(client, platform, "LD-GAJ", body)
    assert r.json()["decision"]["due_at"]
    await eventually(lambda: platform.decisions_for(task_id))
    assert time.monotonic() - started >= 0.55


async def test_a_workflow_that_is_briefly_down_gets_the_decision_when_it_is_back(client, platform):
    await set_rule(client, "LD-GAJ", mode="approve", delay_seconds=0, channel="rest")
    platform.failing_decisions = 2
    task_id, body = task_event("LD-GAJ")
    await deliver(client, platform, "LD-GAJ", body)
    await eventually(lambda: platform.decisions_for(task_id))
    assert platform.count(f"decision-503:{task_id}") == 2

    async def sent():
        items = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()["items"]
        return items and items[0]["status"] == "sent" and items[0]
    record = await eventually(sent)
    assert record["attempts"] == 3


async def test_an_expired_department_token_is_renewed_once(client, platform):
    await set_rule(client, "LD-GAJ", mode="approve", delay_seconds=0, channel="rest")
    platform.tokens = {t: owner for t, owner in platform.tokens.items() if owner == "admin"}
    task_id, body = task_event("LD-GAJ")
    await deliver(client, platform, "LD-GAJ", body)
    call = (await eventually(lambda: platform.decisions_for(task_id)))[0]
    assert call.department == "LD-GAJ" and platform.count(f"decision-401:{task_id}") == 1


async def test_correct_once_asks_for_a_correction_then_approves_the_reopened_task(client, platform):
    await set_rule(client, "LD-WJJ", mode="correct_once", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-WJJ")
    await deliver(client, platform, "LD-WJJ", body)
    first = (await eventually(lambda: platform.decisions_for(task_id)))[0]
    assert first.body["outcome"] == "request_correction"
    assert first.body["missing"][0]["material_code"] and first.body["missing"][0]["reason"]
    _, reopened = task_event("LD-WJJ", task_id=task_id, type="yimen.workflow.task.reopened")
    await deliver(client, platform, "LD-WJJ", reopened)
    calls = await eventually(lambda: len(platform.decisions_for(task_id)) == 2 and platform.decisions_for(task_id))
    assert calls[1].body["outcome"] == "approve"


async def answered_once(client: httpx.AsyncClient, task_id: str) -> bool:
    """The simulator holds one record for the task and has sent its answer: no other answer is on its way."""
    items = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()["items"]
    return len(items) == 1 and items[0]["status"] == "sent"


async def test_never_mode_keeps_the_task_without_answering(client, platform):
    await set_rule(client, "LD-MZJ", mode="never", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-MZJ")
    r = await deliver(client, platform, "LD-MZJ", body)
    assert r.status_code == 200 and r.json()["status"] == "withheld"
    # The one record of the delivery says withheld: no answer was scheduled, so none can reach the platform.
    items = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()["items"]
    assert len(items) == 1 and items[0]["status"] == "withheld" and items[0]["outcome"] is None
    assert platform.decisions_for(task_id) == []


async def test_a_task_workflow_already_closed_is_recorded_as_a_conflict(client, platform):
    await set_rule(client, "LD-RSJ", mode="approve", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-RSJ")
    platform.closed_tasks.add(task_id)
    await deliver(client, platform, "LD-RSJ", body)

    async def conflict():
        items = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()["items"]
        return items if items and items[0]["status"] == "conflict" else None

    record = (await eventually(conflict))[0]
    assert record["response_status"] == 409 and len(platform.decisions_for(task_id)) == 1


async def test_a_resigned_retry_of_the_same_delivery_is_acknowledged_and_decided_once(client, platform):
    await set_rule(client, "LD-ZJJ", mode="approve", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-ZJJ")
    assert (await deliver(client, platform, "LD-ZJJ", body, webhook_id="msg_retry", at=time.time() - 20)
            ).status_code == 202
    retry = await deliver(client, platform, "LD-ZJJ", body, webhook_id="msg_retry")
    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    await eventually(lambda: platform.decisions_for(task_id))
    await eventually(lambda: answered_once(client, task_id))
    assert len(platform.decisions_for(task_id)) == 1


async def test_bad_deliveries_are_refused_precisely_and_nothing_is_decided(client, platform):
    await set_rule(client, "LD-JYJ", mode="approve", delay_seconds=0, channel="rest")
    refused: list[str] = []

    async def expect(status: int, rule: str, response) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status
        assert problem.get("rule") == rule or any(e["rule"] == rule for e in problem.get("errors", [])), problem

    url = "/simulator/v1/webhooks/LD-JYJ"
    task_id, body = task_event("LD-JYJ")
    refused.append(task_id)
    await expect(400, "missing_headers", await client.post(url, content=body))

    headers = signed_headers(platform, "LD-JYJ", body)
    await expect(401, "bad_signature", await client.post(url, content=body.replace(b"LD2026", b"LD2027"),
                                                       headers=headers))
    other = sign("whsec_" + "A" * 32, "msg_x", int(time.time()), body)
    await expect(401, "bad_signature", await client.post(url, content=body, headers=other))
    await expect(401, "timestamp_skew",
                 await client.post(url, content=body, headers=signed_headers(platform, "LD-JYJ", body,
                                                                             at=time.time() - 600)))
    await expect(401, "timestamp_skew",
                 await client.post(url, content=body, headers=signed_headers(platform, "LD-JYJ", body,
                                                                             at=time.time() + 600)))
    bad_ts = {**headers, "webhook-timestamp": "soon"}
    await expect(400, "malformed_timestamp", await client.post(url, content=body, headers=bad_ts))

    # Signed by the right department but about another one's task; sent again, it is refused again.
    other_task, foreign = task_event("LD-SCJGJ")
    refused.append(other_task)
    foreign_headers = signed_headers(platform, "LD-JYJ", foreign)
    for _ in range(2):
        await expect(422, "department_mismatch",
                     await client.post(url, content=foreign, headers=foreign_headers))
    await expect(422, "json_invalid", await deliver(client, platform, "LD-JYJ", b"{not json"))
    no_task = json.dumps({"type": "yimen.workflow.task.assigned", "data": {"department": "LD-JYJ"}}).encode()
    r = await deliver(client, platform, "LD-JYJ", no_task)
    await expect(422, "missing", r)
    assert r.json()["errors"][0]["field"] == "body.data.task_id"

    r = await client.post("/simulator/v1/webhooks/LD-NOPE", content=body, headers=headers)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

    # No record of any refused delivery: nothing was scheduled, so nothing can reach the platform later.
    for t in refused:
        assert (await client.get("/simulator/v1/decisions", params={"task_id": t})).json()["items"] == []
        assert platform.decisions_for(t) == []


async def test_a_replayed_delivery_is_refused_and_decided_once(client, platform):
    await set_rule(client, "LD-YBJ", mode="approve", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-YBJ")
    headers = signed_headers(platform, "LD-YBJ", body)
    assert (await client.post("/simulator/v1/webhooks/LD-YBJ", content=body, headers=headers)).status_code == 202
    replay = await client.post("/simulator/v1/webhooks/LD-YBJ", content=body, headers=headers)
    assert replay.status_code == 400 and replay.json()["rule"] == "replayed"
    await eventually(lambda: platform.decisions_for(task_id))
    await eventually(lambda: answered_once(client, task_id))
    assert len(platform.decisions_for(task_id)) == 1


async def test_other_event_types_are_acknowledged_and_ignored(client, platform):
    task_id, body = task_event("LD-ZSJ", type="yimen.workflow.stage.completed")
    r = await deliver(client, platform, "LD-ZSJ", body)
    assert r.status_code == 200 and r.json() == {"status": "ignored", "decision": None}


async def test_the_bus_channel_publishes_the_department_decision_event(client, platform, nats_url, bus_prefix):
    await set_rule(client, "LD-STHJJ", mode="approve", delay_seconds=0, channel="bus")
    subject = f"{bus_prefix}.yimen.department.LD-STHJJ.decision"
    nc = await nats.connect(nats_url)
    try:
        # Read from the platform's stream, where workflow's durable consumer finds it.
        sub = await nc.jetstream().subscribe(subject, stream=client.app.state.bus.names.stream,
                                             ordered_consumer=True)
        task_id, body = task_event("LD-STHJJ")
        assert (await deliver(client, platform, "LD-STHJJ", body)).status_code == 202
        try:
            msg = await sub.next_msg(timeout=20)
        except nats.errors.TimeoutError:
            record = (await client.get("/simulator/v1/decisions", params={"task_id": task_id})).json()
            raise AssertionError(f"no decision event on {subject}; the simulator recorded {record}") from None
    finally:
        await nc.close()
    event = Event.from_json(msg.data)
    assert event.type == "yimen.department.LD-STHJJ.decision"
    assert event.source == "/department/LD-STHJJ" and event.subject == task_id
    assert event.data["task_id"] == task_id and event.data["outcome"] == "approve"
    assert event.data["decided_by"] == {"name": "云浮市生态环境局罗定分局"}
    assert {"reasons", "legal_basis", "missing"} <= set(event.data)
    assert platform.decisions_for(task_id) == []


async def test_rule_changes_are_validated(client):
    cases = [
        ({"mode": "maybe"}, "body.mode", "enum"),
        ({"mode": "approve", "delay_seconds": -2}, "body.delay_seconds", "greater_than_equal"),
        ({"mode": "approve", "channel": "fax"}, "body.channel", "enum"),
        ({"mode": "approve", "colour": "red"}, "body.colour", "extra_forbidden"),
    ]
    for body, field, rule in cases:
        r = await client.put("/simulator/v1/departments/LD-SCJGJ/rule", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert {"field": field, "rule": rule} == {k: r.json()["errors"][0][k] for k in ("field", "rule")}
    r = await client.put("/simulator/v1/departments/LD-NOPE/rule", json={"mode": "approve"})
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    r = await client.get("/simulator/v1/decisions", params={"limit": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


async def test_serves_its_operational_routes_and_documents_itself(client):
    assert (await client.get("/simulator/healthz")).json()["status"] == "ok"
    ready = await client.get("/simulator/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"bus": "ok", "registration": "ok"}
    spec = (await client.get("/simulator/openapi.json")).json()
    assert spec["info"]["title"] == "Yimen simulator"
    assert "/simulator/v1/webhooks/{department}" in spec["paths"]
    assert "http_requests_total" in (await client.get("/simulator/metrics")).text
    missing = await client.get("/simulator/v1/no-such-thing")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_only_an_admin_changes_a_departments_rule(client, tokens):
    url = "/simulator/v1/departments/LD-SCJGJ/rule"
    r = await client.put(url, json={"mode": "never"}, headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    citizen = tokens.headers("p-1", roles=["citizen"])
    assert (await client.put(url, json={"mode": "never"}, headers=citizen)).status_code == 403
    forged = {"Authorization": "Bearer " + TokenIssuer().token("admin-1", kind="staff", roles=["admin"])}
    assert (await client.put(url, json={"mode": "never"}, headers=forged)).status_code == 401
    departments = (await client.get("/simulator/v1/departments")).json()
    assert next(d for d in departments if d["code"] == "LD-SCJGJ")["rule"]["mode"] != "never"


async def test_only_an_admin_takes_the_sandbox_sms_gateway_down(client, tokens):
    url = "/simulator/v1/sms/outage"
    r = await client.put(url, json={"seconds": 30}, headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    citizen = tokens.headers("p-1", roles=["citizen"])
    assert (await client.put(url, json={"seconds": 30}, headers=citizen)).status_code == 403
    assert (await client.get("/simulator/v1/sms")).json()["down_for_seconds"] == 0
    admin = tokens.headers("admin-1", kind="staff", roles=["admin"])
    r = await client.put(url, json={"seconds": 0}, headers=admin)
    assert r.status_code == 200 and r.json()["down_for_seconds"] == 0


async def test_a_delivery_is_answered_without_the_router_as_the_route_answers_it(client, platform):
    """Deliveries are most of the simulator's requests, so `receive_webhook` has a fast path (`FastPost`): what it
    takes is answered as the route answers, and every refusal is left to the route's own problem."""
    fast = client.app.state.fast_paths

    async def both(send) -> tuple[httpx.Response, httpx.Response]:
        before = fast.answered
        quick = await send()
        assert fast.answered == before + 1, quick.text
        fast.enabled = False
        try:
            routed = await send()
        finally:
            fast.enabled = True
        return quick, routed

    await set_rule(client, "LD-ZJJ", mode="approve", delay_seconds=0, channel="rest")
    task_id, body = task_event("LD-ZJJ")
    webhook_id = "msg_" + uuid.uuid4().hex
    # Taken once, by the fast path; the same delivery sent again (signed afresh) is a duplicate either way.
    taken = await deliver(client, platform, "LD-ZJJ", body, webhook_id=webhook_id)
    assert fast.answered and taken.status_code == 202 and taken.headers["content-type"] == "application/json"
    assert taken.json()["status"] == "scheduled" and taken.json()["decision"]["task_id"] == task_id
    assert taken.headers["x-request-id"] and taken.headers["traceparent"]
    quick, routed = await both(lambda: deliver(client, platform, "LD-ZJJ", body, webhook_id=webhook_id,
                                               at=time.time() + 1))
    assert quick.json() == {"status": "duplicate", "decision": None}
    assert_same_answer(quick, routed)
    assert len(await eventually(lambda: platform.decisions_for(task_id))) == 1
    # A taken delivery's answer is the route's in shape: the decision record as the route renders it.
    fast.enabled = False
    try:
        other_id, other = task_event("LD-ZJJ")
        by_route = await deliver(client, platform, "LD-ZJJ", other)
    finally:
        fast.enabled = True
    assert by_route.status_code == 202 and set(by_route.json()["decision"]) == set(taken.json()["decision"])
    assert [k for k in by_route.headers if k != "content-length"] == [k for k in taken.headers if k != "content-length"]

    # Refusals are the route's: nothing answered by the fast path.
    before = fast.answered
    _, body = task_event("LD-ZJJ")
    bad = {**signed_headers(platform, "LD-ZJJ", body), "webhook-signature": "v1,AAAA"}
    assert (await client.post("/simulator/v1/webhooks/LD-ZJJ", content=body, headers=bad)).status_code == 401
    assert (await deliver(client, platform, "LD-ZJJ", b"not json")).status_code == 422
    mismatch = (await deliver(client, platform, "LD-ZJJ", task_event("LD-GAJ")[1])).json()
    assert mismatch["status"] == 422 and mismatch["errors"][0]["rule"] == "department_mismatch"
    r = await client.post("/simulator/v1/webhooks/LD-NOPE", content=body, headers=signed_headers(platform, "LD-ZJJ", body))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/simulator/v1/webhooks/" + "X" * 41, content=body)
    assert r.status_code == 422
    assert fast.answered == before
