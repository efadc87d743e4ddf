"""Payloads efficacy publishes (the source of truth) and the subsets it reads of others' events."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

CARD_YELLOW = "yimen.efficacy.card.yellow"
CARD_RED = "yimen.efficacy.card.red"
RATING_BAD = "yimen.efficacy.rating.bad"


CALENDAR_LOADED = "yimen.efficacy.calendar.loaded"


class CalendarLoaded(BaseModel):
    """`yimen.efficacy.calendar.loaded` (subject: the year): a year's official working-day table, so other
    services' due dates count with it too."""

    year: int
    holidays: list[date]
    workdays: list[date] = Field(description="Adjusted working weekends (调休).")
    source: str
    loaded_at: datetime


class CardRaised(BaseModel):
    """`yimen.efficacy.card.yellow` / `.red` (subject: application id)."""

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

    rating_id: str
    application_id: str
    department: str | None
    level: str
    tags: list[str]
    comment: str | None


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Applicant(_In):
    kind: str = "person"
    id: str
    holder_id: str | None = None
    name: str | None = None
    agent_id: str | None = None


class ApplicationAccepted(_In):
    application_id: str
    item_code: str
    department: str | None = None
    applicant: Applicant
    channel: str | None = None
    service_point: str | None = None
    accepted_at: datetime


class AboutApplication(_In):
    """Every intake and workflow event the clocks read names its application."""

    application_id: str


class ItemPublished(_In):
    code: str
    version: int
    name: str | None = None
    department: str | None = None
    fully_online: bool = False
    process: dict | None = None


class ItemWithdrawn(_In):
    code: str
    version: int


class CertificateIssued(_In):
    certificate_number: str
    type_code: str
    type_name: str | None = None
    holder_id: str
    valid_until: date | None = None


class CertificateRevoked(_In):
    certificate_number: str


class AccessReader(_In):
    subject: str
    kind: str
    department: str | None = None


class AccessAnomaly(_In):
    """datashare's `yimen.datashare.access.anomaly`: unusual reading of personal data (安全监控), evidence only."""

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


class ProjectRegistered(_In):
    project_id: str
    project_code: str
    owner_id: str
    name: str
    registered_at: datetime


class StageApplication(_In):
    """One department's item of a stage application (一表申请), with its own limit within the stage."""

    application_id: str
    item_code: str
    department: str
    limit_days: int = Field(ge=0)


class ProjectStageAccepted(_In):
    """The centre accepted a stage once (统一受理) and dispatched it to every department's item (统一分派)."""

    project_id: str
    stage_key: str
    stage_name: str
    total_limit_days: int = Field(ge=0)
    accepted_at: datetime
    applications: list[StageApplication] = Field(default_factory=list)


class ProjectStageCompleted(_In):
    project_id: str
    stage_key: str
    completed_at: datetime


class ProjectCompleted(_In):
    project_id: str
    completed_at: datetime
