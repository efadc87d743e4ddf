"""HTTP routes of the datashare service (thin: parse, call the use cases in `service`, render)."""

from __future__ import annotations

from fastapi import APIRouter

from services.datashare.api import access_log, archive, certificates, matching, opendata, registries, sharing

router = APIRouter()
for module in (certificates, sharing, access_log, registries, matching, archive, opendata):
    router.include_router(module.router)
