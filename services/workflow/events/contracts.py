"""Event payloads the workflow service publishes (source of truth) and the subsets it reads of others'
(docs/CONTRACTS.md)."""

from __future__ import annotations

from datetime import date as date_
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import ConsumedEvent

TASK_ASSIGNED = "yimen.workflow.task.assigned"
TASK_DECIDED = "yimen.workflow.task.decided"
TASK_REOPENED = "yimen.workflow.task.reopened"
STAGE_COMPLETED = "yimen.workflow.stage.completed"
APPLICATION_DECIDED = "yimen.workflow.application.decided"
#: Ours, beyond CONTRACTS.md: a decision event from a department system that was refused (the bus has no
#: status code to answer with).
DECISION_REFUSED = "yimen.workflow.decision.refused"

ITEM_PUBLISHED = "yimen.catalog.item.published"
APPLICATION_ACCEPTED = "yimen.intake.application.accepted"
APPLICATION_CORRECTED = "yimen.intake.application.corrected"
APPLICATION_WITHDRAWN = "yimen.intake.application.withdrawn"
#: Ours, beyond CONTRACTS.md: the applicant withdrew, the department's task is no longer to be decided.
TASK_CANCELLED = "yimen.workflow.task.cancelled"
#: Ours: a task of a department was given to one of its staff (谁在办): the applicant sees who and how to call.
TASK_HANDLER_ASSIGNED = "yimen.workflow.task.handler_assigned"
DEPARTMENT_DECISION = "yimen.department.*.decision"
#: Efficacy loaded a year's working-day table: open tasks' due dates are counted again with it.
CALENDAR_LOADED = "yimen.efficacy.calendar.loaded"


def joined_reasons(reasons: list[str]) -> str | None:
    """Reasons travel in events as one text (as intake's `returned` and `not_accepted` carry them): the
    applicant reads them as one notice."""
    text = "；".join(r.strip() for r in reasons if r.strip())
    return text or None


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


# ---- consumed ------------------------------------------------------------------------------------------


class ItemResult(ConsumedEvent):
    type: str = "none"
    certificate_type: str | None = None
    name: str | None = None


class ItemProcess(ConsumedEvent):
    steps: list[dict[str, Any]] = Field(default_factory=list)


class ItemPublished(ConsumedEvent):
    consumes = (ITEM_PUBLISHED,)

    code: str
    version: int
    name: str
    department: str
    process: ItemProcess = Field(default_factory=ItemProcess)
    result: ItemResult = Field(default_factory=ItemResult)
    published_at: datetime | None = None


class ApplicationAccepted(ConsumedEvent):
    consumes = (APPLICATION_ACCEPTED,)

    application_id: str
    receipt_number: str
    item_code: str
    item_version: int
    item_name: str | None = None
    department: str | None = None
    applicant: dict[str, Any] = Field(default_factory=dict)
    accepted_at: datetime
    #: `immediate` (即办件): intake decided it at acceptance; workflow records that decision, it runs no task.
    case_kind: str | None = None


class ApplicationCorrected(ConsumedEvent):
    consumes = (APPLICATION_CORRECTED,)

    application_id: str
    receipt_number: str | None = None
    task_id: str
    corrected_at: datetime | None = None


class ApplicationWithdrawn(ConsumedEvent):
    consumes = (APPLICATION_WITHDRAWN,)

    application_id: str
    receipt_number: str | None = None
    withdrawn_at: datetime | None = None


class CalendarLoaded(ConsumedEvent):
    consumes = (CALENDAR_LOADED,)

    year: int
    holidays: list[str] = Field(default_factory=list)
    workdays: list[str] = Field(default_factory=list)
    source: str = "efficacy"
    loaded_at: datetime


class MissingItem(ConsumedEvent):
    """One thing the applicant must supply (补正材料)."""

    material_code: str | None = None
    field: str | None = None
    reason: str = Field(min_length=1, max_length=500)


class DeciderName(ConsumedEvent):
    name: str | None = None
    contact: str | None = None
    unit: str | None = None


class DepartmentDecision(ConsumedEvent):
    """`yimen.department.<code>.decision`, published by a department system."""

    consumes = (DEPARTMENT_DECISION,)

    task_id: str
    outcome: Literal["approve", "reject", "request_correction"]
    reasons: list[str] = Field(default_factory=list)
    legal_basis: str | None = None
    missing: list[MissingItem] = Field(default_factory=list)
    decided_by: DeciderName = Field(default_factory=DeciderName)

    _lists = field_validator("reasons", "missing", mode="before")(_as_list)


# ---- published -----------------------------------------------------------------------------------------


class DecidedBy(BaseModel):
    kind: str
    id: str
    name: str | None = None
    contact: str | None = Field(default=None, description="The decider's office phone (staff token claim `phone`).")
    unit: str | None = Field(default=None, description="The decider's unit within the department (claim `unit`).")


class Handler(BaseModel):
    """Who holds a task (经办人): shown to the applicant with the department (never on the public status)."""

    id: str
    name: str | None = None
    office_phone: str | None = None
    unit: str | None = None


class TaskHandlerAssigned(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "department": "LD-SCJGJ",
            "step_key": "review",
            "step_name": "审查",
            "handler": {
                "id": "c0ffee00c0ffee00c0ffee00c0ffee00",
                "name": "李四",
                "office_phone": "0766-3822315",
                "unit": "食品经营科",
            },
            "assigned_at": "2026-11-26T11:00:00+08:00",
        },
    ]})

    task_id: str
    application_id: str
    receipt_number: str
    department: str
    step_key: str
    step_name: str
    handler: Handler
    assigned_at: datetime


class TaskAssigned(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "item_code": "11441781MB0000001A4010000010000",
            "department": "LD-SCJGJ",
            "step_key": "review",
            "step_name": "审查",
            "stage_kind": "review",
            "lead": True,
            "limit_days": 3,
            "due_at": "2026-12-01T17:30:00+08:00",
            "assigned_at": "2026-11-26T10:05:01+08:00",
        },
    ]})

    task_id: str
    application_id: str
    receipt_number: str
    item_code: str
    department: str
    step_key: str
    step_name: str
    stage_kind: str
    lead: bool
    limit_days: int
    due_at: datetime
    assigned_at: datetime


class TaskDecided(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "department": "LD-SCJGJ",
            "step_key": "review",
            "outcome": "request_correction",
            "reasons": "平面图未标明功能分区",
            "legal_basis": None,
            "missing": [{"material_code": "floor_plan", "field": None, "reason": "请补充标明功能分区的经营场所平面图"}],
            "decided_by": {
                "kind": "staff",
                "id": "c0ffee00c0ffee00c0ffee00c0ffee00",
                "name": "李四",
                "contact": "0766-3822315",
                "unit": "食品经营科",
            },
            "deemed": False,
            "decided_at": "2026-11-27T14:00:00+08:00",
        },
    ]})

    task_id: str
    application_id: str
    receipt_number: str
    department: str
    step_key: str
    outcome: Literal["approve", "reject", "request_correction"]
    reasons: str | None
    legal_basis: str | None
    missing: list[MissingItem]
    decided_by: DecidedBy
    deemed: bool
    decided_at: datetime


class TaskReopened(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "department": "LD-SCJGJ",
            "reopened_at": "2026-11-27T15:00:01+08:00",
            "due_at": "2026-12-02T17:30:00+08:00",
        },
    ]})

    task_id: str
    application_id: str
    department: str
    reopened_at: datetime
    due_at: datetime


class TaskCancelled(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "department": "LD-SCJGJ",
            "reason": "withdrawn",
            "cancelled_at": "2026-11-27T09:00:01+08:00",
        },
    ]})

    task_id: str
    application_id: str
    department: str
    reason: str
    cancelled_at: datetime


class StageCompleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "step_key": "review",
            "outcome": "approved",
            "completed_at": "2026-11-27T16:00:00+08:00",
        },
    ]})

    application_id: str
    step_key: str
    outcome: Literal["approved", "rejected"]
    completed_at: datetime


class ApplicationDecided(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "receipt_number": "11441781MB0000001A4010000010000202611260001",
            "item_code": "11441781MB0000001A4010000010000",
            "item_version": 3,
            "outcome": "approved",
            "reasons": None,
            "legal_basis": None,
            "decided_at": "2026-11-28T10:00:00+08:00",
            "applicant": {
                "kind": "person",
                "id": "3c2b1a09f8e7d6c5b4a3928170615243",
                "holder_id": "44178119900307****",
                "name": "张三",
                "agent_id": None,
            },
            "department": "LD-SCJGJ",
            "result": {"type": "certificate", "certificate_type": "SPJYXK", "name": "食品经营许可证"},
        },
    ]})

    application_id: str
    receipt_number: str
    item_code: str
    item_version: int
    outcome: Literal["approved", "rejected"]
    reasons: str | None
    legal_basis: str | None
    decided_at: datetime
    applicant: dict[str, Any]
    department: str
    result: ItemResult


class DecisionRefused(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {
            "task_id": "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
            "application_id": "5f0c3e8a2b7d4c19a6e1f0b2c3d4e5f6",
            "department": "LD-SCJGJ",
            "status": 409,
            "reason": "The task is already decided.",
            "event_id": "0e1d2c3b4a5968778695a4b3c2d1e0f1",
            "refused_at": "2026-11-27T14:00:02+08:00",
        },
    ]})

    task_id: str
    application_id: str | None = Field(description="Null when the task is unknown.")
    department: str
    status: int
    reason: str
    event_id: str
    refused_at: datetime


# ---- joint reviews (联合审图 / 联合验收), issue 17 -----------------------------------------------------------

JOINT_REVIEW_OPENED = "yimen.workflow.joint_review.opened"
JOINT_REVIEW_SCHEDULED = "yimen.workflow.joint_review.scheduled"
JOINT_REVIEW_OPINION_RECORDED = "yimen.workflow.joint_review.opinion_recorded"
JOINT_REVIEW_CONSOLIDATED = "yimen.workflow.joint_review.consolidated"

_REVIEW = "9b1c2d3e4f5a46b7a8c9d0e1f2a3b4c5"
_TASK = "4f2a9c1e7b3d45e6a1b2c3d4e5f60718"
_APP = "a1b2c3d4e5f647389a0b1c2d3e4f5a6b"


class FailedPoint(BaseModel):
    """One point that failed (不合格要点): the department, the point, and why."""

    department: str
    point: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=1000)


class JointReviewOpened(BaseModel):
    """A joint review round is open and waits for the lead department to schedule it (the first round when the
    case reaches the step; a re-inspection of the failed points after the owner's correction)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "review_id": _REVIEW, "task_id": _TASK, "application_id": _APP, "receipt_number": "LD20261130000123",
        "item_code": "11441781MB0000009Q4060001020000", "review_kind": "acceptance", "lead_department": "LD-ZJJ",
        "departments": ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"], "round": 1, "eligible": ["LD-ZJJ", "LD-XFJ",
        "LD-STHJJ", "LD-WJJ"], "points": [], "opened_at": "2026-11-30T02:00:00Z"}]})

    review_id: str
    task_id: str
    application_id: str
    receipt_number: str
    item_code: str
    review_kind: Literal["drawing_review", "acceptance"]
    lead_department: str
    departments: list[str]
    round: int
    eligible: list[str] = Field(description="Who may take part in this round (a re-inspection: the departments "
                                            "whose points failed).")
    points: list[FailedPoint] = Field(description="A re-inspection's points; empty for the first round.")
    opened_at: datetime


class JointReviewScheduled(BaseModel):
    """The lead scheduled the round: each participant's system receives this by webhook and gives its opinion."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "review_id": _REVIEW, "application_id": _APP, "review_kind": "acceptance", "lead_department": "LD-ZJJ",
        "round": 2, "date": "2026-12-03", "mode": "on_site", "place": "罗定市素龙街道工业园 8 号（项目现场）",
        "participants": ["LD-XFJ"], "points": [{"department": "LD-XFJ", "point": "消防车通道",
                                                 "reason": "消防车通道净宽不足 4 米"}],
        "scheduled_at": "2026-11-30T03:00:00Z"}]})

    review_id: str
    application_id: str
    review_kind: Literal["drawing_review", "acceptance"]
    lead_department: str
    round: int
    date: date_
    mode: Literal["meeting", "on_site"]
    place: str
    participants: list[str]
    points: list[FailedPoint]
    scheduled_at: datetime


class JointReviewOpinionRecorded(BaseModel):
    """A participant gave its opinion; `pending` are those the lead still waits for before consolidating."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "review_id": _REVIEW, "application_id": _APP, "lead_department": "LD-ZJJ", "round": 1,
        "department": "LD-XFJ", "verdict": "fail", "conditions": [],
        "failed_points": [{"department": "LD-XFJ", "point": "消防车通道", "reason": "消防车通道净宽不足 4 米"}],
        "pending": ["LD-WJJ"], "recorded_at": "2026-11-30T04:00:00Z"}]})

    review_id: str
    application_id: str
    lead_department: str
    round: int
    department: str
    verdict: Literal["pass", "pass_with_conditions", "fail"]
    conditions: list[str]
    failed_points: list[FailedPoint]
    pending: list[str]
    recorded_at: datetime


class JointReviewConsolidated(BaseModel):
    """The lead consolidated the round into one result. `correction_required` goes to the owner as one notice (a
    `task.decided` with `request_correction` listing every failed point); `passed` moves the case on."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "review_id": _REVIEW, "task_id": _TASK, "application_id": _APP, "lead_department": "LD-ZJJ", "round": 1,
        "result": "correction_required", "failed_points": [{"department": "LD-XFJ", "point": "消防车通道",
                                                             "reason": "消防车通道净宽不足 4 米"}],
        "conditions": [], "summary": None, "consolidated_at": "2026-11-30T05:00:00Z"}]})

    review_id: str
    task_id: str
    application_id: str
    lead_department: str
    round: int
    result: Literal["passed", "passed_with_conditions", "correction_required", "rejected"]
    failed_points: list[FailedPoint]
    conditions: list[str]
    summary: str | None
    consolidated_at: datetime
