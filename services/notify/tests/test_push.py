"""App push through the front end's registered webhook: signed per Standard Webhooks, retried while the front
end's push service is down, once per event; a person who turns push off for a kind gets none."""

from __future__ import annotations

from typing import Any

import pytest_asyncio

from services.notify.tests import helpers as h
from services.notify.tests.conftest import running_platform
from shared.testing import WebhookReceiver, consumers_settled, eventually

SECRET = "whsec_" + "cHVzaC13ZWJob29rLXRlc3Qtc2VjcmV0"


@pytest_asyncio.fixture(scope="module")
async def pushing(settings_for, tokens, nats_url, tmp_path_factory):
    # The front end's push service.
    receiver = await WebhookReceiver(SECRET, path="/push").start()
    try:
        async with running_platform(settings_for("notify"), tokens, nats_url, tmp_path_factory.mktemp("sim"),
                                    push_webhook_url=receiver.url, push_webhook_secret=SECRET) as p:
            yield p, receiver
    finally:
        await receiver.stop()


async def test_push_goes_to_the_front_ends_webhook_signed_retried_and_once(pushing):
    p, receiver = pushing
    person, app = h.new_id("p"), h.new_id()
    receiver.answers = [503, 503]  # the push service is down for two deliveries
    event = h.accepted(app, person, h.phone())
    await p.publish(event)
    await p.redeliver(event)

    async def delivered() -> Any:
        got = [r for r in receiver.received if r["application_id"] == app]
        return got if got else None

    got = await eventually(delivered, timeout=30)
    assert receiver.bad_signatures == 0
    assert got[0]["kind"] == "application_accepted" and got[0]["recipient"] == {"kind": "person", "id": person}
    assert "已受理" in got[0]["body"]

    async def recorded() -> Any:
        # The receiver answers before notify commits what it heard: wait for the record, not for the request.
        r = await p.client.get(f"/notify/v1/messages/{got[0]['message_id']}", headers=p.person(person))
        return r.json() if r.json()["status"] in ("delivered", "failed") else None

    message = await eventually(recorded, timeout=30)
    assert message["status"] == "delivered" and message["attempts"] == 3
    # Evidence that nothing more can come: notify took and acknowledged both copies of the event (the second
    # dropped by its inbox), and the one message is delivered, so no send is left to make.
    await eventually(lambda: consumers_settled(p.app.state.bus, "notify-events"), timeout=30)
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
