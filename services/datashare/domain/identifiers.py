"""Identity numbers and certificate identifiers (GB 11643, GB 32100, GB/T 36903)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_37_36

#: GB/T 36903 holder code types: 111 citizen ID number, 001 unified social credit code.
HOLDER_KIND_PERSON = "111"
HOLDER_KIND_ORGANISATION = "001"

_HOLDER_KIND_ALIASES = {
    "111": HOLDER_KIND_PERSON,
    "person": HOLDER_KIND_PERSON,
    "natural_person": HOLDER_KIND_PERSON,
    "001": HOLDER_KIND_ORGANISATION,
    "organisation": HOLDER_KIND_ORGANISATION,
    "organization": HOLDER_KIND_ORGANISATION,
    "legal_person": HOLDER_KIND_ORGANISATION,
}

TYPE_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}\d{3}$")
IDENTIFIER_PREFIX = "1.2.156.3005.2"


def normalise_holder_kind(kind: str) -> str | None:
    return _HOLDER_KIND_ALIASES.get(kind.strip().lower())


def id_number_problem(value: str) -> tuple[str, str] | None:
    """Why a citizen ID number is not valid, as (rule, message), or None.

    The region part is deliberately not checked against today's code list: a code in force when the number
    was assigned stays valid inside the number even after the region was renamed or abolished."""
    v = value.strip().upper()
    if len(v) != 18:
        return "length", "A citizen ID number has 18 characters."
    if not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        return "format", "17 digits followed by a digit or X."
    if ric.calc_check_digit(v) != v[17]:
        return "check_digit", "The check character does not match (GB 11643 MOD 11-2)."
    try:
        ric.get_birth_date(v)
    except ValidationError:
        return "birth_date", "The birth date inside the number is not a real date."
    return None


def credit_code_problem(value: str) -> tuple[str, str] | None:
    """Why a unified social credit code is not valid, as (rule, message), or None."""
    v = value.strip().upper()
    if len(v) != 18:
        return "length", "A unified social credit code has 18 characters."
    try:
        uscc.validate(v)
    except ValidationError as exc:
        if "checksum" in type(exc).__name__.lower():
            return "check_digit", "The check character does not match (GB 32100)."
        return "format", "Only 0-9 and A-H J-N P Q R T U W X Y; see GB 32100."
    return None


def holder_problem(holder_id: str, holder_kind: str) -> tuple[str, str] | None:
    if holder_kind == HOLDER_KIND_PERSON:
        return id_number_problem(holder_id)
    return credit_code_problem(holder_id)


def certificate_identifier(type_code: str, issuer_credit_code: str, serial: int, version: int = 1) -> str:
    """`1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>`, the check over the preceding characters
    without dots (ISO 7064 MOD 37,36)."""
    body = f"{IDENTIFIER_PREFIX}.{type_code}.{issuer_credit_code}.{serial:06d}.{version:03d}"
    return f"{body}.{mod_37_36.calc_check_digit(body.replace('.', ''))}"


def identifier_is_valid(identifier: str) -> bool:
    body, _, check = identifier.rpartition(".")
    return bool(body) and mod_37_36.is_valid(body.replace(".", "") + check)


def certificate_number(type_code: str, serial: int) -> str:
    """The licence number: unique per type and serial, readable on paper."""
    return f"{type_code}{serial:06d}"


#: Serials are 6 digits (the licence number and the identifier keep their printed length).
SERIAL_SPACE = 1_000_000
_HALF = 1000
_ROUNDS = 4


def _round(key: bytes, type_code: str, rnd: int, half: int) -> int:
    digest = hmac.new(key, f"{type_code}:{rnd}:{half}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % _HALF


def permuted_serial(key: str, type_code: str, counter: int) -> int:
    """The `counter`-th serial of a type, through a keyed permutation of 000000–999999 (a balanced Feistel
    network over two base-1000 halves): every counter gives a distinct serial, and one certificate's serial
    tells nothing about the next one's, so numbers cannot be enumerated from one another."""
    if not 0 <= counter < SERIAL_SPACE:
        raise ValueError("the type's serial space (10^6) is exhausted")
    k = key.encode()
    left, right = divmod(counter, _HALF)
    for rnd in range(_ROUNDS):
        left, right = right, (left + _round(k, type_code, rnd, right)) % _HALF
    return left * _HALF + right


def new_serial_key() -> str:
    return secrets.token_hex(32)


#: Crockford's base32 without the letters people confuse (I, L, O, U): printed on the certificate.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VERIFICATION_CODE_LENGTH = 10


def new_verification_code() -> str:
    """The certificate's own verification code (50 random bits), printed beside its number (核验码)."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(VERIFICATION_CODE_LENGTH))


def verification_code_matches(stored: str | None, presented: str) -> bool:
    given = presented.strip().upper().replace("-", "").replace(" ", "")
    return bool(stored) and hmac.compare_digest(stored.encode(), given.encode())  # type: ignore[union-attr]
