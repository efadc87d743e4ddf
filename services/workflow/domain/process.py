"""Process definitions, task due dates, decisions and how a stage's decisions combine (并联审批的汇总规则)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shared.workdays import WorkCalendar

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

#: Step kinds workflow runs; `acceptance` and `delivery` belong to intake.
WORKFLOW_STEP_KINDS = frozenset({"review", "parallel", "joint_review", "decision"})
#: A joint drawing review or joint acceptance (联合审图 / 联合验收): one task for the lead, settled by consolidation.
JOINT_REVIEW = "joint_review"


class Outcome(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CORRECTION = "request_correction"


class TaskState(StrEnum):
    OPEN = "open"
    AWAITING_CORRECTION = "awaiting_correction"
    DECIDED = "decided"
    CANCELLED = "cancelled"


class CaseState(StrEnum):
    RUNNING = "running"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class OnReject(StrEnum):
    REJECT_CASE = "reject_case"
    LEAD_ARBITRATES = "lead_arbitrates"


@dataclass(frozen=True)
class StepDefinition:
    """One step of an item's process that workflow runs: one task per department, all at once."""

    key: str
    name: str
    kind: str
    departments: tuple[str, ...]
    lead_department: str
    limit_days: int
    on_reject: OnReject
    deemed_approval_on_timeout: bool
    #: A department's own limit within the step's (明确部门办理时限); a department not named has `limit_days`.
    department_limits: tuple[tuple[str, int], ...] = ()
    review_kind: str | None = None

    def limit_for(self, department: str) -> int:
        return dict(self.department_limits).get(department, self.limit_days)

    @property
    def task_departments(self) -> tuple[str, ...]:
        """Who gets a task: every department, except in a joint review where the lead's one task carries it."""
        return (self.lead_department,) if self.kind == JOINT_REVIEW else self.departments


def runnable_steps(steps: Iterable[Mapping[str, Any]], *, item_department: str) -> list[StepDefinition]:
    """The steps workflow runs, in order. A step marked `skip` (flattened, 一级办理: the lower-level
    pre-review is dropped by configuration) is left out; a step without departments is the item's own
    department's."""
    out: list[StepDefinition] = []
    for i, raw in enumerate(steps):
        kind = str(raw.get("kind", ""))
        if kind not in WORKFLOW_STEP_KINDS or raw.get("skip"):
            continue
        departments = tuple(dict.fromkeys(str(d) for d in (raw.get("departments") or []) if d))
        if not departments:
            departments = (item_department,)
        lead = str(raw.get("lead_department") or departments[0])
        if lead not in departments:
            lead = departments[0]
        on_reject = raw.get("on_reject") or OnReject.REJECT_CASE
        out.append(
            StepDefinition(
                key=str(raw.get("key") or f"step-{i + 1}"),
                name=str(raw.get("name") or raw.get("key") or kind),
                kind=kind,
                departments=departments,
                lead_department=lead,
                limit_days=max(int(raw.get("limit_days") or 0), 0),
                on_reject=OnReject(on_reject) if on_reject in OnReject._value2member_map_ else OnReject.REJECT_CASE,
                deemed_approval_on_timeout=bool(raw.get("deemed_approval_on_timeout", False)),
                department_limits=_department_limits(raw.get("department_limits"), departments,
                                                     max(int(raw.get("limit_days") or 0), 0)),
                review_kind=str(raw["review_kind"]) if raw.get("review_kind") else None,
            )
        )
    return out


def _department_limits(raw: Any, departments: tuple[str, ...], limit: int) -> tuple[tuple[str, int], ...]:
    """The catalogue checked these at save time; an entry that is not a department of the step or exceeds the
    step's limit is still ignored, so a department never gets more than the step."""
    if not isinstance(raw, Mapping):
        return ()
    out: list[tuple[str, int]] = []
    for dept, days in raw.items():
        if dept in departments and isinstance(days, int) and 0 <= days <= limit:
            out.append((str(dept), days))
    return tuple(out)


def due_at(start: datetime, limit_days: int, calendar: WorkCalendar) -> datetime:
    """End of the working day `limit_days` working days after `start` (Asia/Shanghai), as a UTC instant.

    A limit of 0 means the same working day (or the next one if `start` falls on a day off)."""
    local_day = start.astimezone(LOCAL_TZ).date()
    day = calendar.add_workdays(local_day, limit_days).value
    end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=LOCAL_TZ)
    return end_of_day.astimezone(UTC)


def recounted_due_at(due: datetime, anchor: datetime, old: WorkCalendar, new: WorkCalendar) -> datetime:
    """A due date counted again after a year's table changed: the same number of working days after the day it
    was counted from (acceptance for the first step, assignment for later ones), in the new calendar. A task
    paused for a correction meanwhile is recounted from its anchor too, so the pause's days count as they fall."""
    anchor_day = anchor.astimezone(LOCAL_TZ).date()
    due_day = due.astimezone(LOCAL_TZ).date()
    days = max(old.workdays_between(anchor_day, due_day).value, 0)
    return due_at(anchor, days, new)


def resumed_due_at(
    due: datetime, paused_at: datetime, resumed_at: datetime, calendar: WorkCalendar
) -> datetime:
    """The clock stops while the applicant corrects (补正): the working days left when it paused are
    counted again from the day it resumes."""
    paused_day = paused_at.astimezone(LOCAL_TZ).date()
    due_day = due.astimezone(LOCAL_TZ).date()
    left = max(calendar.workdays_between(paused_day, due_day).value, 0)
    return due_at(resumed_at, left, calendar)


@dataclass(frozen=True)
class RuleBreak:
    field: str
    rule: str
    message: str


def check_decision(
    outcome: Outcome, reasons: Sequence[str], legal_basis: str | None, missing: Sequence[object]
) -> list[RuleBreak]:
    """A refusal must say why and under which law (行政许可法 第三十八条); a correction request must list
    everything missing at once (一次性告知)."""
    breaks: list[RuleBreak] = []
    if outcome is Outcome.REJECT:
        if not [r for r in reasons if r.strip()]:
            breaks.append(RuleBreak("reasons", "required_for_reject", "A rejection must state its reasons."))
        if not (legal_basis or "").strip():
            breaks.append(
                RuleBreak("legal_basis", "required_for_reject", "A rejection must cite its legal basis.")
            )
    if outcome is Outcome.REQUEST_CORRECTION and not missing:
        breaks.append(
            RuleBreak("missing", "required_for_correction", "A correction request must list what is missing.")
        )
    return breaks


@dataclass(frozen=True)
class TaskDecision:
    department: str
    outcome: Outcome


def stage_outcome(rule: OnReject, lead_department: str, decisions: Sequence[TaskDecision]) -> str:
    """`approved` or `rejected` once every department has decided.

    reject_case: any rejection rejects the case. lead_arbitrates: the lead department's decision wins."""
    if rule is OnReject.LEAD_ARBITRATES:
        for d in decisions:
            if d.department == lead_department:
                return "approved" if d.outcome is Outcome.APPROVE else "rejected"
    return "rejected" if any(d.outcome is Outcome.REJECT for d in decisions) else "approved"


def next_retry_delay(attempts: int, base: float, cap: float) -> timedelta:
    """Exponential backoff for webhook deliveries: base, 2·base, 4·base … capped."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))
