"""Lock-out after repeated failed logins (brute force is slowed, then stopped for a while)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LoginThrottle:
    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the lock lifts (at least 1 while locked)."""
        if not self.locked(now):
            return 0
        assert self.locked_until is not None
        return max(1, int((self.locked_until - now).total_seconds() + 0.999))

    def after_failure(self, now: datetime, *, threshold: int, lock_for: timedelta) -> LoginThrottle:
        # A lock that has run out starts a fresh count: the next failures are counted anew.
        failures = 1 if self.locked_until is not None and now >= self.locked_until else self.failures + 1
        if failures >= threshold:
            return LoginThrottle(failures=failures, locked_until=now + lock_for)
        return LoginThrottle(failures=failures, locked_until=None)
