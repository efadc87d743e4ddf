"""Lock-out after repeated failed logins (brute force is slowed, then stopped for a while): `threshold`
failures, each within `lock_for` of the previous one, lock the username for `lock_for`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LoginThrottle:
    failures: int = 0
    locked_until: datetime | None = None
    last_failure_at: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the lock lifts (at least 1 while locked)."""
        if not self.locked(now):
            return 0
        assert self.locked_until is not None
        return max(1, int((self.locked_until - now).total_seconds() + 0.999))

    def after_failure(self, now: datetime, *, threshold: int, lock_for: timedelta) -> LoginThrottle:
        # A lock that has run out, or a quiet spell as long as a lock, starts a fresh count: a typo a week
        # after four others must not lock anyone out.
        lock_over = self.locked_until is not None and now >= self.locked_until
        quiet = self.last_failure_at is not None and now - self.last_failure_at >= lock_for
        failures = 1 if lock_over or quiet else self.failures + 1
        locked_until = now + lock_for if failures >= threshold else None
        return LoginThrottle(failures=failures, locked_until=locked_until, last_failure_at=now)
