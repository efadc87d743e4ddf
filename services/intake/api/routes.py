"""HTTP routes of the intake service (thin: parse, call the use cases in `services.intake.service`, render)."""

from __future__ import annotations

from fastapi import APIRouter

from services.intake.api import (
    applications,
    commitments,
    counter,
    insights,
    progress,
    projects,
    reuse,
    services_desk,
    walkins,
)

router = APIRouter()
# The public status query first: routes are matched in order, each candidate a few microseconds, and it is the
# most frequent request. No path of `progress` is also a path of another router, so the order changes nothing
# else (the OpenAPI document lists its paths first).
router.include_router(progress.router)
router.include_router(applications.router)
router.include_router(reuse.router)
router.include_router(services_desk.router)
router.include_router(commitments.router)
router.include_router(counter.router)
router.include_router(walkins.router)
router.include_router(insights.router)
router.include_router(projects.router)
