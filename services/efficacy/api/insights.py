"""Where people get stuck, per item (卡点分析): materials sent back for correction and the steps that use most
of their time limit. Aggregates only: no applicant, no receipt number."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.efficacy.api.access import department_of, is_overseer
from services.efficacy.api.clocks import as_instant
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.clocks import measure
from services.efficacy.domain.insights import RETURNED, TASK_DECIDED, correction_counts, step_use
from services.efficacy.store import cases
from services.efficacy.store.calendar import current_calendar
from shared.auth import CurrentPrincipal
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.errors import Forbidden, invalid
from shared.http_errors import problem_responses

router = APIRouter(prefix="/insights", tags=["insights"])

MAX_DAYS = 366
#: Rows read per report, newest first: a report over a busy year is a sample of its latest cases, and says so.
MAX_ROWS = 50_000


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
    if end < start:
        raise invalid("query.to", "order", "`to` must not be before `from`.")
    if (end - start).days > MAX_DAYS:
        raise invalid("query.to", "max_range", f"At most {MAX_DAYS} days per report.")
    if not is_overseer(principal):
        own = department_of(principal)
        if own is None:
            raise Forbidden("For supervisors and departments' staff.")
        if department and department != own:
            raise Forbidden("A department's staff see their own department only.")
        department = own
    lo = datetime.combine(start, time.min, CHINA)
    hi = datetime.combine(end + timedelta(days=1), time.min, CHINA)
    rows = await cases.correction_events(session, start=lo, end=hi, department=department, item=item,
                                         types=(RETURNED, TASK_DECIDED), limit=MAX_ROWS)
    corrections = correction_counts((r.item_code, r.type, r.data) for r in rows)
    clocks = await cases.settled_task_clocks(session, since=lo, department=department, item=item, limit=MAX_ROWS)
    cal = await current_calendar(session)
    now = as_instant(None)
    settled = []
    for item_code, c in clocks:
        if c.stopped_at is None or not (lo <= c.stopped_at < hi):
            continue
        v = measure(c, cal, now)
        if v.elapsed_workdays is not None and c.limit_value and c.limit_unit == "working_days":
            settled.append((item_code, c.step_key, c.department, v.elapsed_workdays, c.limit_value))
    steps = step_use(settled)
    codes = sorted(set(corrections) | set(steps), key=lambda c: (-sum(corrections.get(c, {}).values()), c or ""))
    return StuckReport(
        start=start, end=end, department=department, truncated=len(rows) >= MAX_ROWS or len(clocks) >= MAX_ROWS,
        items=[ItemInsight(
            item_code=code,
            corrections=[MaterialCount(material=m, times=n) for m, n in corrections.get(code, Counter()).most_common(20)],
            steps=[StepRead(step_key=s.step_key, department=s.department, tasks=s.tasks, average_share=s.average_share,
                            max_share=s.max_share, over_limit=s.over_limit) for s in steps.get(code, [])[:20]],
        ) for code in codes])
