"""How a simulated department (模拟部门) answers a task: its rule, and the memory `correct_once` needs.

`correct_once` asks for a correction (补正) the first time it sees an application and approves every later
time the same task or the same application comes back (a reopened task after the applicant corrected, or a
redelivery of it). The memory is per department and per process run: a restarted simulator starts fresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Mode(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CORRECT_ONCE = "correct_once"
    #: Never answers: leaves the task open so the clock runs into yellow and red cards (红黄牌).
    NEVER = "never"


class Channel(StrEnum):
    REST = "rest"
    BUS = "bus"


class Outcome(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CORRECTION = "request_correction"


class Rule(BaseModel):
    """What a department does with every task it receives."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"mode": "correct_once", "delay_seconds": 2, "channel": "bus"}]},
    )

    mode: Mode = Field(description="`approve`, `reject`, `correct_once` (correction first, then approve) or `never`.")
    delay_seconds: float = Field(
        default=0, ge=0, le=86_400, description="How long the department 'works' before it answers."
    )
    channel: Channel = Field(
        default=Channel.REST,
        description="`rest`: POST the decision to workflow; `bus`: publish `yimen.department.<code>.decision`.",
    )


class MissingItem(BaseModel):
    material_code: str
    field: str | None = None
    reason: str


class DecisionDraft(BaseModel):
    """The body a department sends, by REST or on the bus (without `decided_by`)."""

    outcome: Outcome
    reasons: list[str] = Field(default_factory=list)
    legal_basis: str | None = None
    missing: list[MissingItem] = Field(default_factory=list)


@dataclass(frozen=True)
class TaskNotice:
    """The parts of a `workflow.task.assigned` (or `.reopened`) event a department acts on."""

    event_type: str
    task_id: str
    application_id: str
    department: str
    step_key: str | None = None
    item_code: str | None = None


@dataclass
class CorrectionMemory:
    """Which tasks and applications a `correct_once` department has already sent back for correction."""

    tasks: set[str] = field(default_factory=set)
    applications: set[tuple[str, str]] = field(default_factory=set)

    def already_corrected(self, notice: TaskNotice) -> bool:
        return notice.task_id in self.tasks or (notice.department, notice.application_id) in self.applications

    def remember(self, notice: TaskNotice) -> None:
        self.tasks.add(notice.task_id)
        self.applications.add((notice.department, notice.application_id))


APPROVAL_REASON = "材料齐全，符合法定条件 (complete and meets the statutory conditions)"
REJECTION_REASON = "经审查不符合法定条件 (does not meet the statutory conditions)"
REJECTION_BASIS = "《中华人民共和国行政许可法》第三十八条第二款"
CORRECTION_REASON = "申请材料不齐全，请一次性补正 (materials incomplete; correct all at once)"
CORRECTION_BASIS = "《中华人民共和国行政许可法》第三十二条第一款第（四）项"


def evaluate(rule: Rule, notice: TaskNotice, memory: CorrectionMemory) -> DecisionDraft | None:
    """The department's answer to one task, or None when it never answers. Updates `memory`."""
    if rule.mode is Mode.NEVER:
        return None
    if rule.mode is Mode.APPROVE:
        return approval()
    if rule.mode is Mode.REJECT:
        return DecisionDraft(outcome=Outcome.REJECT, reasons=[REJECTION_REASON], legal_basis=REJECTION_BASIS)
    if memory.already_corrected(notice):
        return approval()
    memory.remember(notice)
    return DecisionDraft(
        outcome=Outcome.REQUEST_CORRECTION,
        reasons=[CORRECTION_REASON],
        legal_basis=CORRECTION_BASIS,
        missing=[
            MissingItem(
                material_code="premises_floor_plan",
                field="file",
                reason="经营场所平面图未标明功能分区 (the floor plan does not show the functional areas)",
            )
        ],
    )


def approval() -> DecisionDraft:
    return DecisionDraft(outcome=Outcome.APPROVE, reasons=[APPROVAL_REASON])
