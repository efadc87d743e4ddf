"""Receipt numbers (办件编号) and the verification code of the public status query.

Format: `<item code><yyyyMMdd><4-digit serial>`, the serial counting from 0001 per item and day (Asia/Shanghai),
e.g. `11441781MB0000001A4440123456780012026112600017`. With the 31-character implementation code as item
code this is the format commonly used by provincial platforms. The 6-digit verification code is random
and shown only to the applicant; the receipt number alone reveals nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def receipt_prefix(item_code: str, at: datetime) -> str:
    return f"{item_code}{at.astimezone(SHANGHAI):%Y%m%d}"


def receipt_number(prefix: str, serial: int) -> str:
    if not 1 <= serial <= 9999:
        raise ValueError("at most 9999 receipts per item and day")
    return f"{prefix}{serial:04d}"


def verification_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


#: The public query allows this many wrong codes per receipt number and window; then it answers as if the
#: receipt were unknown until the window ends, so a 6-digit code cannot be guessed (10 tries in 10^6).
MAX_WRONG_CODES = 10
QUERY_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class QueryGuard:
    failures: int
    window_at: datetime | None

    def locked(self, now: datetime) -> bool:
        return self.failures >= MAX_WRONG_CODES and self.window_at is not None and now - self.window_at < QUERY_WINDOW

    def after_failure(self, now: datetime) -> QueryGuard:
        if self.window_at is None or now - self.window_at >= QUERY_WINDOW:
            return QueryGuard(1, now)
        return QueryGuard(self.failures + 1, self.window_at)
