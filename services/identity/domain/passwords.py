"""Password rules and hashing (argon2id)."""

from __future__ import annotations

from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 128
#: zxcvbn's score (0-4) a new password must reach: 3 is "safely unguessable: moderate protection from an
#: offline slow-hash scenario" (about 10^8 guesses and more), which argon2id is.
MIN_SCORE = 3
#: zxcvbn refuses longer input (its matching is quadratic): a longer password is judged by its first 72.
_ESTIMATED_LENGTH = 72


def password_problem(password: str, personal: Iterable[str | None] = ()) -> str | None:
    """Why a new password is refused, or None. Length over composition (NIST SP 800-63B), then zxcvbn's
    estimate of how many guesses it takes (its dictionaries of common passwords, names, keyboard patterns,
    dates and l33t substitutions, which refuse `Passw0rd` as a hand-made rule would not). `personal` is what a
    guesser knows of the account (name, ID number, birth date, phone, login name): passwords built from it
    count as guessed."""
    if len(password) < MIN_LENGTH:
        return f"At least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"At most {MAX_LENGTH} characters."
    known = [p for p in personal if p]
    estimate = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=known)
    if estimate["score"] < MIN_SCORE:
        hint = estimate["feedback"].get("warning") or "It would be guessed quickly."
        tips = " ".join(estimate["feedback"].get("suggestions") or [])
        return f"Too easy to guess (strength {estimate['score']} of 4, at least {MIN_SCORE} needed): {hint} {tips}".strip()
    return None


#: The password hash of an account nobody can sign in to yet (a walk-in not yet claimed): never a valid hash.
NO_PASSWORD = "!no-password"


class Passwords:
    """argon2id with the service's cost parameters. Unknown accounts are checked against a dummy hash so a
    login takes the same time whether or not the username exists."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy = self._hasher.hash("not-a-password-anyone-has")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        # An account without a password (`NO_PASSWORD`: opened by a clerk at a window, not yet claimed) is checked
        # against the dummy like an unknown one: the same time, and never a match.
        usable = stored if stored and not stored.startswith("!") else None
        try:
            return self._hasher.verify(usable or self._dummy, password) and usable is not None
        except (VerificationError, InvalidHashError):
            return False
