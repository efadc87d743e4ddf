"""Event payloads datashare publishes (source of truth) and the subsets it reads of others' events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    code: str
    name: str
    issuer_department: str
    fields: list[str] = Field(description="Every field the type defines.")
    required: list[str] = Field(description="The fields an issued certificate must carry.")


class CertificateRevoked(BaseModel):
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


class _Consumed(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Applicant(_Consumed):
    kind: str = "person"
    id: str | None = None
    holder_id: str | None = None
    name: str | None = None
    agent_id: str | None = None


class ItemPublished(_Consumed):
    code: str
    version: int
    name: str
    department: str
    materials: list[dict[str, Any]] = []
    process: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    published_at: datetime | None = None


class DepartmentUpserted(_Consumed):
    code: str
    name: str
    credit_code: str | None = None


class ItemWithdrawn(_Consumed):
    code: str
    version: int
    withdrawn_at: datetime


class ApplicationAccepted(_Consumed):
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


class DecisionResult(_Consumed):
    type: str = "none"
    certificate_type: str | None = None
    name: str | None = None


class ApplicationDecided(_Consumed):
    application_id: str
    receipt_number: str | None = None
    item_code: str
    item_version: int | None = None
    outcome: str
    decided_at: datetime
    applicant: Applicant
    department: str | None = None
    result: DecisionResult | None = None


class TaskEvent(_Consumed):
    """The fields datashare reads of workflow's task events (assigned, decided, reopened, cancelled)."""

    task_id: str
    application_id: str
    department: str
    item_code: str | None = None
    outcome: str | None = None
