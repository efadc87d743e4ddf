"""Request-rate limits (OWASP API4): a sliding window per key, in this process.

Each replica counts on its own, so a deployment's effective limit is the per-process limit times the
replicas; the ingress in front (deploy/k8s) is where a city-wide limit belongs. Inside the services the
limits guard the expensive and abusable flows: sign-in per client address, submission per applicant."""

from __future__ import annotations

import math
import time
from collections import deque

from shared.errors import TooManyRequests


class RateLimiter:
    def __init__(self, limit: int, per_seconds: float = 60.0, *, max_keys: int = 100_000) -> None:
        self.limit, self.per, self.max_keys = limit, per_seconds, max_keys
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, *, now: float | None = None) -> float | None:
        """Count one request for `key`; seconds to wait when it is over the limit (the request is not counted)."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:  # forget the idle ones rather than grow without bound
                for k in [k for k, h in self._hits.items() if not h or h[-1] < now - self.per]:
                    del self._hits[k]
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(0.0, hits[0] + self.per - now)
        hits.append(now)
        return None

    def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Seconds until `key` may try again (None: now), counting nothing: for limits on failures, where only
        what went wrong is counted (`count`)."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        if hits is not None and len(hits) >= self.limit:
            return max(0.0, hits[0] + self.per - now)
        return None

    def count(self, key: str, *, now: float | None = None) -> None:
        """Count one failure for `key` (see `wait`)."""
        if self.limit > 0 and self.wait(key, now=now) is None:
            self.retry_after(key, now=now)

    def check(self, key: str, what: str) -> None:
        """Raise a 429 problem with Retry-After when `key` is over the limit."""
        wait = self.retry_after(key)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"Too many {what}: at most {self.limit} in {self.per:.0f} s. Retry in {seconds} s.",
                headers={"Retry-After": str(seconds)}, retry_after=seconds,
            )


def limiter_for(app_state: object, name: str, per_minute: int, *, per_seconds: float = 60.0) -> RateLimiter:
    """The app's limiter called `name`, made on first use (one per running app, so tests stay apart);
    `per_minute` requests per minute, or per `per_seconds` when given."""
    limiters: dict[str, RateLimiter] = app_state.__dict__.setdefault("_rate_limiters", {})  # type: ignore[attr-defined]
    if name not in limiters:
        limiters[name] = RateLimiter(per_minute, per_seconds)
    return limiters[name]
