"""Identity assurance (实名核验): how sure the platform is that an account is the person it names, graded the way
national and provincial government-service platforms grade it.

1. self-registered: the number is valid but the population registry does not hold it; may browse, consult and
   draft, may not submit nor have data fetched for it.
2. matched: name and ID number matched against the population registry (through datashare).
3. in person: a window clerk checked the ID card (also the level of a walk-in a clerk registers).

A level never goes down by these rules; a name that does not match the registry creates nothing."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

SELF_REGISTERED, REGISTRY_MATCHED, IN_PERSON = 1, 2, 3
#: The level an account needs to register an organisation or act where the plan requires a real name.
REAL_NAME = REGISTRY_MATCHED

Basis = Literal["population_registry", "not_in_population_registry", "in_person"]

#: What a level-1 account is told, and how to rise.
WHY_LEVEL_1 = ("你的身份证号码未在人口库中找到，账户为自助注册（一级）：可浏览、咨询和保存草稿，但不能提交申请。"
               "请携带居民身份证到任一政务服务窗口现场核验（三级），或待人口库更新后在“我的账户”重新核验。")


class NameMismatch(Exception):
    """The registry holds the number under another name: the registration is refused and nothing is created."""


@dataclass(frozen=True)
class Assurance:
    level: int
    basis: Basis
    note: str | None = None


def from_population_match(verdict: str) -> Assurance:
    """The level registration gives for datashare's verdict (`match`, `name_mismatch`, `not_found`)."""
    if verdict == "match":
        return Assurance(REGISTRY_MATCHED, "population_registry")
    if verdict == "not_found":
        return Assurance(SELF_REGISTERED, "not_in_population_registry", WHY_LEVEL_1)
    if verdict == "name_mismatch":
        raise NameMismatch
    raise ValueError(f"unknown registry verdict {verdict!r}")


def raised(current: int, to: int) -> int:
    """Verification only ever raises a level (an in-person check of a level-3 account changes nothing)."""
    return max(current, to)


def note_for(level: int, basis: str | None) -> str | None:
    return WHY_LEVEL_1 if level == SELF_REGISTERED and basis == "not_in_population_registry" else None


#: Organisation registration (法人注册): datashare's legal-person verdict → (status, field, rule, message).
ORGANISATION_REFUSALS: dict[str, tuple[int, str, str, str]] = {
    "not_found": (422, "body.credit_code", "not_in_registry",
                  "法人库中没有这个统一社会信用代码；请核对，或先到市场监管部门办理登记。"),
    "name_mismatch": (422, "body.name", "registry_mismatch", "名称与法人库登记的名称不一致，请按营业执照填写。"),
    "inactive": (422, "body.credit_code", "inactive", "法人库显示该主体已注销或吊销，不能注册。"),
    "not_legal_representative": (403, "body.legal_representative_id_number", "not_legal_representative",
                                 "法人库登记的法定代表人不是你；只有法定代表人本人可以注册该单位，再委托经办人。"),
}


_DOTS = re.compile(r"[·•‧・]")
_SPACE = re.compile(r"\s+")


def same_name(a: str, b: str) -> bool:
    """Names as a clerk reads them off a card and as they were typed: NFKC, no spaces, middle dots alike."""
    def norm(name: str) -> str:
        return _DOTS.sub("·", _SPACE.sub("", unicodedata.normalize("NFKC", name)))

    return norm(a) == norm(b)
