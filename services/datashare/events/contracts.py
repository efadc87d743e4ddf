"""Event payloads datashare publishes (source of truth) and the subsets it reads of others' events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events import ConsumedEvent

CERTIFICATE_ISSUED = "yimen.datashare.certificate.issued"
CERTIFICATE_REVOKED = "yimen.datashare.certificate.revoked"
ACCESS_ANOMALY = "yimen.datashare.access.anomaly"
TASK_EVENTS = "yimen.workflow.task.*"
TASK_ASSIGNED = "yimen.workflow.task.assigned"
TASK_DECIDED = "yimen.workflow.task.decided"
TASK_REOPENED = "yimen.workflow.task.reopened"
TASK_CANCELLED = "yimen.workflow.task.cancelled"

#: A type in the directory (电子证照目录), so catalog can check at save time that an item maps every field it requires.
CERTIFICATE_TYPE_UPSERTED = "yimen.datashare.certificate_type.upserted"
ITEM_PUBLISHED = "yimen.catalog.item.published"
ITEM_WITHDRAWN = "yimen.catalog.item.withdrawn"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"
APPLICATION_ACCEPTED = "yimen.intake.application.accepted"
APPLICATION_DECIDED = "yimen.workflow.application.decided"


class CertificateIssued(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "certificate_number": "LD-SCJGJ-YYZZ-2026-000123",
            "type_code": "SPJYXK",
            "type_name": "食品经营许可证",
            "holder_id": "91445381MA4W00003X",
            "holder_kind": "001",
            "holder_name": "罗定市示例餐饮有限公司",
            "issuer_department": "LD-SCJGJ",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "issued_on": "2026-11-28",
            "valid_until": "2031-11-27",
        },
    ]})

    certificate_number: str
    type_code: str
    type_name: str
    holder_id: str
    holder_kind: str = Field(description="111 citizen ID number, 001 unified social credit code")
    holder_name: str | None
    issuer_department: str
    application_id: str | None
    issued_on: date
    valid_until: date | None


class CertificateTypeUpserted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "code": "SPJYXK",
            "name": "食品经营许可证",
            "issuer_department": "LD-SCJGJ",
            "fields": ["holder_name", "premises", "scope"],
            "required": ["holder_name", "premises"],
        },
    ]})

    code: str
    name: str
    issuer_department: str
    fields: list[str] = Field(description="Every field the type defines.")
    required: list[str] = Field(description="The fields an issued certificate must carry.")


class CertificateRevoked(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "certificate_number": "LD-SCJGJ-YYZZ-2026-000123",
            "reason": "许可被依法撤销",
            "revoked_at": "2026-12-15T09:00:00+08:00",
        },
    ]})

    certificate_number: str
    reason: str
    revoked_at: datetime


class AccessReader(BaseModel):
    subject: str = Field(description="Account id of the reader, or `client:<hash>` for a public client address.")
    kind: str = Field(description="staff, department_system, person or public")
    department: str | None


class AccessAnomaly(BaseModel):
    """Unusual reading found by the access watch (安全监控). Evidence only: who read, which rule, how many, when,
    and the access-log entries (`seq`) to open; never the personal data read."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "anomaly_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "kind": "night_reads",
            "reader": {
                "subject": "c0ffee00c0ffee00c0ffee00c0ffee00",
                "kind": "staff",
                "department": "LD-SCJGJ",
            },
            "count": 12,
            "threshold": 10,
            "window_start": "2026-11-26T00:00:00+08:00",
            "window_end": "2026-11-26T06:00:00+08:00",
            "entry_seqs": [1041, 1042, 1043],
            "data_office": "LD-ZSJ",
            "detected_at": "2026-11-26T06:00:05+08:00",
        },
    ]})

    anomaly_id: str
    kind: str = Field(description="reads_outside_cases, refused_reads, night_reads or failed_verifications")
    reader: AccessReader
    count: int = Field(description="Reads counted by the rule (distinct people for reads_outside_cases).")
    threshold: int
    window_start: datetime
    window_end: datetime
    entry_seqs: list[int] = Field(description="Access-log entries (GET /access-log, seq) that are the evidence.")
    data_office: str = Field(description="The department to notify (数据管理部门).")
    detected_at: datetime


class Applicant(ConsumedEvent):
    kind: str = "person"
    id: str | None = None
    holder_id: str | None = None
    name: str | None = None
    agent_id: str | None = None


class ItemPublished(ConsumedEvent):
    consumes = (ITEM_PUBLISHED,)

    code: str
    version: int
    name: str
    department: str
    materials: list[dict[str, Any]] = []
    process: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    published_at: datetime | None = None


class DepartmentUpserted(ConsumedEvent):
    consumes = (DEPARTMENT_UPSERTED,)

    code: str
    name: str
    credit_code: str | None = None


class ItemWithdrawn(ConsumedEvent):
    consumes = (ITEM_WITHDRAWN,)

    code: str
    version: int
    withdrawn_at: datetime


class ApplicationAccepted(ConsumedEvent):
    consumes = (APPLICATION_ACCEPTED,)

    application_id: str
    receipt_number: str | None = None
    item_code: str
    item_version: int | None = None
    item_name: str | None = None
    department: str | None = None
    applicant: Applicant
    channel: str | None = None
    online: bool | None = None
    accepted_at: datetime
    form: dict[str, Any] = {}
    materials: list[dict[str, Any]] = []
    promised_limit: dict[str, Any] | None = None


class DecisionResult(ConsumedEvent):
    type: str = "none"
    certificate_type: str | None = None
    name: str | None = None


class ApplicationDecided(ConsumedEvent):
    consumes = (APPLICATION_DECIDED,)

    application_id: str
    receipt_number: str | None = None
    item_code: str
    item_version: int | None = None
    outcome: str
    decided_at: datetime
    applicant: Applicant
    department: str | None = None
    result: DecisionResult | None = None


class TaskEvent(ConsumedEvent):
    """The fields datashare reads of workflow's task events (assigned, decided, reopened, cancelled)."""

    consumes = (TASK_ASSIGNED, TASK_DECIDED, TASK_REOPENED, TASK_CANCELLED)

    task_id: str
    application_id: str
    department: str
    item_code: str | None = None
    outcome: str | None = None
