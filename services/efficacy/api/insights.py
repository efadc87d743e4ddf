"""Where people get stuck, per item (卡点分析): materials sent back for correction and the steps that use most
of their time limit. Aggregates only: no applicant, no receipt number."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.efficacy import service
from services.efficacy.service.reports import MAX_INSIGHT_ROWS
from shared.auth import CurrentPrincipal
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(prefix="/insights", tags=["insights"])

MAX_ROWS = MAX_INSIGHT_ROWS


class MaterialCount(BaseModel):
    material: str = Field(description="Material code (or form field) named in the return or correction request.")
    times: int


class StepRead(BaseModel):
    step_key: str
    department: str | None
    tasks: int = Field(description="Settled tasks of this step in the period.")
    average_share: float = Field(description="Working days used / the step's limit, averaged (1 = the whole limit).")
    max_share: float
    over_limit: int = Field(description="Tasks that took longer than the step's limit.")


class ItemInsight(BaseModel):
    item_code: str | None
    corrections: list[MaterialCount] = Field(description="Materials most often sent back (补正), most first.")
    steps: list[StepRead] = Field(description="Steps using most of their time limit first.")


class StuckReport(BaseModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    department: str | None
    truncated: bool = Field(description=f"True when more than {MAX_ROWS} rows matched: the newest were counted.")
    items: list[ItemInsight]


@router.get(
    "/stuck",
    summary="Where people get stuck, per item: materials sent back for correction, steps using most of their limit",
    description="For supervisors (the city) and a department's staff (their department). Counts returns before "
                "acceptance (`intake.application.returned`) and departments' correction requests "
                "(`workflow.task.decided` with `request_correction`) in [from, to], and tasks settled in the "
                "period by the share of their step's limit they used. Searches that found nothing are at "
                "`GET /catalog/v1/search/misses`; drafts abandoned, and at which material, at "
                "`GET /intake/v1/insights/abandoned-drafts`.",
    response_model=StuckReport,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def stuck(
    session: SessionDep,
    principal: CurrentPrincipal,
    start: Annotated[BoundedDate, Query(alias="from")],
    end: Annotated[BoundedDate, Query(alias="to")],
    department: Annotated[str | None, Query(max_length=40)] = None,
    item: Annotated[str | None, Query(max_length=80)] = None,
) -> StuckReport:
    result = await service.reports.stuck(session, principal, start=start, end=end, department=department, item=item)
    return StuckReport(
        start=start, end=end, department=result.department, truncated=result.truncated,
        items=[ItemInsight(
            item_code=i.item_code,
            corrections=[MaterialCount(material=m, times=n) for m, n in i.corrections],
            steps=[StepRead(step_key=s.step_key, department=s.department, tasks=s.tasks, average_share=s.average_share,
                            max_share=s.max_share, over_limit=s.over_limit) for s in i.steps],
        ) for i in result.items])
