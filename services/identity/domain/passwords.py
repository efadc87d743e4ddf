"""Password rules and hashing (argon2id)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128


#: Passwords every guesser tries first (and dates, which digit-only passwords usually are).
_COMMON = frozenset({"password", "password1", "admin123", "qwerty123", "iloveyou", "abc12345", "woaini1314",
                     "1qaz2wsx", "qwertyuiop", "admin1234", "a1234567", "aa123456"})


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. Length over composition (NIST SP 800-63B): no rule that
    a random generated password could break, only the obvious guesses."""
    if len(password) < MIN_LENGTH:
        return f"At least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"At most {MAX_LENGTH} characters."
    if password.isdigit():
        return "Not only digits (birthdays and phone numbers are guessed first)."
    if len(set(password)) < 3 or password.lower() in _COMMON:
        return "This password is among the first ones guessed."
    return None


class Passwords:
    """argon2id with the service's cost parameters. Unknown accounts are checked against a dummy hash so a
    login takes the same time whether or not the username exists."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy = self._hasher.hash("not-a-password-anyone-has")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
