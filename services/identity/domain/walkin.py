"""Walk-ins (窗口代录, 帮办代办): a window clerk registers a person standing at the counter, ID card in hand, who
has no account. The account is level 3 at once (the card was checked in person) and has no password; the person
claims it online later.

How a claim proves it is the same person: name and ID number are not enough (both leak: they are on every copy of
an ID card), and neither is the phone given at the counter (others know it). The proof is possession of the paper
slip the clerk handed over: a one-time claim code printed on it, kept by identity as a SHA-256 only, valid for
`CLAIM_DAYS` and for `MAX_CLAIM_FAILURES` wrong tries against it (then it is void and a window issues a new one, or
checks the card again and lets the person type a password there). A claim names number, name and code together,
and every refusal looks the same, so the route answers nothing about who has a walk-in account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

CLAIM_DAYS = 30
MAX_CLAIM_FAILURES = 5
#: No 0/O, 1/I/L, 2/Z, 5/S, 8/B: a code read off paper is typed right. 10 characters of 26 ≈ 47 bits.
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
LENGTH = 10

REFUSED = ("认领失败：身份证号码、姓名与认领码不匹配，或认领码已失效。请核对回执上的认领码，或携带身份证到任一窗口办理。"
           " The ID number, name and claim code do not match an account waiting to be claimed, or the code is void.")


def new_claim_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_code(code: str) -> str:
    """As typed off the slip: spaces and hyphens dropped, lower case raised."""
    return "".join(ch for ch in code.upper() if ch not in " -\u3000")


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def expires(now: datetime) -> datetime:
    return now + timedelta(days=CLAIM_DAYS)


@dataclass(frozen=True)
class ClaimState:
    code_hash: str | None
    expires_at: datetime | None
    failures: int
    claimed_at: datetime | None


def code_opens(state: ClaimState, code: str, now: datetime) -> bool:
    """Whether this code claims the account now: unclaimed, a live code, not expired, tries left, and equal (in
    constant time)."""
    if state.claimed_at is not None or state.code_hash is None or state.expires_at is None:
        return False
    if state.expires_at <= now or state.failures >= MAX_CLAIM_FAILURES:
        return False
    return hmac.compare_digest(state.code_hash, code_hash(code))


def void_after_failure(failures: int) -> bool:
    """A wrong try that reaches the limit voids the code."""
    return failures >= MAX_CLAIM_FAILURES
