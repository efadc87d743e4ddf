"""The project clock (项目审批计时): thin route, the use case counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.efficacy.service import projects as service
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.types import utcnow

router = APIRouter(prefix="/projects", tags=["projects"])


class DepartmentKpiRead(BaseModel):
    application_id: str
    item_code: str
    department: str
    limit_days: int = Field(description="The department's own limit within the stage (working days).")
    used_days: int = Field(description="Working days the department has held it, the owner's time not counted.")
    outside_days: int = Field(description="Working days this item waited on the owner or an intermediary.")
    state: Literal["running", "decided"]
    over_limit: bool


class StageKpiRead(BaseModel):
    stage_key: str
    stage_name: str
    limit_days: int
    used_days: int
    outside_days: int
    state: Literal["running", "completed"]
    over_limit: bool
    accepted_at: datetime
    completed_at: datetime | None
    departments: list[DepartmentKpiRead]


class OutsideRead(BaseModel):
    """Time outside the government's hands, recorded apart and not counted (working days)."""

    total: int = Field(description="Working days in which the project waited on the owner or an intermediary.")
    owner_correction: int = Field(description="The owner's corrections (补正/整改).")
    intermediary: int = Field(description="Intermediaries' work and special procedures (中介服务、技术审查等).")


class ProjectClockRead(BaseModel):
    project_id: str
    project_code: str | None
    name: str | None
    state: Literal["not_started", "running", "completed"]
    started_at: datetime | None = Field(description="The project's first acceptance.")
    completed_at: datetime | None
    elapsed_days: int = Field(description="Working days from the first acceptance to completion (or now).")
    government_days: int = Field(description="Of those, the days the government held the project: what counts.")
    outside: OutsideRead
    total_limit_days: int = Field(description="The sum of the accepted stages' total limits.")
    remaining_days: int
    card: Literal["yellow", "red"] | None = Field(description="Yellow near the total limit, red over it.")
    card_reason: str | None
    stages: list[StageKpiRead]
    assumed_years: list[int] = Field(description="Years counted on an estimated working-day table.")
    as_of: datetime


ProjectId = Annotated[str, Path(min_length=1, max_length=64, description="The project's id (intake's).")]


@router.get("/{project_id}/clock", response_model=ProjectClockRead,
            summary="A project's clock: working days from first acceptance to completion, the owner's time apart",
            description="As the construction-approval reform counts it: the government's working days from the "
                        "project's first acceptance to its completion, with the owner's corrections and "
                        "intermediaries' work recorded separately and not counted; a yellow card near the total "
                        "limit, red over it; per stage and per department, working days used against each limit. "
                        "For the owning organisation and staff; anyone else gets 404.",
            responses=problem_responses(401, 404))
async def get_project_clock(project_id: ProjectId, session: SessionDep,
                            principal: CurrentPrincipal) -> ProjectClockRead:
    as_of = utcnow()
    row, c = await service.project_clock(session, project_id, principal, as_of)
    return ProjectClockRead(
        project_id=project_id, project_code=row.project_code, name=row.name, state=c.state,  # type: ignore[attr-defined,arg-type]
        started_at=c.started_at, completed_at=c.completed_at, elapsed_days=c.elapsed_days,
        government_days=c.government_days,
        outside=OutsideRead(total=c.outside_days, owner_correction=c.outside_by_reason["owner_correction"],
                            intermediary=c.outside_by_reason["intermediary"]),
        total_limit_days=c.total_limit_days, remaining_days=c.remaining_days, card=c.card,  # type: ignore[arg-type]
        card_reason=c.card_reason,
        stages=[StageKpiRead(
            stage_key=s.stage_key, stage_name=s.stage_name, limit_days=s.limit_days, used_days=s.used_days,
            outside_days=s.outside_days, state=s.state, over_limit=s.over_limit, accepted_at=s.accepted_at,  # type: ignore[arg-type]
            completed_at=s.completed_at,
            departments=[DepartmentKpiRead(**d.__dict__) for d in s.departments]) for s in c.stages],
        assumed_years=sorted(c.assumed_years), as_of=as_of)
