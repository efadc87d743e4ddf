"""Payloads the catalog publishes (the source of truth for docs/CONTRACTS.md's catalog section)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

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
    code: str
    version: int
    withdrawn_at: datetime


class DepartmentUpserted(BaseModel):
    code: str
    name: str
    credit_code: str | None
    #: The department's public phone: applicants see it on their steps from the moment a task is assigned.
    phone: str | None = None
    #: government_department | service_enterprise | intermediary (task 17: providers distinct from departments).
    kind: str = "government_department"


class CertificateTypeUpserted(BaseModel):
    """Consumed from datashare (extra fields ignored)."""

    code: str
    name: str
    fields: list[str] = []
    required: list[str] = []


class ServicePointUpserted(BaseModel):
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
