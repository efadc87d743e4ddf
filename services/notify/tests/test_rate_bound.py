"""The per-person rate bound: beyond it messages wait for the hour to pass; none is dropped."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio

from services.notify.tests import helpers as h
from services.notify.tests.conftest import running_platform
from shared.testing import eventually


@pytest_asyncio.fixture(scope="module")
async def bounded(settings_for, tokens, nats_url, tmp_path_factory):
    async with running_platform(settings_for("notify"), tokens, nats_url, tmp_path_factory.mktemp("sim"),
                                per_person_per_hour=2) as p:
        yield p


async def test_a_third_sms_in_an_hour_waits_for_the_first_to_leave_the_window(bounded):
    p = bounded
    person, mobile = h.new_id("p"), h.phone()
    apps = [h.new_id() for _ in range(3)]
    for app in apps:
        await p.publish(h.accepted(app, person, mobile))

    async def sorted_out() -> Any:
        rows = []
        for app in apps:
            r = await p.client.get("/notify/v1/messages", params={"application_id": app, "channel": "sms"},
                                   headers=p.admin)
            rows += r.json()["items"]
        done = [m for m in rows if m["status"] == "delivered"]
        waiting = [m for m in rows if (m["reason"] or "").startswith("rate_bound")]
        return (done, waiting) if len(done) == 2 and len(waiting) == 1 else None

    done, waiting = await eventually(sorted_out, timeout=30)
    first_sent = min(datetime.fromisoformat(m["sent_at"]) for m in done)
    assert waiting[0]["status"] == "queued" and waiting[0]["attempts"] == 0
    # When the first leaves the hour's window (to the second: the two may have been claimed in one batch).
    release = datetime.fromisoformat(waiting[0]["next_attempt_at"])
    assert abs(release - (first_sent + timedelta(hours=1))) < timedelta(seconds=5)
    assert len(await h.sms_to(p.sim, mobile)) == 2
    # Someone else is not held back by this person's bound.
    other = h.new_id()
    await p.publish(h.accepted(other, h.new_id("p"), h.phone()))

    async def sent() -> bool:
        r = await p.client.get("/notify/v1/messages", params={"application_id": other, "channel": "sms"},
                               headers=p.admin)
        return [m["status"] for m in r.json()["items"]] == ["delivered"]

    assert await eventually(sent, timeout=30)
