"""The console (监察台与窗口工作台): server-rendered pages for the people who run the platform, built only on
the public APIs (the same ones a third-party front end uses). It has no database and reads no service's
tables, so it builds its FastAPI app itself rather than through `shared.service.create_service_app`, reusing
the shared error handlers, observability and token verification."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from services.console.api import auth, desk, oversight
from services.console.config import ConsoleSettings
from services.console.session import PATH
from services.console.upstream import ApiError, SignInNeeded
from services.console.web import (
    HERE,
    Refused,
    on_api_error,
    on_refused,
    on_sign_in_needed,
    on_unreachable,
    render,
)
from shared.apidocs import install_docs
from shared.auth import JwksFetcher, JWKSVerifier, http_jwks_fetcher
from shared.http_errors import install_error_handlers
from shared.observability import Metrics, RequestContextMiddleware
from shared.tracing import outgoing_headers


async def _propagate_trace(request: httpx.Request) -> None:
    for name, value in outgoing_headers().items():
        request.headers.setdefault(name, value)


def create_app(settings: ConsoleSettings | None = None, *, jwks_fetcher: JwksFetcher | None = None,
               **_: Any) -> FastAPI:
    settings = settings or ConsoleSettings()
    platform = settings.platform
    metrics = Metrics("console")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = httpx.AsyncClient(timeout=settings.http_timeout_seconds, event_hooks={"request": [_propagate_trace]})
        app.state.http, app.state.settings = http, settings
        app.state.verifier = JWKSVerifier(jwks_fetcher or http_jwks_fetcher(platform.jwks_url, http),
                                          issuer=platform.token_issuer, audience=platform.token_audience)
        try:
            yield
        finally:
            await http.aclose()

    app = FastAPI(
        title="Yimen console",
        description="The supervisors' console (实时电子监察: league table, the reform's figures, 督办, cases, 好差评) "
                    "and the window clerk's desk (受理, 补正, 出件), as HTML pages under `/console/`. Sign-in uses "
                    "identity's OAuth2 token endpoint; every figure comes from the public APIs with the user's token.",
        version="1.0.0",
        openapi_url=f"{PATH}/openapi.json",
        docs_url=None,  # install_docs: the platform's own copy of the assets, no CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_docs(app, PATH)
    app.add_exception_handler(SignInNeeded, on_sign_in_needed)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(httpx.HTTPError, on_unreachable)

    async def not_for_you(request: Request, _: Exception) -> Response:
        return render(request, "error.html", status_code=403, error=None,
                      message="这一页面供监察人员、部门工作人员或窗口人员使用，您的账号没有相应角色。")

    app.add_exception_handler(oversight.NotForYou, not_for_you)
    app.add_exception_handler(desk.NotAClerk, not_for_you)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=platform.max_body_bytes)

    pages = APIRouter(include_in_schema=True, tags=["pages"])
    pages.include_router(auth.router)
    pages.include_router(oversight.router)
    pages.include_router(desk.router)
    app.include_router(pages, prefix=PATH)
    app.mount(f"{PATH}/static", StaticFiles(directory=str(HERE / "static")), name="static")

    ops = APIRouter(tags=["operations"])

    @ops.get(f"{PATH}/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "console"}

    @ops.get(f"{PATH}/readyz", summary="Readiness: identity (sign-in, keys) and efficacy answer")
    async def readyz(request: Request) -> JSONResponse:
        http: httpx.AsyncClient = request.app.state.http

        async def check(path: str) -> str:
            try:
                r = await http.get(settings.base_for(path) + path, timeout=3)
                return "ok" if r.status_code == 200 else f"down: {r.status_code}"
            except (httpx.HTTPError, KeyError) as exc:
                return f"down: {type(exc).__name__}"

        paths = {"identity": "/identity/healthz", "efficacy": "/efficacy/healthz", "intake": "/intake/healthz"}
        results = await asyncio.gather(*(check(p) for p in paths.values()))
        checks = dict(zip(paths, results, strict=True))
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "service": "console", "checks": checks},
                            status_code=200 if ok else 503)

    @ops.get(f"{PATH}/metrics", include_in_schema=False)
    async def prometheus() -> Any:
        return metrics.render()

    app.include_router(ops)
    return app
