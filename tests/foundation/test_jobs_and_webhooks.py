"""The shared periodic job (shared/jobs.py) and the shared webhook sender (shared/webhooks.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from shared.jobs import pause_seconds, periodic, run_periodically
from shared.testing import WebhookReceiver, eventually, free_port
from shared.webhooks import RetryPolicy, WebhookResult, send_webhook, signed_headers

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# ---- the periodic job --------------------------------------------------------------------------------------


async def test_rounds_never_overlap_and_follow_the_interval() -> None:
    running, overlaps, rounds = 0, 0, 0

    async def one_round() -> None:
        nonlocal running, overlaps, rounds
        running += 1
        overlaps += running > 1
        await asyncio.sleep(0.02)  # a round that takes longer than the interval
        running -= 1
        rounds += 1

    task = asyncio.create_task(run_periodically("t", one_round, interval=0.001, jitter=0))
    await eventually(lambda: rounds >= 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert overlaps == 0


async def test_a_failing_round_is_logged_and_the_job_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")

    with caplog.at_level(logging.WARNING, logger="yimen.jobs"):
        task = asyncio.create_task(run_periodically("flaky job", flaky, interval=0.01, jitter=0))
        await eventually(lambda: calls >= 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert any("flaky job failed" in r.message and "database down" in r.message for r in caplog.records)


async def test_cancellation_inside_a_round_ends_the_job() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(run_periodically("slow", slow, interval=1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # not swallowed as "a failed round"
    assert task.cancelled()


async def test_a_wake_ends_the_pause_and_drain_repeats_busy_rounds() -> None:
    wake = asyncio.Event()
    work = [3]  # three items, then nothing
    rounds = 0

    async def dispatch() -> int:
        nonlocal rounds
        rounds += 1
        if work[0]:
            work[0] -= 1
            return 1
        return 0

    task = asyncio.create_task(run_periodically("d", dispatch, interval=60, wake=wake, drain=True))
    await eventually(lambda: rounds == 4)  # three busy rounds at once, then one that found nothing
    work[0] = 1
    wake.set()  # a commit: the next round comes now, not in a minute
    await eventually(lambda: rounds == 6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_periodic_reads_its_interval_from_the_context_and_waits_first_when_asked() -> None:
    seen: list[str] = []

    async def round_(ctx: dict[str, Any]) -> None:
        seen.append(ctx["name"])

    job = periodic(round_, interval=lambda ctx: ctx["every"], first_after_pause=True, name="ctx-job")
    assert job.__name__ == "ctx-job"
    task = asyncio.create_task(job({"name": "a", "every": 0.2}))
    await asyncio.sleep(0)
    assert seen == []  # the first round comes after one interval
    await eventually(lambda: seen == ["a"], timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_jitter_only_lengthens_the_pause_within_its_fraction() -> None:
    assert pause_seconds(10, 0.1, rng=lambda: 0.0) == 10
    assert pause_seconds(10, 0.1, rng=lambda: 1.0) == pytest.approx(11)
    assert pause_seconds(lambda: 2.0, 0.5, rng=lambda: 0.5) == pytest.approx(2.5)
    assert pause_seconds(-1, 0.1) == 0


# ---- the webhook sender ------------------------------------------------------------------------------------


def test_the_headers_verify_with_standard_webhooks() -> None:
    body = json.dumps({"type": "notification", "message_id": "m1"})
    headers = signed_headers(SECRET, "m1", body)
    assert set(headers) == {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    tampered = {**headers, "webhook-id": "m2"}
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body, tampered)


def test_the_retry_policy_doubles_to_its_cap_and_gives_up() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=60, max_attempts=5)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 5, 6, 40)] == [2, 4, 8, 32, 60, 60]
    assert not policy.exhausted(4) and policy.exhausted(5)
    assert not RetryPolicy().exhausted(1000)  # 0: never gives up


def test_results_tell_retryable_from_permanent_refusals() -> None:
    def of(code: int) -> WebhookResult:
        return WebhookResult.of(httpx.Response(code), 0.0)

    assert of(204).ok and of(204).error is None
    assert (of(400).permanent, of(410).permanent) == (True, True)
    assert not any(of(c).permanent for c in (408, 409, 425, 429, 500, 503))
    assert of(503).error == "HTTP 503"


async def test_a_delivery_is_signed_and_its_outcome_reported() -> None:
    receiver = await WebhookReceiver(SECRET, path="/hook",
                                     keep=lambda headers, payload: {"id": headers["webhook-id"],
                                                                    "payload": payload}).start()
    try:
        url = receiver.url
        receiver.answers = [503]
        async with httpx.AsyncClient() as client:
            first = await send_webhook(client, url, secret=SECRET, msg_id="card-1", body='{"colour": "red"}')
            again = await send_webhook(client, url, secret=SECRET, msg_id="card-1", body='{"colour": "red"}')
            down = await send_webhook(client, f"http://127.0.0.1:{free_port()}/", secret=SECRET, msg_id="x",
                                      body="{}", timeout=2)
        assert (first.ok, first.status, first.permanent) == (False, 503, False)
        assert (again.ok, again.status) == (True, 204)
        assert [v["id"] for v in receiver.verified] == ["card-1", "card-1"]  # one id for every retry
        assert receiver.verified[1]["payload"] == {"colour": "red"}
        assert not down.ok and down.status is None and not down.permanent and "ConnectError" in (down.error or "")
    finally:
        await receiver.stop()


def test_a_stale_timestamp_is_refused_by_the_receiver() -> None:
    body = "{}"
    old = signed_headers(SECRET, "m", body, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Exception, match="too old"):
        Webhook(SECRET).verify(body, old)
