"""Result delivery (出件): where the applicant wants the result — electronically, collected at any service point
that offers collection for the item (异地领取), or by post (邮寄) — and the points an item is offered at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.intake.domain.completeness import check_point, offered
from services.intake.domain.findings import Finding
from services.intake.domain.lifecycle import Status

#: The choice may change until the result is ready to hand over.
CHANGEABLE = frozenset({
    Status.DRAFT, Status.SUBMITTED, Status.RETURNED, Status.ACCEPTED, Status.IN_REVIEW,
    Status.AWAITING_CORRECTION, Status.DECIDED, Status.AWAITING_PAYMENT,
})


def point_name(item: Mapping[str, Any], code: str | None) -> str | None:
    for key in ("collect_at", "offered_at"):
        found = (offered(item, key) or {}).get(code or "")
        if found:
            return str(found.get("name") or code)
    return None


def check_choice(item: Mapping[str, Any], *, method: str, point: str | None, address: str | None,
                 prefix: str = "delivery") -> list[Finding]:
    out = []
    if method == "pickup":
        collect = offered(item, "collect_at")
        if not point:
            out.append(Finding(f"{prefix}.service_point", "required", "领取结果须选择领取服务点。"))
        elif collect is not None and point not in collect:
            out.append(Finding(f"{prefix}.service_point", "collection_not_offered",
                               f"服务点 {point} 不提供此事项的结果领取；可选：{'、'.join(collect) or '无'}。"))
        elif collect is None and (f := check_point(item, point)) is not None:
            out.append(Finding(f"{prefix}.service_point", "collection_not_offered", f.message))
    if method == "post" and not (address and address.strip()):
        out.append(Finding(f"{prefix}.address", "required", "Delivery by post needs a postal address."))
    return out
