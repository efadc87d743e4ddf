"""Test data: published item versions as catalog sends them (docs/CONTRACTS.md), tokens, small files."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.events import new_event

BUSINESS_LICENCE = "11441781MB0000001A001"
FOOD_PERMIT = "11441781MB0000001A002"
PDF = b"%PDF-1.7\n" + b"0" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 200
ID_NUMBER = "445381199001011234"


def item_code() -> str:
    # A 31-character implementation code: the agency's credit code, level 4 (county), a 12-character basic code.
    return "11441781MB0000001A" + "4" + uuid.uuid4().hex[:12].upper()


def food_permit_item(code: str | None = None, *, version: int = 1, **overrides: Any) -> dict[str, Any]:
    """食品经营许可 as the demo catalogue publishes it."""
    payload: dict[str, Any] = {
        "code": code or item_code(), "version": version, "name": "食品经营许可", "kind": "01", "kind_name": "行政许可",
        "department": "LD-SCJGJ", "audience": ["natural_person", "legal_person"], "case_kind": "promised",
        "statutory_limit": {"value": 20, "unit": "working_days"}, "promised_limit": {"value": 10, "unit": "working_days"},
        "visits_required": 0, "fully_online": False,
        "channels": ["online", "mobile", "window"], "service_points": ["LD-CENTRE", "LD-LC"],
        "themes": ["餐饮"], "life_events": ["开办餐饮店"],
        "form_fields": [
            {"name": "shop_name", "label": "店名", "type": "text", "required": True},
            {"name": "address", "label": "经营场所", "type": "text", "required": True},
            {"name": "staff_count", "label": "从业人数", "type": "integer", "required": False},
        ],
        "materials": [
            {"code": "M01", "name": "营业执照", "necessity": "required", "condition": None, "source": "certificate",
             "certificate_type": BUSINESS_LICENCE, "registry": None, "fields": ["number", "name"],
             "commitment_allowed": False, "form": "electronic", "originals": 0, "copies": 0, "file_types": ["pdf", "jpg"],
             "max_bytes": 2_000_000, "legal_basis": "《食品经营许可管理办法》第十二条"},
            {"code": "M02", "name": "法定代表人身份证明", "necessity": "required", "condition": None, "source": "registry",
             "certificate_type": None, "registry": "population", "fields": ["name", "id_number"],
             "commitment_allowed": False, "form": "electronic", "originals": 0, "copies": 0, "file_types": ["pdf", "jpg"],
             "max_bytes": 2_000_000, "legal_basis": None},
            {"code": "M03", "name": "经营场所平面图", "necessity": "required", "condition": None, "source": "applicant",
             "certificate_type": None, "registry": None, "fields": [], "commitment_allowed": False,
             "form": "electronic", "originals": 0, "copies": 0, "file_types": ["pdf", "png"], "max_bytes": 1000,
             "legal_basis": None},
            {"code": "M04", "name": "食品安全自查承诺书", "necessity": "required", "condition": None,
             "source": "applicant", "certificate_type": None, "registry": None, "fields": [],
             "commitment_allowed": True, "form": "electronic", "originals": 0, "copies": 0, "file_types": ["pdf"],
             "max_bytes": 1_000_000, "legal_basis": None},
            {"code": "M05", "name": "其他说明材料", "necessity": "optional", "condition": None, "source": "applicant",
             "certificate_type": None, "registry": None, "fields": [], "commitment_allowed": False,
             "form": "electronic", "originals": 0, "copies": 0, "file_types": ["pdf"], "max_bytes": 1_000_000,
             "legal_basis": None},
        ],
        "process": {"steps": [
            {"key": "accept", "name": "受理", "kind": "acceptance", "departments": ["LD-SCJGJ"], "lead_department": "LD-SCJGJ",
             "limit_days": 1, "on_reject": "reject_case", "deemed_approval_on_timeout": False, "excluded_from_limit": False},
            {"key": "joint", "name": "并联审查", "kind": "parallel", "departments": ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"],
             "lead_department": "LD-SCJGJ", "limit_days": 5, "on_reject": "lead_arbitrates",
             "deemed_approval_on_timeout": False, "excluded_from_limit": False},
        ]},
        "special_procedures": [],
        "result": {"type": "certificate", "certificate_type": FOOD_PERMIT, "name": "食品经营许可证"},
        "fees": {"charged": False}, "published_at": datetime.now(UTC).isoformat(),
        "guide": {"consultation": [{"channel": "phone", "value": "0766-3888888"}]},
    }
    payload.update(overrides)
    return payload


def simple_item(code: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An item whose only material is an upload, for lifecycle tests that do not need datashare."""
    p = food_permit_item(code, **overrides)
    p["materials"] = [m for m in p["materials"] if m["code"] == "M03"]
    p["form_fields"] = [p["form_fields"][0]]
    p.update(overrides)
    return p


def published(payload: dict[str, Any]):  # type: ignore[no-untyped-def]
    return new_event("yimen.catalog.item.published", source="/yimen/catalog", subject=payload["code"], data=payload)


def withdrawn(code: str, version: int):  # type: ignore[no-untyped-def]
    return new_event("yimen.catalog.item.withdrawn", source="/yimen/catalog", subject=code,
                     data={"code": code, "version": version, "withdrawn_at": datetime.now(UTC).isoformat()})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def citizen(tokens: Any, sub: str | None = None, **claims: Any) -> dict[str, str]:
    claims.setdefault("hid", ID_NUMBER)
    claims.setdefault("name", "张三")
    return tokens.headers(sub or "p-" + uuid.uuid4().hex[:8], kind="person", roles=["citizen"], **claims)


def clerk(tokens: Any, point: str = "LD-CENTRE", dept: str = "LD-ZSJ", **claims: Any) -> dict[str, str]:
    return tokens.headers("s-" + uuid.uuid4().hex[:8], kind="staff", roles=["window_clerk"], point=point, dept=dept,
                          name="李窗口", phone="0766-3822000", **claims)
