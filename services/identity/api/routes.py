"""HTTP routes of the identity service (thin: parse, call the use cases in `service`, render)."""

from __future__ import annotations

from fastapi import APIRouter

from services.identity.api import admin, me, orgs, people, token, walkins

router = APIRouter()
# `/people/lookup` is registered with the people router before anything that could shadow it.
for sub in (people.router, walkins.router, token.router, me.router, orgs.router, admin.router):
    router.include_router(sub)
