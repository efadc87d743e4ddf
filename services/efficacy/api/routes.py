"""HTTP routes of the efficacy service (thin: parse, call the use cases in `service`, render)."""

from __future__ import annotations

from fastapi import APIRouter

from services.efficacy.api import (
    calendar,
    clocks,
    complaints,
    dashboard,
    insights,
    kpis,
    projects,
    ratings,
    recommendations,
    supervision,
)

router = APIRouter()
# Ratings before supervision: the document's examples tell one story (a bad rating opens the supervision item the
# answer example answers).
for sub in (calendar.router, clocks.router, ratings.router, supervision.router, kpis.router,
            complaints.router, recommendations.router, dashboard.router, insights.router, projects.router):
    router.include_router(sub)
