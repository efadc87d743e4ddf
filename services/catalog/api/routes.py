"""HTTP routes of the catalog service (thin: parse, call `service`, render)."""

from __future__ import annotations

from fastapi import APIRouter

from services.catalog.api import editing, project_types, public

router = APIRouter()
router.include_router(public.router)
router.include_router(editing.router)
router.include_router(project_types.router)
