"""Payloads efficacy publishes (the source of truth) and the subsets it reads of others' events."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.efficacy.domain.clocks import EVENT_TYPES as CLOCK_EVENTS
from services.efficacy.domain.kpis import EVENT_TYPES as KPI_EVENTS
from shared.events import ConsumedEvent

CARD_YELLOW = "yimen.efficacy.card.yellow"
CARD_RED = "yimen.efficacy.card.red"
RATING_BAD = "yimen.efficacy.rating.bad"


CALENDAR_LOADED = "yimen.efficacy.calendar.loaded"


class CalendarLoaded(BaseModel):
    """`yimen.efficacy.calendar.loaded` (subject: the year): a year's official working-day table, so other
    services' due dates count with it too."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "year": 2027,
            "holidays": ["2027-01-01", "2027-02-06"],
            "workdays": ["2027-02-14"],
            "source": "efficacy",
            "loaded_at": "2026-12-20T10:00:00+08:00",
        },
    ]})

    year: int
    holidays: list[date]
    workdays: list[date] = Field(description="Adjusted working weekends (调休).")
    source: str
    loaded_at: datetime


class CardRaised(BaseModel):
    """`yimen.efficacy.card.yellow` / `.red` (subject: application id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "card_id": "f00dfeedf00dfeedf00dfeedf00dfeed",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "department": "LD-SCJGJ",
            "colour": "yellow",
            "reason": "task_due_soon",
            "deadline_at": "2026-12-01T17:30:00+08:00",
            "raised_at": "2026-11-30T09:00:00+08:00",
        },
        {
            "card_id": "deadbeefdeadbeefdeadbeefdeadbeef",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "department": "LD-SCJGJ",
            "colour": "red",
            "reason": "task_overdue",
            "deadline_at": "2026-12-01T17:30:00+08:00",
            "raised_at": "2026-12-01T17:30:05+08:00",
        },
    ]})

    card_id: str
    application_id: str
    task_id: str | None
    department: str | None
    colour: str
    reason: str
    deadline_at: datetime
    raised_at: datetime


class RatingBad(BaseModel):
    """`yimen.efficacy.rating.bad` (subject: application id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "rating_id": "beadbeadbeadbeadbeadbeadbeadbead",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "department": "LD-SCJGJ",
            "level": "dissatisfied",
            "tags": ["办理时间长"],
            "comment": "等了很久才收到结果",
        },
    ]})

    rating_id: str
    application_id: str
    department: str | None
    level: str
    tags: list[str]
    comment: str | None


class Applicant(ConsumedEvent):
    kind: str = "person"
    id: str
    holder_id: str | None = None
    name: str | None = None
    agent_id: str | None = None


class ApplicationAccepted(ConsumedEvent):
    consumes = ("yimen.intake.application.accepted",)

    application_id: str
    item_code: str
    department: str | None = None
    applicant: Applicant
    channel: str | None = None
    service_point: str | None = None
    accepted_at: datetime


class AboutApplication(ConsumedEvent):
    """Every intake and workflow event the clocks read names its application."""

    consumes = tuple(sorted({*CLOCK_EVENTS, *KPI_EVENTS}))

    application_id: str


class ItemPublished(ConsumedEvent):
    consumes = ("yimen.catalog.item.published",)

    code: str
    version: int
    name: str | None = None
    department: str | None = None
    fully_online: bool = False
    process: dict | None = None


class ItemWithdrawn(ConsumedEvent):
    consumes = ("yimen.catalog.item.withdrawn",)

    code: str
    version: int


class CertificateIssued(ConsumedEvent):
    consumes = ("yimen.datashare.certificate.issued",)

    certificate_number: str
    type_code: str
    type_name: str | None = None
    holder_id: str
    valid_until: date | None = None


class CertificateRevoked(ConsumedEvent):
    consumes = ("yimen.datashare.certificate.revoked",)

    certificate_number: str


class AccessReader(ConsumedEvent):
    subject: str
    kind: str
    department: str | None = None


class AccessAnomaly(ConsumedEvent):
    """datashare's `yimen.datashare.access.anomaly`: unusual reading of personal data (安全监控), evidence only."""

    consumes = ("yimen.datashare.access.anomaly",)

    anomaly_id: str
    kind: str
    reader: AccessReader
    count: int
    threshold: int
    window_start: datetime
    window_end: datetime
    entry_seqs: list[int] = []
    data_office: str
    detected_at: datetime


# ---- projects (企业投资项目), consumed from intake (issue 17) --------------------------------------------------

PROJECT_REGISTERED = "yimen.intake.project.registered"
PROJECT_STAGE_ACCEPTED = "yimen.intake.project.stage_accepted"
PROJECT_STAGE_COMPLETED = "yimen.intake.project.stage_completed"
PROJECT_COMPLETED = "yimen.intake.project.completed"
PROJECT_EVENTS = frozenset({PROJECT_REGISTERED, PROJECT_STAGE_ACCEPTED, PROJECT_STAGE_COMPLETED, PROJECT_COMPLETED})


class ProjectRegistered(ConsumedEvent):
    consumes = (PROJECT_REGISTERED,)

    project_id: str
    project_code: str
    owner_id: str
    name: str
    registered_at: datetime


class StageApplication(ConsumedEvent):
    """One department's item of a stage application (一表申请), with its own limit within the stage."""

    application_id: str
    item_code: str
    department: str
    limit_days: int = Field(ge=0)


class ProjectStageAccepted(ConsumedEvent):
    """The centre accepted a stage once (统一受理) and dispatched it to every department's item (统一分派)."""

    consumes = (PROJECT_STAGE_ACCEPTED,)

    project_id: str
    stage_key: str
    stage_name: str
    total_limit_days: int = Field(ge=0)
    accepted_at: datetime
    applications: list[StageApplication] = Field(default_factory=list)


class ProjectStageCompleted(ConsumedEvent):
    consumes = (PROJECT_STAGE_COMPLETED,)

    project_id: str
    stage_key: str
    completed_at: datetime


class ProjectCompleted(ConsumedEvent):
    consumes = (PROJECT_COMPLETED,)

    project_id: str
    completed_at: datetime
