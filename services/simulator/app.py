"""The department simulator (模拟部门系统): plays the demo departments' legacy systems over Yimen's public
interfaces only. It has no database, so it builds its FastAPI app itself rather than through
`shared.service.create_service_app`, reusing the shared error handlers and observability."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from services.simulator.api.payments import router as payments_router
from services.simulator.api.routes import FAST, router
from services.simulator.api.sms import router as sms_router
from services.simulator.buses import DepartmentBuses
from services.simulator.config import SimulatorSettings
from services.simulator.runtime import Simulator
from shared.apidocs import install_docs
from shared.auth import JwksFetcher, JWKSVerifier, http_jwks_fetcher
from shared.fastpath import FastPaths
from shared.http_errors import install_error_handlers
from shared.observability import NO_OTEL, Metrics, RequestContextMiddleware

PREFIX = "/simulator"


def create_app(settings: SimulatorSettings | None = None, *, jwks_fetcher: JwksFetcher | None = None,
               **_: Any) -> FastAPI:
    settings = settings or SimulatorSettings()
    platform = settings.platform
    metrics = Metrics("simulator")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
        bus = DepartmentBuses(platform, settings.department_bus_credentials())
        sim = Simulator(settings, http, bus)
        app.state.simulator, app.state.bus, app.state.settings = sim, bus, settings
        # Its control routes (a department's rule) take an admin's platform token, verified like every service's.
        app.state.verifier = JWKSVerifier(jwks_fetcher or http_jwks_fetcher(platform.jwks_url, http),
                                          issuer=platform.token_issuer, audience=platform.token_audience)
        tasks = [asyncio.create_task(bus.connect(), name="simulator-bus")]
        if settings.register_on_start:
            tasks.append(asyncio.create_task(sim.register_all(), name="simulator-registration"))
        else:
            sim.registration = "ok"
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await sim.close()
            await bus.close()
            await http.aclose()

    app = FastAPI(
        title="Yimen simulator",
        description="Department simulator: receives signed task webhooks from workflow and answers by each "
        "department's rule (approve, reject, correct once, never) through workflow's REST API or the bus.",
        version="1.0.0",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # install_docs: the platform's own copy of the assets, no CDN
        redoc_url=None,
        lifespan=lifespan,
        telemetry=NO_OTEL,
    )
    install_error_handlers(app)
    install_docs(app, PREFIX)
    app.include_router(_operations(metrics), prefix=PREFIX)
    app.include_router(router, prefix=f"{PREFIX}/v1")
    app.include_router(payments_router, prefix=f"{PREFIX}/v1")
    app.include_router(sms_router, prefix=f"{PREFIX}/v1")
    # Webhook deliveries, answered without the router (`shared.fastpath`).
    app.state.fast_paths = fast = FastPaths(app, FAST)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=platform.max_body_bytes,
                       budget_seconds=platform.request_budget_seconds, fast=fast)
    return app


def _operations(metrics: Metrics) -> APIRouter:
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "simulator"}

    @ops.get(
        "/readyz",
        summary="Readiness: the bus answers and every department is registered with identity and workflow",
        responses={503: {"description": "Not yet; the body says what is missing."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        sim: Simulator = request.app.state.simulator
        checks = {
            "bus": "ok" if await request.app.state.bus.ready() else "down",
            "registration": sim.registration,
        }
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "service": "simulator", "checks": checks},
            status_code=200 if ok else 503,
        )

    @ops.get("/metrics", include_in_schema=False)
    async def prometheus() -> Any:
        return metrics.render()

    return ops
