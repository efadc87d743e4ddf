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
    #: In a joint review (联合审图 / 联合验收): fails `point` the first time, passes it at the re-inspection.
    #: Ordinary tasks are approved.
    FAIL_POINT_ONCE = "fail_point_once"


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

    mode: Mode = Field(description="`approve`, `reject`, `correct_once` (correction first, then approve), `never`, "
                                   "or `fail_point_once` (in a joint review, fail `point` once, pass it at the "
                                   "re-inspection).")
    delay_seconds: float = Field(
        default=0, ge=0, le=86_400, description="How long the department 'works' before it answers."
    )
    channel: Channel = Field(
        default=Channel.REST,
        description="`rest`: POST the decision to workflow; `bus`: publish `yimen.department.<code>.decision`.",
    )
    point: str = Field(
        default="消防车通道", min_length=1, max_length=300,
        description="`fail_point_once`: the point (审查/验收要点) failed the first time in a joint review.",
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
    if rule.mode in (Mode.APPROVE, Mode.FAIL_POINT_ONCE):
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


# ---- joint reviews (联合审图 / 联合验收) -----------------------------------------------------------------------

JOINT_EVENTS = frozenset({"yimen.workflow.joint_review.opened", "yimen.workflow.joint_review.scheduled",
                          "yimen.workflow.joint_review.opinion_recorded"})
FAILED_POINT_REASON = "现场核查不符合要求，请整改 (does not meet the requirement on site; please correct)"


@dataclass(frozen=True)
class JointNotice:
    """The parts of a joint review event a department acts on."""

    event_type: str
    review_id: str
    application_id: str
    lead_department: str
    round: int
    participants: tuple[str, ...] = ()
    pending: tuple[str, ...] | None = None


@dataclass(frozen=True)
class JointAction:
    """What the department posts to the joint review: `schedule`, `opinions` or `consolidation`, and the body."""

    action: str
    body: dict[str, object]


@dataclass
class PointMemory:
    """Which (department, application) a `fail_point_once` department has failed its point for already."""

    failed: set[tuple[str, str]] = field(default_factory=set)


def joint_action(rule: Rule, department: str, notice: JointNotice, memory: PointMemory,
                 today: str) -> JointAction | None:
    """The department's part in a joint review: the lead schedules an opened round (on site, today, the round's
    eligible departments) and consolidates once no opinion is pending; a participant gives its opinion on a
    scheduled round. `never` does nothing; `reject` fails every time; `fail_point_once` fails its point once."""
    if rule.mode is Mode.NEVER:
        return None
    lead = department == notice.lead_department
    if notice.event_type.endswith(".opened") and lead:
        return JointAction("schedule", {"date": today, "mode": "on_site", "place": "项目现场（模拟部门排期）"})
    if notice.event_type.endswith(".opinion_recorded") and lead and notice.pending == ():
        return JointAction("consolidation", {"summary": "各参与部门意见已汇总（模拟部门）"})
    if notice.event_type.endswith(".scheduled") and department in notice.participants:
        key = (department, notice.application_id)
        if rule.mode is Mode.REJECT or (rule.mode is Mode.FAIL_POINT_ONCE and key not in memory.failed):
            memory.failed.add(key)
            return JointAction("opinions", {"verdict": "fail", "failed_points": [
                {"point": rule.point, "reason": FAILED_POINT_REASON}]})
        return JointAction("opinions", {"verdict": "pass", "comment": APPROVAL_REASON})
    return None
