"""What notify reads of others' events: tolerant subsets (`extra="ignore"`), every field it can live without
optional, so a publisher adding a field never breaks it. Notify publishes nothing."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SUBMITTED = "yimen.intake.application.submitted"
ACCEPTED = "yimen.intake.application.accepted"
RETURNED = "yimen.intake.application.returned"
NOT_ACCEPTED = "yimen.intake.application.not_accepted"
WITHDRAWN = "yimen.intake.application.withdrawn"
CORRECTED = "yimen.intake.application.corrected"
DELIVERED = "yimen.intake.application.delivered"
PAYMENT_REQUESTED = "yimen.intake.payment.requested"
READY_FOR_COLLECTION = "yimen.intake.application.ready_for_collection"
TASK_ASSIGNED = "yimen.workflow.task.assigned"
TASK_DECIDED = "yimen.workflow.task.decided"
TASK_REOPENED = "yimen.workflow.task.reopened"
APPLICATION_DECIDED = "yimen.workflow.application.decided"
CERTIFICATE_ISSUED = "yimen.datashare.certificate.issued"
CERTIFICATE_REVOKED = "yimen.datashare.certificate.revoked"
ACCESS_ANOMALY = "yimen.datashare.access.anomaly"
CARD_YELLOW = "yimen.efficacy.card.yellow"
CARD_RED = "yimen.efficacy.card.red"
DEPARTMENT_UPSERTED = "yimen.catalog.department.upserted"


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Applicant(_In):
    kind: str = "person"
    id: str
    holder_id: str | None = None
    agent_id: str | None = None


class Submitted(_In):
    application_id: str
    receipt_number: str | None = None
    item_code: str | None = None
    department: str | None = None
    applicant: Applicant


class Limit(_In):
    value: int
    unit: str = "working_days"


class Accepted(_In):
    application_id: str
    receipt_number: str
    item_code: str | None = None
    item_name: str | None = None
    department: str | None = None
    applicant: Applicant
    accepted_at: datetime
    #: Read for one field only: the contact number the applicant wrote (联系电话).
    form: dict[str, Any] = Field(default_factory=dict)
    promised_limit: Limit | None = None


class MissingField(_In):
    field: str | None = None
    message: str | None = None


class Returned(_In):
    application_id: str
    receipt_number: str | None = None
    reasons: str | None = None
    missing: list[MissingField] = Field(default_factory=list)
    returned_at: datetime | None = None


class NotAccepted(_In):
    application_id: str
    reasons: str | None = None
    legal_basis: str | None = None


class MissingMaterial(_In):
    material_code: str | None = None
    field: str | None = None
    reason: str | None = None


class TaskDecided(_In):
    task_id: str
    application_id: str
    receipt_number: str | None = None
    department: str
    outcome: str
    reasons: str | None = None
    missing: list[MissingMaterial] = Field(default_factory=list)
    decided_at: datetime | None = None


class TaskAssigned(_In):
    task_id: str
    application_id: str
    department: str
    step_name: str | None = None
    due_at: datetime | None = None


class ApplicationDecided(_In):
    application_id: str
    receipt_number: str | None = None
    outcome: str
    reasons: str | None = None
    applicant: dict[str, Any] = Field(default_factory=dict)
    department: str | None = None


class Delivered(_In):
    application_id: str
    receipt_number: str | None = None
    method: str | None = None
    certificate_number: str | None = None


class PaymentRequested(_In):
    """`yimen.intake.payment.requested` (h15-delivery)."""

    application_id: str
    receipt_number: str | None = None
    applicant: Applicant | None = None
    item_name: str | None = None
    #: Yuan; a decimal string by contract, a number tolerated.
    amount: Decimal
    payment_code: str
    due_on: date | None = None


class ReadyForCollection(_In):
    """`yimen.intake.application.ready_for_collection` (h15-delivery)."""

    application_id: str
    receipt_number: str | None = None
    applicant: Applicant | None = None
    item_name: str | None = None
    service_point: str | None = None
    service_point_name: str | None = None


class CertificateIssued(_In):
    certificate_number: str
    type_code: str
    type_name: str | None = None
    holder_id: str | None = None
    holder_kind: str | None = None
    application_id: str | None = None
    valid_until: date | None = None


class CertificateRevoked(_In):
    certificate_number: str


class AccessAnomaly(_In):
    """`yimen.datashare.access.anomaly`: only what names the anomaly's kind and time is read (never a holder)."""

    kind: str | None = None
    reason: str | None = None
    detected_at: datetime | None = None
    department: str | None = None


class CardRaised(_In):
    card_id: str
    application_id: str
    task_id: str | None = None
    department: str | None = None
    colour: str
    reason: str | None = None
    raised_at: datetime


class DepartmentUpserted(_In):
    code: str
    name: str
