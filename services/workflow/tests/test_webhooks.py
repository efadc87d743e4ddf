"""Department webhooks against a real HTTP receiver that verifies Standard Webhooks signatures: delivery,
retries with backoff while the department is down, disable/enable, replay, visibility, SSRF refusal."""

from __future__ import annotations

import uuid

import pytest

from services.workflow.tests.helpers import (
    Receiver,
    define_item,
    parallel_step,
    reviewer,
    start_case,
    supervisor,
    system,
    tasks_of,
)
from services.workflow.webhooks import check_endpoint
from shared.errors import ValidationProblem
from shared.testing import eventually


def new_code() -> str:
    return "HOOK-" + uuid.uuid4().hex[:8]


async def register(client, tokens, dept: str, url: str, **extra):  # type: ignore[no-untyped-def]
    r = await client.put(f"/workflow/v1/departments/{dept}/webhook", json={"url": url, **extra},
                         headers=system(tokens, dept))
    assert r.status_code == 200, r.text
    return r.json()


async def deliveries(client, tokens, dept: str, **params):  # type: ignore[no-untyped-def]
    r = await client.get(f"/workflow/v1/departments/{dept}/deliveries", headers=system(tokens, dept), params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_task_is_delivered_signed_to_the_department_webhook(client, tokens):
    receiver = Receiver()
    await receiver.start()
    try:
        hook = await register(client, tokens, "LD-WJJ", receiver.url)
        assert hook["secret"].startswith("whsec_") and hook["enabled"]
        receiver.secret = hook["secret"]
        # Changing the URL keeps the secret unless asked to rotate it.
        assert (await register(client, tokens, "LD-WJJ", receiver.url))["secret"] == hook["secret"]
        code = new_code()
        await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
        c = await start_case(client, tokens, code)
        task_id = tasks_of(c)["LD-WJJ"]["id"]
        got = await eventually(lambda: [r for r in receiver.received if r["event"]["subject"] == task_id])
        event = got[0]["event"]
        assert event["type"].endswith("yimen.workflow.task.assigned") or event["type"] == "yimen.workflow.task.assigned"
        assert event["data"]["task_id"] == task_id and event["data"]["department"] == "LD-WJJ"
        assert got[0]["headers"]["webhook-id"] == event["id"]
        assert receiver.bad_signatures == 0
        rows = await eventually(lambda: _delivered(client, tokens, "LD-WJJ", task_id))
        assert rows[0]["attempts"] == 1 and rows[0]["attempt_log"][0]["status_code"] == 204
        assert rows[0]["attempt_log"][0]["duration_ms"] >= 0
        # LD-XFJ has no endpoint: its delivery is kept as missed.
        xfj = await deliveries(client, tokens, "LD-XFJ")
        assert [d["state"] for d in xfj if d["task_id"] == tasks_of(c)["LD-XFJ"]["id"]] == ["missed"]
    finally:
        await receiver.stop()


async def _delivered(client, tokens, dept, task_id):  # type: ignore[no-untyped-def]
    rows = [d for d in await deliveries(client, tokens, dept) if d["task_id"] == task_id]
    return rows if rows and rows[0]["state"] == "delivered" else None


async def test_a_department_that_is_down_gets_retries_then_the_delivery(client, tokens):
    receiver = Receiver()  # not started: connection refused
    hook = await register(client, tokens, "LD-GAJ", receiver.url)
    receiver.secret = hook["secret"]
    code = new_code()
    await define_item(client, tokens, code, 1, [parallel_step(["LD-GAJ"])])
    c = await start_case(client, tokens, code)
    task_id = tasks_of(c)["LD-GAJ"]["id"]

    async def retried() -> object:
        rows = [d for d in await deliveries(client, tokens, "LD-GAJ") if d["task_id"] == task_id]
        return rows if rows and rows[0]["attempts"] >= 2 else None

    rows = await eventually(retried)
    assert rows[0]["state"] == "pending" and rows[0]["last_error"]
    assert all(a["status_code"] is None and a["error"] for a in rows[0]["attempt_log"])
    pending = await deliveries(client, tokens, "LD-GAJ", state="pending")
    assert task_id in {d["task_id"] for d in pending}
    await receiver.start()
    try:
        done = await eventually(lambda: _delivered(client, tokens, "LD-GAJ", task_id), timeout=15)
        assert done[0]["attempt_log"][-1]["status_code"] == 204
        assert len([r for r in receiver.received if r["event"]["subject"] == task_id]) == 1
    finally:
        await receiver.stop()


async def test_a_department_answering_5xx_is_retried_with_the_same_webhook_id(client, tokens):
    receiver = Receiver()
    await receiver.start()
    try:
        receiver.fail_next = 2
        receiver.secret = (await register(client, tokens, "LD-RSJ", receiver.url))["secret"]
        code = new_code()
        await define_item(client, tokens, code, 1, [parallel_step(["LD-RSJ"])])
        c = await start_case(client, tokens, code)
        task_id = tasks_of(c)["LD-RSJ"]["id"]
        done = await eventually(lambda: _delivered(client, tokens, "LD-RSJ", task_id), timeout=15)
        assert [a["status_code"] for a in done[0]["attempt_log"]] == [503, 503, 204]
        assert done[0]["attempts"] == 3 and done[0]["last_error"] is None
        (got,) = [r for r in receiver.received if r["event"]["subject"] == task_id]
        assert got["headers"]["webhook-id"] == done[0]["event_id"]
    finally:
        await receiver.stop()


async def test_a_disabled_endpoint_misses_deliveries_that_can_be_replayed(client, tokens):
    receiver = Receiver()
    await receiver.start()
    try:
        hook = await register(client, tokens, "LD-MZJ", receiver.url, enabled=False)
        receiver.secret = hook["secret"]
        code = new_code()
        await define_item(client, tokens, code, 1, [parallel_step(["LD-MZJ"])])
        c = await start_case(client, tokens, code)
        task_id = tasks_of(c)["LD-MZJ"]["id"]
        missed = await deliveries(client, tokens, "LD-MZJ", state="missed")
        assert task_id in {d["task_id"] for d in missed}
        refused = await client.post("/workflow/v1/departments/LD-MZJ/deliveries/replay", json={},
                                    headers=system(tokens, "LD-MZJ"))
        assert refused.status_code == 409  # nowhere to replay to while disabled
        await register(client, tokens, "LD-MZJ", receiver.url, enabled=True)
        r = await client.post("/workflow/v1/departments/LD-MZJ/deliveries/replay", json={},
                              headers=system(tokens, "LD-MZJ"))
        assert r.status_code == 200 and r.json()["replayed"] >= 1
        await eventually(lambda: [x for x in receiver.received if x["event"]["subject"] == task_id])
    finally:
        await receiver.stop()


async def test_only_the_department_or_an_admin_manages_its_webhook(client, tokens):
    body = {"url": "http://127.0.0.1:9/hooks"}
    other = await client.put("/workflow/v1/departments/LD-WJJ/webhook", json=body, headers=system(tokens, "LD-XFJ"))
    assert other.status_code == 403
    citizen = await client.put("/workflow/v1/departments/LD-WJJ/webhook", json=body, headers=tokens.headers("p"))
    assert citizen.status_code == 403
    admin = tokens.headers("admin-1", kind="staff", roles=["admin"])
    assert (await client.put("/workflow/v1/departments/LD-JYJ/webhook", json=body, headers=admin)).status_code == 200
    assert (await client.get("/workflow/v1/departments/LD-WJJ/deliveries", headers=system(tokens, "LD-XFJ"))).status_code == 403
    assert (await client.get("/workflow/v1/departments/LD-WJJ/deliveries", headers=supervisor(tokens))).status_code == 200
    bad = await client.put("/workflow/v1/departments/LD-JYJ/webhook", json={"url": "ftp://example.org/x"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0] == {
        "field": "body.url", "rule": "http_url", "message": "The webhook URL must be an absolute http(s) URL."}
    no_url = await client.put("/workflow/v1/departments/LD-JYJ/webhook", json={"enabled": True}, headers=admin)
    assert no_url.status_code == 422 and no_url.json()["errors"][0]["field"] == "body.url"
    bad_code = await client.put("/workflow/v1/departments/LD%20X/webhook", json=body, headers=admin)
    assert bad_code.status_code == 422
    assert (await client.get("/workflow/v1/departments/LD-YBJ/webhook", headers=system(tokens, "LD-YBJ"))).status_code == 404
    wrong_state = await client.get("/workflow/v1/departments/LD-WJJ/deliveries", headers=supervisor(tokens),
                                   params={"state": "lost"})
    assert wrong_state.status_code == 422
    reviewer_ok = await client.get("/workflow/v1/departments/LD-JYJ/webhook", headers=reviewer(tokens, "LD-JYJ"))
    assert reviewer_ok.status_code == 200


@pytest.mark.parametrize("url", ["http://127.0.0.1/hooks", "http://10.1.2.3/x", "http://[::1]:8080/x",
                                 "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/",
                                 "http://[::ffff:10.0.0.1]/x", "http://100.64.0.1/x", "http://[fe80::1%25eth0]/x"])
async def test_private_and_loopback_webhook_urls_are_refused(url):
    with pytest.raises(ValidationProblem) as exc:
        await check_endpoint(url, allow_private=False)
    assert exc.value.errors[0].rule == "public_address"


async def test_private_urls_pass_when_the_deployment_allows_them():
    await check_endpoint("http://127.0.0.1:9000/hooks", allow_private=True)
    await check_endpoint("https://8.8.8.8/hooks", allow_private=False)


async def test_an_endpoint_given_by_address_is_checked_without_asking_the_resolver(monkeypatch):
    import asyncio

    asked: list[str] = []

    async def getaddrinfo(host: str, *a: object, **kw: object) -> list[object]:
        asked.append(host)
        return [(0, 0, 0, "", ("10.9.9.9", 80))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await check_endpoint("http://8.8.4.4:8080/hooks", allow_private=False) == ["8.8.4.4"]
    assert await check_endpoint("http://[2001:4860:4860::8888]/hooks", allow_private=False) == ["2001:4860:4860::8888"]
    assert asked == []
    with pytest.raises(ValidationProblem):  # a name still resolves, and what it resolves to is what is checked
        await check_endpoint("http://dept.example.cn/hooks", allow_private=False)
    assert asked == ["dept.example.cn"]


async def test_a_department_reads_its_webhook_and_can_rotate_the_secret(client, tokens):
    first = await register(client, tokens, "LD-YBJ", "http://127.0.0.1:9/a")
    read = await client.get("/workflow/v1/departments/LD-YBJ/webhook", headers=system(tokens, "LD-YBJ"))
    assert read.status_code == 200 and read.json()["secret"] == first["secret"] and read.json()["url"].endswith("/a")
    rotated = await register(client, tokens, "LD-YBJ", "http://127.0.0.1:9/b", rotate_secret=True)
    assert rotated["secret"] != first["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["url"].endswith("/b")
    other = await client.get("/workflow/v1/departments/LD-YBJ/webhook", headers=system(tokens, "LD-WJJ"))
    assert other.status_code == 403


async def test_a_queued_delivery_wakes_the_sender_without_waiting_for_its_poll(wf_settings, tokens):
    """Issue 14: the sender wakes on the commit that queued a delivery, not on every commit with events, so a
    long poll does not delay a task's webhook."""
    import time

    from services.workflow.app import create_app
    from services.workflow.config import WorkflowConfig
    from shared.testing import running_app

    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=60.0, deemed_check_seconds=60.0)
    receiver = Receiver()
    await receiver.start()
    try:
        async with running_app(create_app, wf_settings, tokens=tokens, config=config) as client:
            receiver.secret = (await register(client, tokens, "LD-ZJJ", receiver.url))["secret"]
            code = new_code()
            await define_item(client, tokens, code, 1, [parallel_step(["LD-ZJJ", "LD-XFJ"])])
            started = time.monotonic()
            task_id = tasks_of(await start_case(client, tokens, code))["LD-ZJJ"]["id"]
            await eventually(lambda: [r for r in receiver.received if r["event"]["subject"] == task_id], timeout=20)
            assert time.monotonic() - started < 30 and receiver.bad_signatures == 0
    finally:
        await receiver.stop()


async def test_a_retry_is_sent_when_it_comes_due_not_at_the_next_poll(wf_settings, tokens):
    """Issue 14 (idle CPU): the sender polls rarely (`webhook_poll_seconds`, 10 s by default, 60 here) and
    sleeps until the retries it scheduled come due, so a department that answered 503 gets the retry after its
    backoff (0.2 s, then 0.4 s), not after a poll."""
    import time

    from services.workflow.app import create_app
    from services.workflow.config import WorkflowConfig
    from shared.testing import running_app

    config = WorkflowConfig(webhook_allow_private=True, webhook_backoff_seconds=0.2, webhook_backoff_max_seconds=1.0,
                            webhook_poll_seconds=60.0, deemed_check_seconds=60.0)
    receiver = Receiver()
    await receiver.start()
    try:
        async with running_app(create_app, wf_settings, tokens=tokens, config=config) as client:
            receiver.fail_next = 2
            receiver.secret = (await register(client, tokens, "LD-SWJ", receiver.url))["secret"]
            code = new_code()
            await define_item(client, tokens, code, 1, [parallel_step(["LD-SWJ"])])
            started = time.monotonic()
            task_id = tasks_of(await start_case(client, tokens, code))["LD-SWJ"]["id"]
            done = await eventually(lambda: _delivered(client, tokens, "LD-SWJ", task_id), timeout=20)
            assert [a["status_code"] for a in done[0]["attempt_log"]] == [503, 503, 204]
            assert time.monotonic() - started < 15
    finally:
        await receiver.stop()


async def test_a_task_written_by_the_sending_process_is_delivered_without_a_claim(wf_settings, tokens, monkeypatch):
    """Issue 14 (CPU per case): the task's own transaction writes its delivery claimed for this process's sender,
    and the commit hands it over: the sender sends and records it without claiming it (no claim returns it; the
    poll, 60 s here, never comes)."""
    from services.workflow.app import create_app
    from services.workflow.config import WorkflowConfig
    from services.workflow.store import repository
    from shared.testing import running_app

    claimed: list[str | None] = []
    claim = repository.claim_due_deliveries

    async def claim_due_deliveries(*args, **kwargs):  # type: ignore[no-untyped-def]
        due = await claim(*args, **kwargs)
        claimed.extend(d.event_id for d in due)
        return due

    monkeypatch.setattr(repository, "claim_due_deliveries", claim_due_deliveries)
    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=60.0, deemed_check_seconds=60.0)
    receiver = Receiver()
    await receiver.start()
    try:
        async with running_app(create_app, wf_settings, tokens=tokens, config=config) as client:
            receiver.secret = (await register(client, tokens, "LD-ZJJ", receiver.url))["secret"]
            code = new_code()
            await define_item(client, tokens, code, 1, [parallel_step(["LD-ZJJ", "LD-XFJ"])])
            task_id = tasks_of(await start_case(client, tokens, code))["LD-ZJJ"]["id"]
            done = await eventually(lambda: _delivered(client, tokens, "LD-ZJJ", task_id), timeout=20)
            assert done[0]["attempts"] == 1 and done[0]["attempt_log"][0]["status_code"] == 204
            assert [r for r in receiver.received if r["event"]["subject"] == task_id] and receiver.bad_signatures == 0
            assert done[0]["event_id"] not in claimed
    finally:
        await receiver.stop()


async def test_a_delivery_claimed_at_writing_whose_sender_died_is_sent_once_its_lease_runs_out(
        client, tokens, monkeypatch):
    """The hand-over is lost (the process died between the task's commit and the send): the delivery stays
    pending under its lease while the sender polls (every 0.05 s here), and is sent once the lease has run out."""
    import asyncio
    from datetime import timedelta

    from services.workflow import webhooks
    from services.workflow.service import cases
    from shared.types import utcnow

    receiver = Receiver()
    await receiver.start()
    try:
        receiver.secret = (await register(client, tokens, "LD-WJJ", receiver.url))["secret"]
        code = new_code()
        await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ"])])
        monkeypatch.setattr(cases, "hand_over", lambda *a, **kw: None)
        task_id = tasks_of(await start_case(client, tokens, code))["LD-WJJ"]["id"]
        monkeypatch.undo()
        await asyncio.sleep(0.5)
        (row,) = [d for d in await deliveries(client, tokens, "LD-WJJ") if d["task_id"] == task_id]
        assert row["state"] == "pending" and row["attempts"] == 0
        assert not [r for r in receiver.received if r["event"]["subject"] == task_id]
        later = utcnow() + webhooks.LEASE + timedelta(seconds=1)
        monkeypatch.setattr(webhooks, "utcnow", lambda: later)  # the lease has run out
        done = await eventually(lambda: _delivered(client, tokens, "LD-WJJ", task_id), timeout=20)
        assert done[0]["attempts"] == 1 and receiver.bad_signatures == 0
        assert len([r for r in receiver.received if r["event"]["subject"] == task_id]) == 1
    finally:
        await receiver.stop()


async def test_the_attempts_of_several_rounds_are_recorded_in_one_transaction(client, tokens, workflow_config,
                                                                             monkeypatch):
    """Issue 14 (CPU per case): each commit that opens a stage hands its deliveries over and they go out at once,
    but their successful attempts wait (`webhook_record_seconds`) to be recorded together: three cases' webhooks,
    one recording transaction."""
    import asyncio

    from services.workflow.store import repository

    rounds: list[set[int]] = []
    record_round = repository.record_round

    async def recording(session, attempts, *args, **kwargs):  # type: ignore[no-untyped-def]
        rounds.append({a["delivery_id"] for a in attempts})
        await record_round(session, attempts, *args, **kwargs)

    monkeypatch.setattr(repository, "record_round", recording)
    monkeypatch.setattr(workflow_config, "webhook_record_seconds", 5.0)
    receiver = Receiver()
    await receiver.start()
    try:
        receiver.secret = (await register(client, tokens, "LD-JTJ", receiver.url))["secret"]
        code = new_code()
        await define_item(client, tokens, code, 1, [parallel_step(["LD-JTJ"])])
        cases = await asyncio.gather(*(start_case(client, tokens, code) for _ in range(3)))
        task_ids = {tasks_of(c)["LD-JTJ"]["id"] for c in cases}

        async def recorded() -> object:
            rows = [d for d in await deliveries(client, tokens, "LD-JTJ") if d["task_id"] in task_ids]
            return rows if len(rows) == 3 and all(d["state"] == "delivered" for d in rows) else None

        ids = {d["id"] for d in await eventually(recorded, timeout=20)}
        assert [r & ids for r in rounds if r & ids] == [ids]
        assert len({r["event"]["subject"] for r in receiver.received} & task_ids) == 3
    finally:
        await receiver.stop()
