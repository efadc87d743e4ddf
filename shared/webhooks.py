"""The platform's webhook signing and sending (Standard Webhooks, https://www.standardwebhooks.com): efficacy's
supervisors' webhook and notify's app push sign and send through here; workflow's department webhooks are signed
here (`signed_headers`) and sent by workflow's own sender, which connects only to the address it checked
(`services/workflow/sender.py`).

- `signed_headers` is the one place the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers are
  built (HMAC-SHA256 by the pinned `standardwebhooks` package, over `id.timestamp.body`).
- `send_webhook` posts one signed body and says how it went (`WebhookResult`): delivered, worth retrying, or
  refused for good (a 4xx other than 408/409/425/429).
- `RetryPolicy` is the backoff between attempts (doubling from `base_seconds`, at most `cap_seconds`) and
  when to give up (`max_attempts`).

The `webhook-id` is the caller's: the same on every retry of one delivery, so the receiver can drop
duplicates; each attempt is signed afresh with the time of sending."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

JSON = "application/json"
CLOUDEVENTS_JSON = "application/cloudevents+json"

#: Statuses that say "not now" rather than "never": retried like a network error.
_TRANSIENT_4XX = frozenset({408, 409, 425, 429})


def signed_headers(secret: str, msg_id: str, body: str, *, content_type: str = JSON,
                   now: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for `body` sent as `msg_id` at `now` (default: this moment)."""
    at = now or datetime.now(UTC)
    return {
        "content-type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: `base_seconds`, twice that, four times … at most `cap_seconds`; a delivery that
    failed `max_attempts` times is given up (0: never)."""

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    max_attempts: int = 0

    def delay(self, attempts: int) -> timedelta:
        """The pause after the `attempts`-th failed attempt."""
        return timedelta(seconds=min(self.cap_seconds, self.base_seconds * 2 ** max(0, min(attempts - 1, 30))))

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts > 0 and attempts >= self.max_attempts


@dataclass(frozen=True)
class WebhookResult:
    """One attempt: `ok` on a 2xx; otherwise `error` says why and `permanent` whether retrying can help."""

    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False
    duration_ms: int = 0

    @classmethod
    def of(cls, response: httpx.Response, started: float) -> WebhookResult:
        ms = int((time.monotonic() - started) * 1000)
        if response.is_success:
            return cls(True, response.status_code, None, False, ms)
        code = response.status_code
        return cls(False, code, f"HTTP {code}", 400 <= code < 500 and code not in _TRANSIENT_4XX, ms)


async def post_signed(client: httpx.AsyncClient, url: str, *, secret: str, msg_id: str, body: str,
                      content_type: str = JSON, timeout: float = 10.0, headers: Mapping[str, str] | None = None,
                      extensions: dict[str, Any] | None = None) -> httpx.Response:
    """POST `body` to `url` signed as `msg_id`; raises httpx's errors (for a caller that tries several addresses).
    Redirects are never followed: a webhook endpoint answers itself."""
    return await client.post(
        url, content=body.encode(), timeout=timeout, follow_redirects=False, extensions=extensions or {},
        headers={**signed_headers(secret, msg_id, body, content_type=content_type), **(headers or {})},
    )


async def send_webhook(client: httpx.AsyncClient, url: str, *, secret: str, msg_id: str, body: str,
                       content_type: str = JSON, timeout: float = 10.0) -> WebhookResult:
    """One attempt at delivering `body`; network failures are a (retryable) result, not an exception."""
    started = time.monotonic()
    try:
        response = await post_signed(client, url, secret=secret, msg_id=msg_id, body=body,
                                     content_type=content_type, timeout=timeout)
    except httpx.HTTPError as exc:
        return WebhookResult(False, None, f"{type(exc).__name__}: {exc}"[:500], False,
                             int((time.monotonic() - started) * 1000))
    return WebhookResult.of(response, started)
