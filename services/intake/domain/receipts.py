"""Receipt numbers (办件编号) and the verification code of the public status query.

Format: `<item code><yyyyMMdd><4-digit serial>`, the serial counting from 0001 per item and day (Asia/Shanghai;
unique and increasing, not gapless: a submission whose transaction fails after taking its serial leaves it
unused), e.g. `11441781MB0000001A4440123456780012026112600017`. With the 31-character implementation code as item
code this is the format commonly used by provincial platforms. The 6-digit verification code is random
and shown only to the applicant; the receipt number alone reveals nothing."""

from __future__ import annotations

import secrets
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


#: The public query allows this many wrong codes per client address and window, then answers 429 to that address
#: until the window has moved on: a 6-digit code takes 10^5 windows to guess from one address. The limit is on
#: the guesser, never on the receipt, so a stranger cannot lock the owner out of their own case.
MAX_WRONG_CODES = 10
QUERY_WINDOW = timedelta(hours=1)
