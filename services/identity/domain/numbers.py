"""The two keys of every natural and legal person: the citizen ID number (公民身份号码, GB 11643-1999) and
the unified social credit code (统一社会信用代码, GB 32100-2015).

Why not `stdnum.cn.ric.validate` as is: after length, format and check digit it requires the six-digit
region to be a county that existed in the *birth* year (its own copy of GB/T 2260). A number's region is the
code in force where and when the number was *assigned*, often years after birth, and an abolished code stays
valid inside existing numbers, so that check rejects real people. We reuse stdnum's normalisation, check
digit and birth-date parsing, and check the region only as far as the standard allows: the first two digits
must be a province-level code that GB/T 2260 has used (or 81/82/83 of the residence permits for Hong Kong,
Macao and Taiwan residents). A province part that never existed (e.g. `99`) is a 422 with rule `region`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric, uscc

#: Province-level codes of GB/T 2260 since 1980 (46 Hainan from 1988, 50 Chongqing from 1997), plus the
#: 81/82/83 prefixes of residence-permit numbers (港澳台居民居住证, 2018).
PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
     "71", "81", "82", "83"}
)
#: No living applicant was born before this; older dates are typos.
EARLIEST_BIRTH_YEAR = 1890

_SPACES = re.compile(r"[\s\u00a0\u3000-]+")


class NumberInvalid(ValueError):
    """A number that breaks a rule; `rule` is the stable name clients switch on."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule, self.message = rule, message


def normalise(raw: str) -> str:
    """Full-width characters become ASCII (NFKC), whitespace and hyphens go, letters are upper-cased."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", raw)).upper()


@dataclass(frozen=True)
class CitizenId:
    number: str
    birth_date: date
    sex: str  # "male" | "female": the sequence number's parity (odd = male)

    @property
    def region(self) -> str:
        return self.number[:6]


def parse_citizen_id(raw: str, *, today: date) -> CitizenId:
    """Check a citizen ID number by rule and derive birth date and sex from it."""
    number = normalise(raw)
    if len(number) == 15 and number.isdigit():
        raise NumberInvalid("length", "15-digit first-generation numbers are no longer valid; use the 18-digit number.")
    if len(number) != 18:
        raise NumberInvalid("length", f"A citizen ID number has 18 characters, not {len(number)}.")
    if not (number[:17].isdigit() and number.isascii() and (number[17].isdigit() or number[17] == "X")):
        raise NumberInvalid("format", "17 digits followed by a digit or X.")
    if number[:2] not in PROVINCE_CODES:
        raise NumberInvalid("region", f"{number[:2]} is not a province-level region code (GB/T 2260).")
    try:
        born = ric.get_birth_date(number)
    except Exception:
        raise NumberInvalid("birth_date", f"{number[6:14]} is not a calendar date.") from None
    if born > today or born.year < EARLIEST_BIRTH_YEAR:
        raise NumberInvalid("birth_date", f"The birth date {born.isoformat()} is impossible.")
    if ric.calc_check_digit(number) != number[17]:
        raise NumberInvalid("check_digit", "The check character does not match (ISO 7064 MOD 11-2).")
    return CitizenId(number=number, birth_date=born, sex="male" if int(number[16]) % 2 else "female")


#: Registering authorities (登记管理部门) of GB 32100: 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政,
#: 6 旅游, 7 宗教, 8 工会, 9 工商/市场监管, A 中央军委改革和编制办公室, N 农业, Y 其他.
_AUTHORITIES = frozenset("123456789ANY")
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def parse_credit_code(raw: str) -> str:
    """Check a unified social credit code: stdnum's `cn.uscc` rejects the authority `Y` (其他) that GB 32100
    allows, so the shape is checked here and the check character with stdnum's algorithm."""
    code = normalise(raw)
    if len(code) != 18:
        raise NumberInvalid("length", f"A unified social credit code has 18 characters, not {len(code)}.")
    if code[0] not in _AUTHORITIES or not code[2:8].isdigit() or any(c not in _ALPHABET for c in code):
        raise NumberInvalid(
            "format", "Authority, category, 6-digit region, 9-character organisation code, check (no I, O, Z, S, V)."
        )
    if uscc.calc_check_digit(code) != code[17]:
        raise NumberInvalid("check_digit", "The check character does not match (GB 32100).")
    return code


_PHONE = re.compile(r"^1[3-9]\d{9}$")


def normalise_phone(raw: str) -> str:
    """A mainland mobile number: `+86`/`0086` and separators dropped."""
    phone = normalise(raw).replace("(", "").replace(")", "")
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            phone = phone[len(prefix):]
    if not _PHONE.match(phone):
        raise NumberInvalid("format", "A mainland mobile number: 11 digits starting with 13-19.")
    return phone
