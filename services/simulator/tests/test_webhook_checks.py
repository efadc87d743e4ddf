"""Unit: checking Standard Webhooks deliveries (no server, clock passed in)."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from services.simulator.domain.webhooks import Refusal, ReplayGuard, Verdict, WebhookRefused, sign, verify

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
BODY = b'{"type":"yimen.workflow.task.assigned","data":{"task_id":"t1"}}'


def signed(body: bytes = BODY, *, secret: str = SECRET, at: datetime = NOW, wid: str = "msg_1") -> dict[str, str]:
    return sign(secret, wid, int(at.timestamp()), body)


def refusal(body: bytes, headers: dict[str, str], guard: ReplayGuard | None = None) -> Refusal:
    with pytest.raises(WebhookRefused) as caught:
        verify(SECRET, body, headers, guard=guard or ReplayGuard(), now=NOW)
    return caught.value.refusal


def test_accepts_a_delivery_signed_with_the_department_secret():
    delivery = verify(SECRET, BODY, signed(), guard=ReplayGuard(), now=NOW)
    assert delivery.verdict is Verdict.NEW
    assert delivery.webhook_id == "msg_1"


def test_accepts_when_one_of_several_signatures_matches_during_secret_rotation():
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    headers = signed()
    headers["webhook-signature"] = signed(secret=other)["webhook-signature"] + " " + headers["webhook-signature"]
    assert verify(SECRET, BODY, headers, guard=ReplayGuard(), now=NOW).verdict is Verdict.NEW


def test_refuses_a_tampered_body():
    assert refusal(BODY.replace(b"t1", b"t2"), signed()) is Refusal.BAD_SIGNATURE


def test_refuses_a_signature_made_with_another_secret():
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    assert refusal(BODY, signed(secret=other)) is Refusal.BAD_SIGNATURE


def test_refuses_garbage_and_unknown_signature_versions():
    headers = signed()
    headers["webhook-signature"] = "v2," + headers["webhook-signature"].split(",", 1)[1] + " v1,%%% v1"
    assert refusal(BODY, headers) is Refusal.BAD_SIGNATURE


def test_refuses_an_unsigned_delivery_and_names_the_missing_headers():
    with pytest.raises(WebhookRefused) as caught:
        verify(SECRET, BODY, {"webhook-id": "msg_1"}, guard=ReplayGuard(), now=NOW)
    assert caught.value.refusal is Refusal.MISSING_HEADERS
    assert "webhook-timestamp" in caught.value.message and "webhook-signature" in caught.value.message


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-1)])
def test_refuses_a_timestamp_more_than_five_minutes_off(offset):
    assert refusal(BODY, signed(at=NOW + offset)) is Refusal.TIMESTAMP_SKEW


def test_accepts_a_timestamp_within_five_minutes():
    assert verify(SECRET, BODY, signed(at=NOW - timedelta(minutes=4)), guard=ReplayGuard(), now=NOW)


def test_refuses_a_timestamp_that_is_not_whole_seconds():
    headers = signed()
    headers["webhook-timestamp"] = "yesterday"
    assert refusal(BODY, headers) is Refusal.MALFORMED_TIMESTAMP


def test_refuses_the_same_delivery_replayed():
    guard = ReplayGuard()
    headers = signed()
    guard.take(verify(SECRET, BODY, headers, guard=guard, now=NOW))
    assert refusal(BODY, headers, guard) is Refusal.REPLAYED


def test_a_delivery_not_taken_may_come_again():
    guard = ReplayGuard()
    headers = signed()
    verify(SECRET, BODY, headers, guard=guard, now=NOW)
    assert verify(SECRET, BODY, headers, guard=guard, now=NOW).verdict is Verdict.NEW


def test_a_resigned_retry_of_a_taken_delivery_is_a_duplicate_not_a_new_task():
    guard = ReplayGuard()
    guard.take(verify(SECRET, BODY, signed(), guard=guard, now=NOW))
    retry = signed(at=NOW + timedelta(seconds=30))
    assert verify(SECRET, BODY, retry, guard=guard, now=NOW).verdict is Verdict.DUPLICATE


def test_a_refused_delivery_is_not_remembered():
    guard = ReplayGuard()
    refusal(BODY + b" ", signed(), guard)
    assert verify(SECRET, BODY, signed(), guard=guard, now=NOW).verdict is Verdict.NEW


def test_the_guard_forgets_the_oldest_ids_beyond_its_capacity():
    guard = ReplayGuard(capacity=2)
    for wid in ("a", "b", "c"):
        guard.remember(wid, 1)
    assert guard.check("a", 1) is Verdict.NEW
    with pytest.raises(WebhookRefused):
        guard.check("c", 1)
