"""DNS rebinding on webhook delivery (issue 13): the sender resolves a department's host name once per attempt,
checks the addresses, and connects to an address it checked, with the name kept in `Host` (and in SNI for
https). Before, the check resolved the name and httpx resolved it again when connecting, so a name answering a
public address to the check and 127.0.0.1 to the connection reached our own network.

Name resolution is the outside world here: tests replace `services.workflow.webhooks.resolve`. No traffic leaves
the loopback interface (the public addresses below are only ever checked, never connected to)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import uvicorn

from services.workflow import webhooks
from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.tests.helpers import define_item, parallel_step, start_case, system, tasks_of
from shared.errors import ValidationProblem
from shared.testing import eventually, free_port
from tests.security.conftest import serve
from tests.security.test_webhooks import Capture


def answers(*rounds: list[str]):
    """A resolver that gives each round of answers in turn (the last one from then on), counting the calls."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return rounds[min(len(calls), len(rounds)) - 1]

    return resolve, calls


def test_the_request_goes_to_the_checked_address_with_the_name_in_host_and_sni():
    assert webhooks.pinned("https://hooks.dept.example:8443/a?b=1", "203.0.113.5") == (
        "https://203.0.113.5:8443/a?b=1", {"host": "hooks.dept.example:8443"}, {"sni_hostname": "hooks.dept.example"})
    assert webhooks.pinned("http://hooks.dept.example/a", "2001:db8::5") == (
        "http://[2001:db8::5]/a", {"host": "hooks.dept.example"}, {})


async def test_a_name_that_resolves_to_a_private_address_is_refused_and_resolved_once(monkeypatch):
    resolve, calls = answers(["8.8.8.8"], ["127.0.0.1"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    assert await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False) == ["8.8.8.8"]
    assert calls == ["hooks.dept.example"]  # one resolution: the address checked is the one connected to
    with pytest.raises(ValidationProblem) as refused:  # the rebound answer is checked at the next attempt
        await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False)
    assert refused.value.errors[0].rule == "public_address"
    resolve, _ = answers(["8.8.8.8", "10.0.0.7"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    with pytest.raises(ValidationProblem):  # any private answer among several
        await webhooks.check_endpoint("https://hooks.dept.example/x", allow_private=False)


async def test_a_delivery_connects_to_the_resolved_address_not_to_a_second_lookup(settings_for, tokens, monkeypatch):
    """The department's name exists only in the resolver we control (`.invalid` never resolves in DNS): the
    delivery can only arrive if the sender connected to the address its check produced."""
    capture = Capture()
    server = uvicorn.Server(uvicorn.Config(capture, host="127.0.0.1", port=capture.port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    resolve, calls = answers(["127.0.0.1"])
    monkeypatch.setattr(webhooks, "resolve", resolve)
    host = f"ld-wjj-hooks.invalid:{capture.port}"
    # Loopback stands in for the department's network here, so private addresses are allowed; the check that
    # refuses them is the test above.
    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=0.05)
    try:
        await eventually(lambda: server.started)
        async with serve(create_app, settings_for("workflow"), tokens=tokens, config=config) as wf:
            r = await wf.client.put("/workflow/v1/departments/LD-WJJ/webhook", headers=system(tokens, "LD-WJJ"),
                                    json={"url": f"http://{host}/hooks"})
            assert r.status_code == 200, r.text
            code = "PIN-" + uuid.uuid4().hex[:6]
            await define_item(wf.client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
            case = await start_case(wf.client, tokens, code)
            task_id = tasks_of(case)["LD-WJJ"]["id"]
            body, headers = await eventually(
                lambda: next((d for d in capture.deliveries if json.loads(d[0])["subject"] == task_id), None))
    finally:
        server.should_exit = True
        await serving
    assert headers["host"] == host
    assert set(calls) == {"ld-wjj-hooks.invalid"}


async def test_the_client_behind_every_webhook_keeps_no_cookie(settings_for, tokens):
    """One HTTP client sends every department's webhooks (and every call to another service): a cookie one
    endpoint set would go to another endpoint on the same host."""
    seen: list[str | None] = []

    async def endpoint(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        seen.append(dict(scope["headers"]).get(b"cookie", b"").decode() or None)
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"set-cookie", b"session=dept-a; Path=/")]})
        await send({"type": "http.response.body", "body": b""})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        async with serve(create_app, settings_for("workflow"), tokens=tokens) as wf:
            http = wf.client.app.state.http
            await http.post(f"http://127.0.0.1:{port}/dept-a/hooks")
            await http.post(f"http://127.0.0.1:{port}/dept-b/hooks")
        assert seen == [None, None] and not http.cookies
    finally:
        server.should_exit = True
        await serving
