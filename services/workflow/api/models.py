"""Request and response bodies of the workflow API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.workflow.domain.process import CaseState, OnReject, Outcome, TaskState
from services.workflow.events.contracts import MissingItem
from shared.bounds import BoundedInstant


class DecisionCreate(BaseModel):
    """A department's decision on its task. `reject` needs `reasons` and `legal_basis`;
    `request_correction` (补正) needs `missing`, everything at once, and pauses the task's clock."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"outcome": "approve", "reasons": ["现场核查符合要求"]},
                {"outcome": "reject", "reasons": ["经营场所不符合消防安全要求"],
                 "legal_basis": "《中华人民共和国消防法》第十五条"},
                {"outcome": "request_correction",
                 "missing": [{"material_code": "floor_plan", "reason": "平面图未标注消防通道"}]},
            ]
        },
    )

    outcome: Outcome
    reasons: list[str] = Field(default_factory=list, max_length=20,
                               description="One or more reasons; a single string is accepted as one reason.")
    legal_basis: str | None = Field(default=None, max_length=1000)
    missing: list[MissingItem] = Field(default_factory=list, max_length=50)

    @field_validator("reasons", mode="before")
    @classmethod
    def _one_reason(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class AssigneeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee": "7c1e4b9a2f6d4e8a9b3c5d7e1f2a4b6c"}]})

    assignee: str = Field(min_length=1, max_length=120, description="Account id of a reviewer of the department.")
    name: str | None = Field(default=None, min_length=1, max_length=100,
                             description="The handler's name (defaults to the caller's when assigning oneself).")
    office_phone: str | None = Field(default=None, pattern=r"^[0-9+() -]{5,30}$",
                                     description="The handler's office phone (defaults to the caller's `phone` claim).")
    unit: str | None = Field(default=None, min_length=1, max_length=100, description="The handler's unit (科室).")


class DeciderKind(StrEnum):
    """Who decided: a token's kind (`staff`, a `department_system`; `person` and `service` tokens are listed for
    completeness) or `system`, the law deciding on timeout."""

    STAFF = "staff"
    DEPARTMENT_SYSTEM = "department_system"
    SYSTEM = "system"
    PERSON = "person"
    SERVICE = "service"


class StageKind(StrEnum):
    REVIEW = "review"
    PARALLEL = "parallel"
    JOINT_REVIEW = "joint_review"  # 联合审图 / 联合验收: the lead consolidates the participants' opinions
    DECISION = "decision"


class StageOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    MISSED = "missed"


class DecidedByRead(BaseModel):
    kind: DeciderKind = Field(description="`staff` (a reviewer), `department_system` or `system` (the law "
                                                "on timeout).")
    id: str
    name: str | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    application_id: str
    receipt_number: str
    item_code: str
    department: str
    step_key: str
    step_name: str
    stage_kind: StageKind
    lead: bool
    limit_days: int
    state: TaskState
    assignee: str | None
    assigned_at: datetime
    due_at: datetime = Field(description="End of the due working day (Asia/Shanghai), in UTC.")
    outcome: Outcome | None
    reasons: list[str]
    legal_basis: str | None
    missing: list[MissingItem]
    decided_by: DecidedByRead | None
    deemed: bool = Field(description="Approved by law on timeout (逾期视为同意), not by a person.")
    decided_at: datetime | None


class StageRead(BaseModel):
    step_key: str
    step_name: str
    kind: StageKind
    lead_department: str
    on_reject: OnReject
    deemed_approval_on_timeout: bool
    started_at: datetime
    completed_at: datetime | None
    outcome: StageOutcome | None
    tasks: list[TaskRead]


class CaseRead(BaseModel):
    """A case (办件) as it moves through its process."""

    application_id: str
    receipt_number: str
    item_code: str
    item_version: int
    item_name: str
    department: str
    state: CaseState
    outcome: StageOutcome | None
    reasons: list[str]
    legal_basis: str | None
    accepted_at: datetime
    decided_at: datetime | None
    stages: list[StageRead]


class WebhookPut(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://scjgj.luoding.gov.cn/yimen/hooks", "enabled": True}]},
    )

    url: str = Field(min_length=8, max_length=2000)
    enabled: bool = True
    rotate_secret: bool = Field(default=False, description="Issue a new signing secret.")


class WebhookRead(BaseModel):
    department: str
    url: str
    enabled: bool
    secret: str = Field(description="Standard Webhooks signing secret (`whsec_…`); verify `webhook-signature`.")
    updated_at: datetime


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: int
    event_id: str
    event_type: str
    task_id: str | None
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    attempt_log: list[AttemptRead]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"since": "2026-11-01T00:00:00+08:00"}]})

    since: BoundedInstant | None = Field(default=None, description="Only deliveries created at or after this instant.")


class ReplayResult(BaseModel):
    replayed: int


def task_read(task: Any) -> TaskRead:
    return TaskRead.model_validate(task)
