"""Every request has a server-side time budget (shared/budget.py): past it the work is cancelled and the client
gets a 503 problem+json with Retry-After, instead of a worker held for as long as the request likes."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request

from services.catalog.app import create_app as catalog_app
from shared.budget import time_budget
from shared.testing import running_app

router = APIRouter()
seen: dict[str, str] = {}


@router.get("/slow")
async def slow(request: Request) -> dict[str, str]:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        seen["slow"] = "cancelled"
        raise
    return {"done": "yes"}


@router.get("/patient", dependencies=[time_budget(5)])
async def patient() -> dict[str, str]:
    await asyncio.sleep(1.2)
    return {"done": "yes"}


async def test_a_request_past_its_budget_is_cancelled_and_answered_503_with_retry_after(settings_for, tokens):
    settings = settings_for("catalog", request_budget_seconds=0.8)

    def app_with_slow_routes(s, **kw):
        app = catalog_app(s, **kw)
        app.include_router(router, prefix="/catalog/v1/test")
        return app

    async with running_app(app_with_slow_routes, settings, tokens=tokens, demo=False) as client:
        began = time.monotonic()
        r = await client.get("/catalog/v1/test/slow")
        took = time.monotonic() - began
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/time-budget-exceeded") and int(r.headers["retry-after"]) >= 1
        assert took < 10
        assert seen.get("slow") == "cancelled"  # the work itself stopped, not just the answer
        # A route that declares a larger budget keeps it; the service still answers others meanwhile.
        patient_call = asyncio.create_task(client.get("/catalog/v1/test/patient"))
        assert (await client.get("/catalog/readyz")).status_code == 200
        assert (await patient_call).status_code == 200


async def test_the_budget_covers_reading_a_slow_body(settings_for, tokens):
    settings = settings_for("catalog", request_budget_seconds=0.8)
    async with running_app(catalog_app, settings, tokens=tokens, demo=False) as client:
        async def trickle():
            yield b'{"name": '
            await asyncio.sleep(30)
            yield b'"x"}'

        began = time.monotonic()
        r = await client.put("/catalog/v1/departments/LD-SLOW", content=trickle(),
                             headers={**tokens.headers("admin-1", kind="staff", roles=["admin"]),
                                      "content-type": "application/json"})
        assert r.status_code == 503 and time.monotonic() - began < 10
        assert r.json()["type"].endswith("/time-budget-exceeded")
