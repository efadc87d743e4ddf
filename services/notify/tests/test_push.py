"""App push through the front end's registered webhook: signed per Standard Webhooks, retried while the front
end's push service is down, once per event; a person who turns push off for a kind gets none."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest_asyncio
import uvicorn
from standardwebhooks.webhooks import Webhook

from services.notify.tests import helpers as h
from services.notify.tests.conftest import running_platform
from shared.testing import eventually, free_port

SECRET = "whsec_" + "cHVzaC13ZWJob29rLXRlc3Qtc2VjcmV0"


class PushReceiver:
    """The front end's push service: a real HTTP endpoint that verifies each delivery's signature and can be
    told to answer 503 for a while."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.refuse = 0
        self.bad = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            if self.refuse > 0:
                self.refuse -= 1
                status = 503
            else:
                self.received.append(payload if isinstance(payload, dict) else json.loads(body))
                status = 204
        except Exception:
            self.bad += 1
            status = 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> PushReceiver:
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="off",
                                                     log_level="warning", interface="asgi3"))
        self._task = asyncio.create_task(self._server.serve())
        await eventually(lambda: self._server is not None and self._server.started)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


@pytest_asyncio.fixture(scope="module")
async def pushing(settings_for, tokens, nats_url, tmp_path_factory):
    receiver = await PushReceiver().start()
    try:
        async with running_platform(settings_for("notify"), tokens, nats_url, tmp_path_factory.mktemp("sim"),
                                    push_webhook_url=receiver.url, push_webhook_secret=SECRET) as p:
            yield p, receiver
    finally:
        await receiver.stop()


async def test_push_goes_to_the_front_ends_webhook_signed_retried_and_once(pushing):
    p, receiver = pushing
    person, app = h.new_id("p"), h.new_id()
    receiver.refuse = 2
    event = h.accepted(app, person, h.phone())
    await p.publish(event)
    await p.redeliver(event)

    async def delivered() -> Any:
        got = [r for r in receiver.received if r["application_id"] == app]
        return got if got else None

    got = await eventually(delivered, timeout=30)
    assert receiver.bad == 0
    assert got[0]["kind"] == "application_accepted" and got[0]["recipient"] == {"kind": "person", "id": person}
    assert "已受理" in got[0]["body"]

    async def recorded() -> Any:
        # The receiver answers before notify commits what it heard: wait for the record, not for the request.
        r = await p.client.get(f"/notify/v1/messages/{got[0]['message_id']}", headers=p.person(person))
        return r.json() if r.json()["status"] in ("delivered", "failed") else None

    message = await eventually(recorded, timeout=30)
    assert message["status"] == "delivered" and message["attempts"] == 3

    async def drained() -> bool:
        # Evidence that the redelivered copy has been handled too: notify's consumer has nothing left to deliver
        # and nothing unacknowledged, and the message's record above is final (a delivered push is never sent again).
        bus = p.app.state.bus
        info = await bus.js.consumer_info(bus.names.stream, bus.names.durable("notify-events"))
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(drained, timeout=30)
    pushes = [r for r in (await p.client.get("/notify/v1/messages", headers=p.admin,
                                            params={"application_id": app, "channel": "push"})).json()["items"]]
    assert [m["id"] for m in pushes] == [message["id"]]
    assert len([x for x in receiver.received if x["application_id"] == app]) == 1


async def test_a_person_who_turns_push_off_for_a_kind_gets_none(pushing):
    p, receiver = pushing
    person, app = h.new_id("p"), h.new_id()
    r = await p.client.put("/notify/v1/me/preferences", headers=p.person(person),
                           json={"channels": {"application_accepted": ["inbox", "sms"]}})
    assert r.status_code == 200 and "push" in r.json()["channels"]["payment_due"]
    await p.publish(h.accepted(app, person, h.phone()))
    await p.publish(h.payment_requested(app, person))
    await eventually(lambda: [x for x in receiver.received if x["application_id"] == app], timeout=30)
    kinds = [x["kind"] for x in receiver.received if x["application_id"] == app]
    assert kinds == ["payment_due"]
