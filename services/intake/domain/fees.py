"""Fees (收费): what an approved application owes, the exemptions (减免) an applicant may claim, and the
payment notice (缴款通知) with its payment code. Amounts are `Decimal` yuan, never floats."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.intake.domain.completeness import Finding

#: Working days the applicant has to pay after the notice (local rule: keep it a setting where it varies).
DUE_WORKDAYS = 10


def fee_items(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    fees = item.get("fees") or {}
    return list(fees.get("items") or []) if fees.get("charged") else []


def exemptions(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every exemption the item lists, by code (one code may exempt from several fee items)."""
    return {e["code"]: e for f in fee_items(item) for e in f.get("exemptions") or [] if e.get("code")}


def check_claim(item: Mapping[str, Any], code: str | None) -> Finding | None:
    """An exemption is claimed by a code the item's guide lists, never by free text."""
    if code is None:
        return None
    listed = exemptions(item)
    if code not in listed:
        names = "、".join(f"{c}（{e.get('name')}）" for c, e in listed.items()) or "无"
        return Finding("fee_exemption", "unknown_exemption", f"此事项没有减免情形 {code}；可申请的减免：{names}。")
    return None


def amount_of(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0")
    return amount if amount.is_finite() and amount > 0 else Decimal("0")


@dataclass(frozen=True)
class Bill:
    amount: Decimal
    lines: list[dict[str, Any]]

    @property
    def due(self) -> bool:
        return self.amount > 0


def bill(item: Mapping[str, Any], granted_exemption: str | None) -> Bill:
    """What the applicant owes: each fee item's amount, less the items the granted exemption covers."""
    lines: list[dict[str, Any]] = []
    for f in fee_items(item):
        exempt = granted_exemption is not None and any(
            e.get("code") == granted_exemption for e in f.get("exemptions") or [])
        amount = Decimal("0") if exempt else amount_of(f.get("amount"))
        lines.append({"name": f.get("name"), "standard": f.get("standard"), "basis": f.get("basis"),
                      "amount": f"{amount:.2f}", "exempted": exempt})
    total = sum((Decimal(line["amount"]) for line in lines), Decimal("0"))
    return Bill(total, lines)


def payment_code() -> str:
    """A 20-digit payment code (缴款码) as non-tax payment platforms issue them: region prefix + random."""
    return "4417" + "".join(str(secrets.randbelow(10)) for _ in range(16))


def same_amount(paid: Any, owed: str) -> bool:
    try:
        return Decimal(str(paid)) == Decimal(owed)
    except (InvalidOperation, ValueError):
        return False
