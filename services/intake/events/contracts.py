"""Event payloads intake publishes (the source of truth for them) and the subsets it reads of others'."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import ConsumedEvent

SUBMITTED = "yimen.intake.application.submitted"
ACCEPTED = "yimen.intake.application.accepted"
RETURNED = "yimen.intake.application.returned"
NOT_ACCEPTED = "yimen.intake.application.not_accepted"
WITHDRAWN = "yimen.intake.application.withdrawn"
CORRECTED = "yimen.intake.application.corrected"
DELIVERED = "yimen.intake.application.delivered"
VISIT_RECORDED = "yimen.intake.visit.recorded"
PAYMENT_REQUESTED = "yimen.intake.payment.requested"
PAYMENT_CONFIRMED = "yimen.intake.payment.confirmed"
READY_FOR_COLLECTION = "yimen.intake.application.ready_for_collection"
PROJECT_REGISTERED = "yimen.intake.project.registered"
PROJECT_STAGE_ACCEPTED = "yimen.intake.project.stage_accepted"
PROJECT_STAGE_COMPLETED = "yimen.intake.project.stage_completed"
PROJECT_COMPLETED = "yimen.intake.project.completed"

ITEM_PUBLISHED = "yimen.catalog.item.published"
ITEM_WITHDRAWN = "yimen.catalog.item.withdrawn"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"
SERVICE_POINT_UPSERTED = "yimen.catalog.service_point.upserted"
TASK_ASSIGNED = "yimen.workflow.task.assigned"
TASK_DECIDED = "yimen.workflow.task.decided"
TASK_HANDLER_ASSIGNED = "yimen.workflow.task.handler_assigned"
APPLICATION_DECIDED = "yimen.workflow.application.decided"
CERTIFICATE_ISSUED = "yimen.datashare.certificate.issued"
DELEGATION_GRANTED = "yimen.identity.delegation.granted"
DELEGATION_REVOKED = "yimen.identity.delegation.revoked"
PROJECT_TYPE_PUBLISHED = "yimen.catalog.project_type.published"


# --- published -------------------------------------------------------------------------------------------


class ApplicantRef(BaseModel):
    kind: Literal["person", "organisation"]
    id: str
    holder_id: str | None
    name: str | None
    agent_id: str | None


class MaterialRef(BaseModel):
    code: str
    kind: Literal["upload", "certificate_ref", "commitment", "fetched"]
    reference: str | None


class Submitted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "item_code": "11441781MB0000001A4010000010000",
            "item_version": 3,
            "department": "LD-SCJGJ",
            "applicant": {
                "kind": "person",
                "id": "3c2b1a09f8e7d6c5b4a3928170615243",
                "holder_id": "44178119900307****",
                "name": "张三",
                "agent_id": None,
            },
            "channel": "online",
            "service_point": "LD-ZWFWZX",
            "submitted_at": "2026-11-26T10:00:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    item_code: str
    item_version: int
    department: str
    applicant: ApplicantRef
    channel: str
    service_point: str
    submitted_at: datetime
    #: Set when the application was dispatched from a project's stage (统一分派).
    project_id: str | None = None
    stage_key: str | None = None


class Accepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "item_code": "11441781MB0000001A4010000010000",
            "item_version": 3,
            "item_name": "食品经营许可（新办）",
            "department": "LD-SCJGJ",
            "applicant": {
                "kind": "person",
                "id": "3c2b1a09f8e7d6c5b4a3928170615243",
                "holder_id": "44178119900307****",
                "name": "张三",
                "agent_id": None,
            },
            "channel": "online",
            "service_point": "LD-ZWFWZX",
            "online": True,
            "accepted_at": "2026-11-26T10:05:00+08:00",
            "accepted_by": "system",
            "form": {"business_premises": "罗定市罗城街道兴华一路 8 号", "contact_phone": "13800138000"},
            "materials": [
                {
                    "code": "business_licence",
                    "kind": "certificate_ref",
                    "reference": "LD-SCJGJ-YYZZ-2026-000123",
                },
            ],
            "commitments": [],
            "case_kind": "commitment",
            "promised_limit": {"value": 5, "unit": "working_days"},
            "statutory_limit": {"value": 20, "unit": "working_days"},
        },
    ]})

    application_id: str
    receipt_number: str
    item_code: str
    item_version: int
    item_name: str
    department: str
    applicant: ApplicantRef
    channel: str
    service_point: str
    online: bool
    accepted_at: datetime
    accepted_by: str
    form: dict[str, Any]
    materials: list[MaterialRef]
    commitments: list[str]
    case_kind: str
    #: For an application dispatched from a project's stage: the department's own limit there (明确部门办理时限).
    promised_limit: dict[str, Any] | None
    statutory_limit: dict[str, Any] | None
    project_id: str | None = None
    stage_key: str | None = None


class Missing(BaseModel):
    field: str
    rule: str
    message: str


class Returned(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "reasons": "经营场所地址不完整",
            "missing": [
                {"field": "form.business_premises", "rule": "complete_address", "message": "请填写到门牌号"},
            ],
            "returned_at": "2026-11-26T10:05:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    reasons: str
    missing: list[Missing]
    returned_at: datetime


class NotAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "reasons": "申请事项不属于本机关职权范围",
            "legal_basis": "《中华人民共和国行政许可法》第三十二条第一款第（二）项",
            "at": "2026-11-26T10:05:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    reasons: str
    legal_basis: str
    at: datetime


class Withdrawn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "withdrawn_at": "2026-11-27T09:00:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    withdrawn_at: datetime


class Corrected(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "corrected_at": "2026-11-27T15:00:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    task_id: str
    corrected_at: datetime


class Delivered(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "method": "electronic",
            "certificate_number": "LD-SCJGJ-YYZZ-2026-000123",
            "delivered_at": "2026-11-28T11:00:00+08:00",
            "online": True,
        },
    ]})

    application_id: str
    receipt_number: str
    method: Literal["electronic", "pickup", "post"]
    certificate_number: str | None
    delivered_at: datetime
    online: bool


class PaymentRequested(BaseModel):
    """A payment notice (缴款通知) was issued after approval; `amount` in yuan as a decimal string."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "applicant": {
                "kind": "person",
                "id": "3c2b1a09f8e7d6c5b4a3928170615243",
                "holder_id": "44178119900307****",
                "name": "张三",
                "agent_id": None,
            },
            "item_name": "食品经营许可（新办）",
            "amount": "50.00",
            "payment_code": "44170000000000001234",
            "due_on": "2026-12-10",
        },
    ]})

    application_id: str
    receipt_number: str
    applicant: ApplicantRef
    item_name: str
    amount: str
    payment_code: str
    due_on: date


class PaymentConfirmed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "amount": "50.00",
            "paid_at": "2026-11-27T16:20:00+08:00",
        },
    ]})

    application_id: str
    receipt_number: str
    amount: str
    paid_at: datetime


class ReadyForCollection(BaseModel):
    """The result waits at the point the applicant chose (异地领取 where it is not where they applied)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "applicant": {
                "kind": "person",
                "id": "3c2b1a09f8e7d6c5b4a3928170615243",
                "holder_id": "44178119900307****",
                "name": "张三",
                "agent_id": None,
            },
            "item_name": "食品经营许可（新办）",
            "service_point": "LD-ZWFWZX",
            "service_point_name": "罗定市政务服务中心",
        },
    ]})

    application_id: str
    receipt_number: str
    applicant: ApplicantRef
    item_name: str
    service_point: str
    service_point_name: str | None


class VisitRecorded(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "service_point": "LD-ZWFWZX",
            "purpose": "collection",
            "at": "2026-11-28T11:00:00+08:00",
        },
    ]})

    application_id: str
    service_point: str
    purpose: str
    at: datetime


# --- projects (企业投资项目, issue 17) -------------------------------------------------------------------------

_AT = "2026-12-01T09:30:00+08:00"
_PROJECT = "prj3f9c2a7e1b4d4c0e9a8b7c6d"


class ProjectRegistered(BaseModel):
    """An organisation registered an enterprise investment project (its code checked or issued)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "project_id": _PROJECT, "project_code": "2026-445381-39-03-123452", "owner_id": "91441781MA4W100042",
        "name": "罗定市某食品有限公司年产 2 万吨淀粉制品生产线", "registered_at": _AT}]})

    project_id: str
    project_code: str
    owner_id: str
    name: str
    registered_at: datetime


class StageApplicationRef(BaseModel):
    application_id: str
    item_code: str
    department: str
    limit_days: int


class ProjectStageAccepted(BaseModel):
    """The centre accepted a stage application once (统一受理) and dispatched one application per item
    (统一分派), each with its department's own limit within the stage's total."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "project_id": _PROJECT, "stage_key": "approval_land", "stage_name": "立项用地规划许可", "total_limit_days": 15,
        "accepted_at": _AT, "applications": [
            {"application_id": "5b0c6f1e2d3a4b5c8d9e0f1a2b3c4d5e", "item_code": "11441781MB0000012E4100000010000",
             "department": "LD-FGJ", "limit_days": 3}]}]})

    project_id: str
    stage_key: str
    stage_name: str
    total_limit_days: int
    accepted_at: datetime
    applications: list[StageApplicationRef]


class ProjectStageCompleted(BaseModel):
    """Every item application of the stage is decided."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "project_id": _PROJECT, "stage_key": "approval_land", "completed_at": _AT}]})

    project_id: str
    stage_key: str
    completed_at: datetime


class ProjectCompleted(BaseModel):
    """Every stage of the project is completed with its items approved."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"project_id": _PROJECT, "completed_at": _AT}]})

    project_id: str
    completed_at: datetime


# --- consumed (only what intake reads) ---------------------------------------------------------------------


class ItemPublished(ConsumedEvent):
    consumes = (ITEM_PUBLISHED,)

    code: str
    version: int
    name: str
    department: str
    published_at: datetime | None = None


class ItemWithdrawn(ConsumedEvent):
    consumes = (ITEM_WITHDRAWN,)

    code: str
    version: int
    withdrawn_at: datetime


class DepartmentUpserted(ConsumedEvent):
    consumes = (DEPARTMENT_UPSERTED,)

    code: str
    name: str
    phone: str | None = None


class ServicePointUpserted(ConsumedEvent):
    consumes = (SERVICE_POINT_UPSERTED,)

    code: str
    name: str


class DecidedBy(ConsumedEvent):
    kind: str | None = None
    id: str | None = None
    name: str | None = None
    contact: str | None = None
    unit: str | None = None


class Handler(ConsumedEvent):
    id: str | None = None
    name: str | None = None
    office_phone: str | None = None
    unit: str | None = None


class TaskHandlerAssigned(ConsumedEvent):
    consumes = (TASK_HANDLER_ASSIGNED,)

    task_id: str
    application_id: str
    department: str
    step_name: str | None = None
    handler: Handler = Field(default_factory=Handler)
    assigned_at: datetime


class TaskAssigned(ConsumedEvent):
    consumes = (TASK_ASSIGNED,)

    task_id: str
    application_id: str
    department: str
    step_name: str | None = None
    due_at: datetime | None = None
    assigned_at: datetime


class MissingMaterial(ConsumedEvent):
    material_code: str | None = None
    field: str | None = None
    reason: str | None = None


class TaskDecided(ConsumedEvent):
    consumes = (TASK_DECIDED,)

    task_id: str
    application_id: str
    department: str
    step_key: str | None = None
    #: Read as text: an outcome this version does not know becomes a timeline step, not a dead letter.
    outcome: str
    reasons: str | None = None
    legal_basis: str | None = None
    missing: list[MissingMaterial] = Field(default_factory=list)
    decided_by: DecidedBy | None = None
    decided_at: datetime


class ApplicationDecided(ConsumedEvent):
    consumes = (APPLICATION_DECIDED,)

    application_id: str
    outcome: str
    reasons: str | None = None
    legal_basis: str | None = None
    decided_at: datetime
    department: str | None = None
    result: dict[str, Any] | None = None


class CertificateIssued(ConsumedEvent):
    consumes = (CERTIFICATE_ISSUED,)

    certificate_number: str
    type_code: str
    type_name: str | None = None
    holder_id: str | None = None
    issuer_department: str | None = None
    application_id: str | None = None
    issued_on: str | None = None
    valid_until: str | None = None


class PrincipalRef(ConsumedEvent):
    kind: str
    id: str


class DelegationChanged(ConsumedEvent):
    consumes = (DELEGATION_GRANTED, DELEGATION_REVOKED)

    delegation_id: str
    principal: PrincipalRef
    agent_id: str
    items: list[str] | None = None
    valid_until: datetime


class ProjectStageItemIn(ConsumedEvent):
    item_code: str
    department: str
    limit_days: int
    name: str | None = None


class ProjectStageIn(ConsumedEvent):
    key: str
    name: str
    order: int
    total_limit_days: int
    items: list[ProjectStageItemIn]


class ProjectTypePublished(ConsumedEvent):
    consumes = (PROJECT_TYPE_PUBLISHED,)

    key: str
    name: str
    stages: list[ProjectStageIn]
    published_at: datetime
