"""Deadline clocks per application and task, counted in working days."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.efficacy import service
from services.efficacy.domain.clocks import ClockView
from shared.auth import CurrentPrincipal
from shared.bounds import BoundedInstant
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(prefix="/clocks", tags=["clocks"])


class LimitUnit(StrEnum):
    working_days = "working_days"
    calendar_days = "calendar_days"
    hours = "hours"


class ClockKind(StrEnum):
    application = "application"
    acceptance = "acceptance"
    task = "task"


class ClockStateName(StrEnum):
    not_started = "not_started"
    running = "running"
    paused = "paused"
    stopped = "stopped"


class PauseReason(StrEnum):
    correction = "correction"
    special_procedure = "special_procedure"


class Limit(BaseModel):
    value: int
    unit: LimitUnit = Field(description="`working_days`, `calendar_days` or `hours`.")


class PauseRead(BaseModel):
    start: datetime
    end: datetime | None
    reason: PauseReason = Field(description="`correction` (补正) or `special_procedure`.")
    task_id: str | None = None


class ClockRead(BaseModel):
    clock_id: str
    kind: ClockKind = Field(description="`application`, `acceptance` (the wait for 受理) or `task`.")
    task_id: str | None
    department: str | None
    step_key: str | None = None
    state: ClockStateName = Field(description="`not_started`, `running`, `paused` or `stopped`.")
    stop_reason: str | None
    case_kind: str
    started_at: datetime | None
    stopped_at: datetime | None
    limit: Limit | None
    statutory_limit: Limit | None
    elapsed_workdays: int | None = Field(description="Working days used, pauses excluded.")
    paused_workdays: int
    remaining_workdays: int | None = Field(description="Working days left to the deadline; negative when overdue.")
    remaining_hours: float | None = Field(description="For immediate items (即办件), counted in hours.")
    deadline_on: date | None = Field(description="Promised deadline, moved by the paused working days.")
    deadline_at: datetime | None
    statutory_deadline_on: date | None
    due_at: datetime | None = Field(description="The task's due time as workflow announced it.")
    overdue: bool
    statutory_overdue: bool
    pauses: list[PauseRead]
    assumed_years: list[int]


class ApplicationClocks(BaseModel):
    application_id: str
    as_of: datetime
    application: ClockRead | None
    acceptance: ClockRead | None = Field(
        default=None, description="The acceptance step (受理时限): from submission to acceptance, its own cards.")
    tasks: list[ClockRead]
    assumed: bool = Field(description="True when a year without a holiday table was counted as Monday–Friday.")
    assumed_years: list[int]


def clock_read(v: ClockView) -> ClockRead:
    s = v.state
    return ClockRead(
        clock_id=s.clock_id, kind=ClockKind(s.kind), task_id=s.task_id, department=s.department, step_key=s.step_key,
        state=ClockStateName(s.state), stop_reason=s.stop_reason, case_kind=s.case_kind, started_at=s.started_at,
        stopped_at=s.stopped_at,
        limit=Limit(value=s.limit_value, unit=LimitUnit(s.limit_unit)) if s.limit_value is not None else None,
        statutory_limit=Limit(value=s.statutory_value, unit=LimitUnit(s.statutory_unit or "working_days"))
        if s.statutory_value is not None else None,
        elapsed_workdays=v.elapsed_workdays, paused_workdays=v.paused_workdays,
        remaining_workdays=v.remaining_workdays if s.state != "stopped" else None,
        remaining_hours=v.remaining_hours if s.state != "stopped" else None,
        deadline_on=v.deadline_on, deadline_at=v.deadline_at, statutory_deadline_on=v.statutory_deadline_on,
        due_at=s.due_at, overdue=v.overdue, statutory_overdue=v.statutory_overdue,
        pauses=[PauseRead(start=p.start, end=p.end, reason=PauseReason(p.reason), task_id=p.task_id) for p in s.pauses],
        assumed_years=sorted(v.assumed_years),
    )


@router.get(
    "/{application_id}",
    summary="An application's clock and its tasks' clocks",
    description="Elapsed and remaining working days, deadline (moved by pauses for corrections 补正 and special "
                "procedures), statutory deadline, pauses and state. For the applicant (the token's subject, "
                "organisation or delegating principal), supervisors, window clerks and the departments involved; "
                "anyone else gets 404, as for an unknown application. `as_of` lies in the years 2000–2100.",
    response_model=ApplicationClocks,
    responses=problem_responses(401, 404, 422),
)
async def get_clocks(
    session: SessionDep,
    principal: CurrentPrincipal,
    application_id: Annotated[str, Path(max_length=64)],
    as_of: Annotated[BoundedInstant | None, Query(description="Count as at this instant (default now).")] = None,
) -> ApplicationClocks:
    at = service.as_instant(as_of)
    views = await service.clocks.application_clocks(session, principal, application_id, at)
    app = next((clock_read(v) for v in views if v.state.kind == "application"), None)
    tasks = [clock_read(v) for v in views if v.state.kind == "task"]
    acceptance = next((clock_read(v) for v in views if v.state.kind == "acceptance"), None)
    years = sorted(set().union(*(v.assumed_years for v in views)))
    return ApplicationClocks(application_id=application_id, as_of=at, application=app, acceptance=acceptance,
                             tasks=tasks, assumed=bool(years), assumed_years=years)
