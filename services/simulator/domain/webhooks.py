"""Checking a webhook delivery the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
`webhook-signature`), with the clock passed in so the rules are testable.

A delivery is refused when a header is missing, the timestamp is more than five minutes off, or no `v1`
signature matches the department's secret. Replays are told apart from retries: an attacker can only resend a
captured delivery as it was (same id, same timestamp), while workflow's retry of a delivery we already took
is signed afresh (same id, a new timestamp) and is acknowledged without acting twice."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from standardwebhooks import Webhook

TOLERANCE = timedelta(minutes=5)


class Refusal(StrEnum):
    MISSING_HEADERS = "missing_headers"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    TIMESTAMP_SKEW = "timestamp_skew"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"


class WebhookRefused(Exception):
    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


class Verdict(StrEnum):
    NEW = "new"
    #: A retry of a delivery already taken: acknowledge, act no more.
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    timestamp: int
    verdict: Verdict


class ReplayGuard:
    """Remembers the deliveries taken (id → timestamp), oldest forgotten first beyond `capacity`."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()

    def check(self, webhook_id: str, timestamp: int) -> Verdict:
        previous = self._seen.get(webhook_id)
        if previous is None:
            return Verdict.NEW
        if previous == timestamp:
            raise WebhookRefused(Refusal.REPLAYED, f"Delivery {webhook_id} was already received (replay).")
        return Verdict.DUPLICATE

    def take(self, delivery: Delivery) -> None:
        self.remember(delivery.webhook_id, delivery.timestamp)

    def remember(self, webhook_id: str, timestamp: int) -> None:
        self._seen[webhook_id] = timestamp
        self._seen.move_to_end(webhook_id)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


def verify(
    secret: str, body: bytes, headers: dict[str, str], *, guard: ReplayGuard, now: datetime
) -> Delivery:
    """Check one delivery. The caller remembers it in `guard` once it has taken it, so that a delivery it
    refused for its content is refused the same way when sent again."""
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id = lower.get("webhook-id", "").strip()
    raw_ts = lower.get("webhook-timestamp", "").strip()
    signatures = lower.get("webhook-signature", "").strip()
    missing = [
        name
        for name, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", raw_ts),
            ("webhook-signature", signatures),
        )
        if not value
    ]
    if missing:
        raise WebhookRefused(Refusal.MISSING_HEADERS, "Missing header(s): " + ", ".join(missing) + ".")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise WebhookRefused(
            Refusal.MALFORMED_TIMESTAMP, "webhook-timestamp must be whole seconds since the epoch."
        ) from None
    sent = datetime.fromtimestamp(timestamp, UTC)
    if abs(now - sent) > TOLERANCE:
        raise WebhookRefused(
            Refusal.TIMESTAMP_SKEW,
            f"webhook-timestamp is {abs(now - sent).total_seconds():.0f}s away from now (tolerance 300s).",
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WebhookRefused(Refusal.BAD_SIGNATURE, "The body is not UTF-8; no signature can match.") from None
    expected = base64.b64decode(Webhook(secret).sign(webhook_id, sent, text).split(",", 1)[1])
    if not any(_matches(candidate, expected) for candidate in signatures.split()):
        raise WebhookRefused(Refusal.BAD_SIGNATURE, "No v1 signature matches this department's secret.")
    verdict = guard.check(webhook_id, timestamp)
    return Delivery(webhook_id=webhook_id, timestamp=timestamp, verdict=verdict)


def _matches(candidate: str, expected: bytes) -> bool:
    version, _, value = candidate.partition(",")
    if version != "v1" or not value:
        return False
    try:
        given = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers a sender puts on a delivery (what workflow does; the tests use it too)."""
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
