"""What notify reads of others' events: tolerant subsets (`extra="ignore"`), every field it can live without
optional, so a publisher adding a field never breaks it. Notify publishes nothing."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from shared.events import ConsumedEvent

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


class Applicant(ConsumedEvent):
    kind: str = "person"
    id: str
    holder_id: str | None = None
    agent_id: str | None = None


class Submitted(ConsumedEvent):
    consumes = (SUBMITTED,)

    application_id: str
    receipt_number: str | None = None
    item_code: str | None = None
    department: str | None = None
    applicant: Applicant


class Limit(ConsumedEvent):
    value: int
    unit: str = "working_days"


class Accepted(ConsumedEvent):
    consumes = (ACCEPTED,)

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


class MissingField(ConsumedEvent):
    field: str | None = None
    message: str | None = None


class Returned(ConsumedEvent):
    consumes = (RETURNED,)

    application_id: str
    receipt_number: str | None = None
    reasons: str | None = None
    missing: list[MissingField] = Field(default_factory=list)
    returned_at: datetime | None = None


class NotAccepted(ConsumedEvent):
    consumes = (NOT_ACCEPTED,)

    application_id: str
    reasons: str | None = None
    legal_basis: str | None = None


class MissingMaterial(ConsumedEvent):
    material_code: str | None = None
    field: str | None = None
    reason: str | None = None


class TaskDecided(ConsumedEvent):
    consumes = (TASK_DECIDED,)

    task_id: str
    application_id: str
    receipt_number: str | None = None
    department: str
    outcome: str
    reasons: str | None = None
    missing: list[MissingMaterial] = Field(default_factory=list)
    decided_at: datetime | None = None


class TaskAssigned(ConsumedEvent):
    consumes = (TASK_ASSIGNED,)

    task_id: str
    application_id: str
    department: str
    step_name: str | None = None
    due_at: datetime | None = None


class ApplicationDecided(ConsumedEvent):
    consumes = (APPLICATION_DECIDED,)

    application_id: str
    receipt_number: str | None = None
    outcome: str
    reasons: str | None = None
    applicant: dict[str, Any] = Field(default_factory=dict)
    department: str | None = None


class Delivered(ConsumedEvent):
    consumes = (DELIVERED,)

    application_id: str
    receipt_number: str | None = None
    method: str | None = None
    certificate_number: str | None = None


class PaymentRequested(ConsumedEvent):
    """`yimen.intake.payment.requested` (h15-delivery)."""

    consumes = (PAYMENT_REQUESTED,)

    application_id: str
    receipt_number: str | None = None
    applicant: Applicant | None = None
    item_name: str | None = None
    #: Yuan; a decimal string by contract, a number tolerated.
    amount: Decimal
    payment_code: str
    due_on: date | None = None


class ReadyForCollection(ConsumedEvent):
    """`yimen.intake.application.ready_for_collection` (h15-delivery)."""

    consumes = (READY_FOR_COLLECTION,)

    application_id: str
    receipt_number: str | None = None
    applicant: Applicant | None = None
    item_name: str | None = None
    service_point: str | None = None
    service_point_name: str | None = None


class CertificateIssued(ConsumedEvent):
    consumes = (CERTIFICATE_ISSUED,)

    certificate_number: str
    type_code: str
    type_name: str | None = None
    holder_id: str | None = None
    holder_kind: str | None = None
    application_id: str | None = None
    valid_until: date | None = None


class CertificateRevoked(ConsumedEvent):
    consumes = (CERTIFICATE_REVOKED,)

    certificate_number: str


class AccessAnomaly(ConsumedEvent):
    """`yimen.datashare.access.anomaly`: only what names the anomaly's kind and time is read (never a holder)."""

    consumes = (ACCESS_ANOMALY,)

    kind: str | None = None
    reason: str | None = None
    detected_at: datetime | None = None
    department: str | None = None


class CardRaised(ConsumedEvent):
    consumes = (CARD_YELLOW, CARD_RED)

    card_id: str
    application_id: str
    task_id: str | None = None
    department: str | None = None
    colour: str
    reason: str | None = None
    raised_at: datetime


class DepartmentUpserted(ConsumedEvent):
    consumes = (DEPARTMENT_UPSERTED,)

    code: str
    name: str
