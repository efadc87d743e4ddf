"""Where people get stuck before they hand in (卡点分析): drafts abandoned, and at which material."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.intake import service
from services.intake.api.openapi import responses
from services.intake.service.insights import MAX_ROWS
from shared.auth import CurrentPrincipal
from shared.db import SessionDep

router = APIRouter(prefix="/insights", tags=["insights"])


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
    responses=responses(200, 401, 403, 422),
)
async def abandoned_drafts(
    session: SessionDep,
    principal: CurrentPrincipal,
    idle_days: Annotated[int, Query(ge=1, le=365, description="Days without a change.")] = 7,
    department: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9-]+$")] = None,
    item: Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9]+$")] = None,
) -> AbandonedReport:
    report = await service.insights.abandoned_drafts(session, principal, idle_days=idle_days,
                                                     department=department, item=item)
    return AbandonedReport(idle_days=report.idle_days, department=report.department, truncated=report.truncated,
                           items=[AbandonedItem(item_code=code, item_name=name, drafts=sum(counts.values()),
                                                stopped_at=[StoppedAt(at=k, drafts=n) for k, n in counts.most_common(20)])
                                  for code, name, counts in report.items])
