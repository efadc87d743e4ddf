"""Where people get stuck before they hand in (卡点分析): drafts abandoned, and at which material."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.intake.domain.insights import abandoned
from services.intake.store import repository as repo
from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, CurrentPrincipal
from shared.db import SessionDep
from shared.errors import Forbidden
from shared.http_errors import problem_responses
from shared.types import utcnow

router = APIRouter(prefix="/insights", tags=["insights"])

#: Drafts read per report, the most recently touched first.
MAX_ROWS = 50_000


class StoppedAt(BaseModel):
    at: str = Field(description="Material code or form field the latest one-time notice still asked for first; "
                                "`not_checked` when the applicant never asked what was missing.")
    drafts: int


class AbandonedItem(BaseModel):
    item_code: str
    item_name: str
    drafts: int
    stopped_at: list[StoppedAt] = Field(description="Most frequent first.")


class AbandonedReport(BaseModel):
    idle_days: int
    department: str | None
    truncated: bool = Field(description=f"True when more than {MAX_ROWS} drafts matched: the latest were counted.")
    items: list[AbandonedItem]


@router.get(
    "/abandoned-drafts",
    summary="Drafts abandoned, and at which material, per item (no personal data)",
    description="Drafts not touched for `idle_days` days, counted per item by the first thing their latest "
                "one-time notice still asked for. Supervisors see the city; a department's staff see the items of "
                "their department.",
    response_model=AbandonedReport,
    responses=problem_responses(401, 403, 422),
)
async def abandoned_drafts(
    session: SessionDep,
    principal: CurrentPrincipal,
    idle_days: Annotated[int, Query(ge=1, le=365, description="Days without a change.")] = 7,
    department: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9-]+$")] = None,
    item: Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9]+$")] = None,
) -> AbandonedReport:
    if principal.kind != "staff":
        raise Forbidden("For supervisors and departments' staff.")
    if not principal.has(SUPERVISOR, ADMIN):
        if not (principal.has(DEPARTMENT_REVIEWER, WINDOW_CLERK) and principal.department):
            raise Forbidden("For supervisors and departments' staff.")
        if department and department != principal.department:
            raise Forbidden("A department's staff see their own department only.")
        department = principal.department
    rows = await repo.idle_drafts(session, before=utcnow() - timedelta(days=idle_days), department=department,
                                  item=item, limit=MAX_ROWS)
    per_item = abandoned((r.item_code, r.item_name, r.notice) for r in rows)
    ordered = sorted(per_item.items(), key=lambda kv: (-sum(kv[1][1].values()), kv[0]))
    return AbandonedReport(idle_days=idle_days, department=department, truncated=len(rows) >= MAX_ROWS, items=[
        AbandonedItem(item_code=code, item_name=name, drafts=sum(counts.values()),
                      stopped_at=[StoppedAt(at=k, drafts=n) for k, n in counts.most_common(20)])
        for code, (name, counts) in ordered])
