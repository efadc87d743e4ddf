"""HTTP routes of the notify service (thin: parse, call the use cases, return)."""

from __future__ import annotations

from fastapi import APIRouter

from services.notify.api import me, messages, templates

router = APIRouter()
for sub in (me.router, templates.router, messages.router):
    router.include_router(sub)
