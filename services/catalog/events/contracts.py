"""Payloads the catalog publishes (the source of truth for docs/CONTRACTS.md's catalog section)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.catalog.domain.model import (
    Audience,
    CaseKind,
    Channel,
    FormField,
    Kind,
    Material,
    PointLevel,
    Process,
    Result,
    SpecialProcedure,
    TimeLimit,
)
from shared.events import ConsumedEvent

ITEM_PUBLISHED = "yimen.catalog.item.published"
ITEM_WITHDRAWN = "yimen.catalog.item.withdrawn"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"
#: A service point (服务点) created or renamed: timelines show the window's name, not its code.
SERVICE_POINT_UPSERTED = "yimen.catalog.service_point.upserted"
#: A project type and its stages saved (issue 17): intake keeps it for projects registered afterwards.
PROJECT_TYPE_PUBLISHED = "yimen.catalog.project_type.published"
#: Consumed: datashare's certificate directory.
CERTIFICATE_TYPE_UPSERTED = "yimen.datashare.certificate_type.upserted"


class PointRef(BaseModel):
    code: str
    name: str
    level: PointLevel


class ItemPublished(BaseModel):
    """The whole published version, so consumers keep a local copy and cite the exact version."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "code": "11441781MB0000001A4010000010000",
            "version": 3,
            "name": "食品经营许可（新办）",
            "kind": "01",
            "kind_name": "行政许可",
            "department": "LD-SCJGJ",
            "audience": ["legal_person"],
            "case_kind": "promised",
            "statutory_limit": {"value": 20, "unit": "working_days", "note": None},
            "promised_limit": {"value": 5, "unit": "working_days", "note": None},
            "visits_required": 0,
            "fully_online": True,
            "min_assurance_level": 2,
            "channels": ["online", "window"],
            "service_points": ["LD-ZWFWZX"],
            "excluded_points": [],
            "collection_points": None,
            "offered_at": [{"code": "LD-ZWFWZX", "name": "罗定市政务服务中心", "level": "city"}],
            "collect_at": [{"code": "LD-ZWFWZX", "name": "罗定市政务服务中心", "level": "city"}],
            "themes": ["开办企业"],
            "life_events": [],
            "keywords": ["食品", "经营许可"],
            "form_fields": [
                {"name": "business_premises", "label": "经营场所", "type": "text", "required": True},
            ],
            "materials": [
                {
                    "code": "business_licence",
                    "name": "营业执照",
                    "necessity": "required",
                    "source": "certificate",
                    "certificate_type": "YYZZ",
                    "fields": [],
                    "form": "electronic",
                    "originals": 0,
                    "copies": 0,
                    "file_types": ["pdf"],
                    "max_bytes": 10485760,
                },
            ],
            "process": {
                "steps": [
                    {
                        "key": "accept",
                        "name": "受理",
                        "kind": "acceptance",
                        "departments": ["LD-SCJGJ"],
                        "limit_days": 1,
                    },
                    {
                        "key": "review",
                        "name": "审查",
                        "kind": "review",
                        "departments": ["LD-SCJGJ"],
                        "limit_days": 3,
                    },
                    {
                        "key": "decide",
                        "name": "决定",
                        "kind": "decision",
                        "departments": ["LD-SCJGJ"],
                        "limit_days": 1,
                    },
                ],
            },
            "special_procedures": [],
            "result": {"type": "certificate", "certificate_type": "SPJYXK", "name": "食品经营许可证", "fields": {}},
            "fees": {"free": True},
            "intermediary_services": [],
            "guide": {"legal_basis": "《中华人民共和国食品安全法》第三十五条"},
            "published_at": "2026-11-26T09:30:00+08:00",
        },
    ]})

    code: str
    version: int
    name: str
    kind: Kind
    kind_name: str
    department: str
    audience: list[Audience]
    case_kind: CaseKind
    statutory_limit: TimeLimit
    promised_limit: TimeLimit
    visits_required: int
    fully_online: bool
    min_assurance_level: int = 2
    channels: list[Channel]
    service_points: list[str]
    excluded_points: list[str] = []
    collection_points: list[str] | None = None
    #: Resolved through the service-point tree at publication: every point where the item is handled (a
    #: town's villages included unless excluded) and where its result may be collected (异地领取).
    offered_at: list[PointRef] = []
    collect_at: list[PointRef] = []
    themes: list[str]
    life_events: list[str]
    keywords: list[str]
    form_fields: list[FormField]
    materials: list[Material]
    process: Process
    special_procedures: list[SpecialProcedure]
    result: Result
    fees: dict[str, Any]
    intermediary_services: list[dict[str, Any]]
    guide: dict[str, Any]
    published_at: datetime


class ItemWithdrawn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "code": "11441781MB0000001A4010000010000",
            "version": 2,
            "withdrawn_at": "2026-11-26T09:30:00+08:00",
        },
    ]})

    code: str
    version: int
    withdrawn_at: datetime


class DepartmentUpserted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "code": "LD-SCJGJ",
            "name": "罗定市市场监督管理局",
            "credit_code": "11441781MB0000001A",
            "phone": "0766-3822315",
        },
    ]})

    code: str
    name: str
    credit_code: str | None
    #: The department's public phone: applicants see it on their steps from the moment a task is assigned.
    phone: str | None = None
    #: government_department | service_enterprise | intermediary (task 17: providers distinct from departments).
    kind: str = "government_department"


class CertificateTypeUpserted(ConsumedEvent):
    """Consumed from datashare (extra fields ignored)."""

    consumes = (CERTIFICATE_TYPE_UPSERTED,)

    code: str
    name: str
    fields: list[str] = []
    required: list[str] = []


class ServicePointUpserted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "LD-ZWFWZX", "name": "罗定市政务服务中心", "level": "city", "parent_code": None},
    ]})

    code: str
    name: str
    level: PointLevel
    parent_code: str | None


class ProjectStageItemOut(BaseModel):
    item_code: str
    name: str | None
    department: str
    limit_days: int


class ProjectStageOut(BaseModel):
    key: str
    name: str
    order: int
    total_limit_days: int
    items: list[ProjectStageItemOut]


class ProjectTypePublished(BaseModel):
    """A project type with its ordered stages, each item with its provider's own limit in the stage."""

    model_config = {"json_schema_extra": {"examples": [{
        "key": "enterprise_investment", "name": "企业投资项目（工程建设项目）", "published_at": "2026-12-01T09:00:00+08:00",
        "stages": [{"key": "approval_land", "name": "立项用地规划许可", "order": 1, "total_limit_days": 15,
                    "items": [{"item_code": "11441781MB0000012E4100000010000", "name": "企业投资项目备案",
                               "department": "LD-FGJ", "limit_days": 3}]}]}]}}

    key: str
    name: str
    description: str | None = None
    stages: list[ProjectStageOut]
    published_at: datetime
