"""The JSON a supervisors' dashboard page draws."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.efficacy import service
from services.efficacy.domain.calendar import CHINA
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["supervision"])


class DepartmentPanel(BaseModel):
    department: str | None
    running_applications: int = 0
    paused_applications: int = Field(0, description="Waiting on a correction (补正) or a special procedure.")
    running_tasks: int = 0
    awaiting_acceptance: int = Field(0, description="Submitted and not yet accepted (受理), on the acceptance clock.")
    open_yellow_cards: int = 0
    open_red_cards: int = 0
    open_supervision: dict[str, int] = Field(default_factory=dict, description="Open queue items by kind.")


class Dashboard(BaseModel):
    generated_at: datetime
    totals: DepartmentPanel
    departments: list[DepartmentPanel]


@router.get("/dashboard", summary="Supervisors' dashboard data", response_model=Dashboard,
            description="Open clocks, open cards and the open supervision queue per department. Supervisors see "
                        "the city; a department's staff see their department.",
            responses=problem_responses(401, 403))
async def dashboard(session: SessionDep, principal: CurrentPrincipal) -> Dashboard:
    counts = await service.cards.dashboard_counts(session, principal)
    panels: dict[str | None, DepartmentPanel] = {}
    total = DepartmentPanel(department=None)

    def panel(dept: str | None) -> DepartmentPanel:
        return panels.setdefault(dept, DepartmentPanel(department=dept))
    for r in counts["clocks"]:
        field = {("application", "running"): "running_applications", ("application", "paused"): "paused_applications",
                 ("task", "running"): "running_tasks",
                 ("acceptance", "running"): "awaiting_acceptance"}.get((r.kind, r.state))
        if field:
            for p in (panel(r.department), total):
                setattr(p, field, getattr(p, field) + r.n)
    for r in counts["cards"]:
        field = "open_red_cards" if r.colour == "red" else "open_yellow_cards"
        for p in (panel(r.department), total):
            setattr(p, field, getattr(p, field) + r.n)
    for r in counts["queue"]:
        if r.state == "open":
            for p in (panel(r.department), total):
                p.open_supervision[r.kind] = p.open_supervision.get(r.kind, 0) + r.n
    ordered = sorted(panels.values(), key=lambda p: (-p.open_red_cards, -p.open_yellow_cards, p.department or ""))
    return Dashboard(generated_at=datetime.now(CHINA), totals=total, departments=ordered)
