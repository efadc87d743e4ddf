"""Webhooks end to end: a running workflow signs a real task delivery and sends it over loopback HTTP; the
captured bytes and headers then go through the department side's verifier (the simulator's, which the
department systems mirror) and through the standardwebhooks library. The genuine delivery passes both; the
same delivery tampered, replayed or re-timed is refused. (The verifier's rules on hand-made messages are
services/simulator/tests/test_webhook_checks.py; this covers the signer and the verifier agreeing.)"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

from services.simulator.domain.webhooks import Refusal, ReplayGuard, Verdict, WebhookRefused, verify
from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.tests.helpers import define_item, parallel_step, start_case, system, tasks_of
from shared.testing import eventually, free_port, read_body
from tests.security.conftest import serve


class Capture:
    """A department endpoint that keeps each delivery's raw body and headers and answers 204."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.deliveries.append((body, {k.decode(): v.decode() for k, v in scope["headers"]}))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest_asyncio.fixture(scope="module")
async def delivery(settings_for, tokens):
    """One genuine delivery of a task.assigned event to LD-WJJ, as workflow signed and sent it."""
    capture = Capture()
    server = uvicorn.Server(uvicorn.Config(capture, host="127.0.0.1", port=capture.port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=0.05)  # the receiver is on loopback
    try:
        await eventually(lambda: server.started)
        async with serve(create_app, settings_for("workflow"), tokens=tokens, config=config) as wf:
            r = await wf.client.put("/workflow/v1/departments/LD-WJJ/webhook", headers=system(tokens, "LD-WJJ"),
                                    json={"url": f"http://127.0.0.1:{capture.port}/hooks"})
            assert r.status_code == 200, r.text
            secret = r.json()["secret"]
            code = "HOOKSEC-" + uuid.uuid4().hex[:6]
            await define_item(wf.client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
            case = await start_case(wf.client, tokens, code)
            task_id = tasks_of(case)["LD-WJJ"]["id"]
            body, headers = await eventually(
                lambda: next((d for d in capture.deliveries if json.loads(d[0])["subject"] == task_id), None))
    finally:
        server.should_exit = True
        await serving
    return {"secret": secret, "body": body, "headers": headers, "task_id": task_id}


def sent_at(d: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(d["headers"]["webhook-timestamp"]), UTC)


def refusal(d: dict[str, Any], body: bytes, headers: dict[str, str], guard: ReplayGuard | None = None,
            now: datetime | None = None) -> Refusal:
    with pytest.raises(WebhookRefused) as caught:
        verify(d["secret"], body, headers, guard=guard or ReplayGuard(), now=now or sent_at(d))
    return caught.value.refusal


def test_the_genuine_delivery_verifies_with_the_departments_verifier_and_the_library(delivery):
    d = delivery
    assert d["headers"]["webhook-id"] and d["headers"]["webhook-signature"].startswith("v1,")
    got = verify(d["secret"], d["body"], d["headers"], guard=ReplayGuard(), now=sent_at(d) + timedelta(seconds=2))
    assert got.verdict is Verdict.NEW and got.webhook_id == d["headers"]["webhook-id"]
    event = Webhook(d["secret"]).verify(d["body"], d["headers"])
    assert event["data"]["task_id"] == d["task_id"] and event["data"]["department"] == "LD-WJJ"


@pytest.mark.parametrize("tamper", ["department", "outcome-field", "whitespace", "truncated"])
def test_a_tampered_body_is_refused(delivery, tamper):
    d = delivery
    event = json.loads(d["body"])
    if tamper == "department":
        event["data"]["department"] = "LD-XFJ"
        body = json.dumps(event).encode()
    elif tamper == "outcome-field":
        event["data"]["outcome"] = "approve"
        body = json.dumps(event).encode()
    elif tamper == "whitespace":
        body = d["body"] + b" "
    else:
        body = d["body"][:-1]
    assert refusal(d, body, d["headers"]) is Refusal.BAD_SIGNATURE
    with pytest.raises(WebhookVerificationError):
        Webhook(d["secret"]).verify(body, d["headers"])


def test_a_replayed_delivery_is_refused(delivery):
    d = delivery
    guard = ReplayGuard()
    first = verify(d["secret"], d["body"], d["headers"], guard=guard, now=sent_at(d))
    guard.take(first)
    assert refusal(d, d["body"], d["headers"], guard=guard) is Refusal.REPLAYED


def test_a_delivery_with_a_forged_id_or_timestamp_is_refused(delivery):
    d = delivery
    for name, value in (("webhook-id", "msg_forged"), ("webhook-timestamp",
                                                        str(int(d["headers"]["webhook-timestamp"]) + 1))):
        headers = {**d["headers"], name: value}
        assert refusal(d, d["body"], headers) is Refusal.BAD_SIGNATURE, name
        with pytest.raises(WebhookVerificationError):
            Webhook(d["secret"]).verify(d["body"], headers)


@pytest.mark.parametrize("minutes", [-6, 6, 60 * 24])
def test_a_skewed_timestamp_is_refused_even_when_correctly_signed(delivery, minutes):
    """Re-signed with the real secret (as a leaked old capture would be) but sent too early or too late."""
    d = delivery
    skewed = sent_at(d) + timedelta(minutes=minutes)
    text = d["body"].decode()
    headers = {**d["headers"], "webhook-timestamp": str(int(skewed.timestamp())),
               "webhook-signature": Webhook(d["secret"]).sign(d["headers"]["webhook-id"], skewed, text)}
    assert refusal(d, d["body"], headers) is Refusal.TIMESTAMP_SKEW
    assert refusal(d, d["body"], d["headers"], now=sent_at(d) - timedelta(minutes=minutes)) is Refusal.TIMESTAMP_SKEW


def test_a_signature_made_with_another_departments_secret_is_refused(delivery):
    d = delivery
    other = "whsec_" + base64.b64encode(b"another-department-secret-32byt").decode()
    headers = {**d["headers"], "webhook-signature": Webhook(other).sign(d["headers"]["webhook-id"], sent_at(d),
                                                                        d["body"].decode())}
    assert refusal(d, d["body"], headers) is Refusal.BAD_SIGNATURE
