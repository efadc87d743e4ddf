"""`create_service_app`: the wiring every service shares, so that `services/<name>/app.py` only names its
routers, tables, consumers and background jobs.

It serves under `/<name>`: `/<name>/v1/...` (the service's routers), `/<name>/healthz`, `/<name>/readyz`,
`/<name>/metrics`, `/<name>/openapi.json`, `/<name>/docs` (Swagger UI) and `/<name>/redoc` (ReDoc), both with
their assets served by the service itself (no CDN: they work on a closed network). On start-up it migrates the
database, connects the bus, and starts the outbox relay, the durable consumers and the service's background jobs.

What a route declares, the same way in every service (`shared/apidocs.py`, re-exported here):

- **Response headers it sets**: `responses=headers_doc("ETag", "Location", status=201)` (merge with
  `problem_responses(...)` and other statuses: `{**a, **b}` or `merge_responses(a, b)`). Every `ETag`,
  `Location`, `Idempotent-Replayed` and `Retry-After` a route sets is declared this way.
- **A required precondition**: `if_match: IfMatchRequired` when the route answers 428 without `If-Match`.
- **Who may call it**: a route depending on `CurrentPrincipal`/`require_roles` is documented with bearer
  security; one reading `OptionalPrincipal` as "a token or none"; every other route as public (`security: []`).
  `**PUBLIC` in the decorator documents a route as public whatever it reads
  (`@router.get("/verification", **PUBLIC)`); `**SIGNED` a callback authenticated by its Standard Webhooks
  signature. Roles given to `require_roles` appear in the operation as `x-yimen-roles`.
- **Its errors**: `responses=problem_responses(404, 409)` (`shared/http_errors.py`); every error is
  problem+json in the language of `Accept-Language` (Chinese by default, English with `en`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import MetaData

from shared.apidocs import (  # noqa: F401 - re-exported: routes declare headers and public routes with these
    PUBLIC,
    SIGNED,
    IfMatchRequired,
    finish_headers,
    finish_security,
    headers_doc,
    install_docs,
    merge_responses,
    token_or,
)
from shared.auth import (
    TOKENS_REVOKED,
    JwksFetcher,
    JWKSVerifier,
    RevocationsFetcher,
    apply_revocation,
    http_jwks_fetcher,
    http_revocations_fetcher,
    sync_revocations,
)
from shared.bus import Bus, PullWorker
from shared.db import Database, is_sqlite
from shared.events import Event
from shared.fastpath import FastGet, FastPaths
from shared.http_errors import install_error_handlers
from shared.jobs import run_periodically
from shared.messaging import Consumer, InboxConsumer, MessagingTables, OutboxRelay, purge_expired
from shared.migrate import upgrade
from shared.observability import NO_OTEL, Metrics, RequestContextMiddleware, configure_logging
from shared.settings import ServiceSettings, load_service_settings
from shared.tracing import outgoing_headers
from shared.upkeep import keep_statistics

log = logging.getLogger("yimen.service")


@dataclass
class ServiceContext:
    """What a running service holds; background jobs and start-up hooks receive it."""

    name: str
    settings: ServiceSettings
    db: Database
    bus: Bus
    http: httpx.AsyncClient
    verifier: JWKSVerifier
    metrics: Metrics
    messaging: MessagingTables
    extras: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[ServiceContext], Coroutine[Any, Any, None]]


@dataclass
class ServiceSpec:
    name: str
    title: str
    description: str
    metadata: MetaData
    messaging: MessagingTables
    routers: list[APIRouter]
    consumers: list[Consumer] = field(default_factory=list)
    #: Run once after migrations, before traffic (seed data, bootstrap admin).
    on_startup: list[Hook] = field(default_factory=list)
    #: Long-running jobs (webhook dispatcher, clock ticker); cancelled on shutdown.
    background: list[Hook] = field(default_factory=list)
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    version: str = "1.0.0"
    #: Hot public GETs of `routers` answered without FastAPI's router (`shared.fastpath`); liveness always is.
    fast: list[FastGet] = field(default_factory=list)
    #: False for a service that writes no events (notify only consumes): it runs no outbox relay, which would
    #: only poll an empty outbox, and `emit` refuses in it rather than leave an event there unpublished.
    publishes: bool = True


def create_service_app(
    spec: ServiceSpec,
    settings: ServiceSettings | None = None,
    *,
    jwks_fetcher: JwksFetcher | None = None,
    revocations_fetcher: RevocationsFetcher | None = None,
    run_workers: bool = True,
) -> FastAPI:
    settings = settings or load_service_settings(spec.name)
    platform = settings.platform
    metrics = Metrics(spec.name)
    prefix = f"/{spec.name}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        if settings.migrate_on_start:
            await asyncio.to_thread(upgrade, spec.name, url)
        db = Database(url, info={"messaging": spec.messaging, "service": spec.name, "publishes": spec.publishes},
                      pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
        bus = Bus(platform.nats_url, prefix=platform.bus_prefix, name=f"yimen-{spec.name}", service=spec.name,
                  stream_replicas=platform.nats_stream_replicas, **platform.nats_credentials())
        # Calls to other services carry the request id and a child span of the current trace. One client for
        # every call and every department's webhook endpoint: it keeps no cookie, or one endpoint's Set-Cookie
        # would be sent to another sharing its host.
        http = httpx.AsyncClient(timeout=10, event_hooks={"request": [_propagate_trace]},
                                 cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=())))
        verifier = JWKSVerifier(
            jwks_fetcher or http_jwks_fetcher(platform.jwks_url, http),
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )
        ctx = ServiceContext(spec.name, settings, db, bus, http, verifier, metrics, spec.messaging)
        identity_url = platform.service_urls.get("identity", "").rstrip("/")
        revocations = revocations_fetcher or http_revocations_fetcher(
            f"{identity_url}/identity/v1/token-revocations", http)
        app.state.ctx, app.state.db, app.state.bus = ctx, db, bus
        app.state.verifier, app.state.http, app.state.messaging = verifier, http, spec.messaging
        app.state.settings = settings
        tasks: list[asyncio.Task[Any]] = []
        stoppables: list[Any] = []
        bus_task = asyncio.create_task(bus.connect())
        starter: asyncio.Task[None] | None = None
        # Revoked tokens (password change, logout everywhere, lock) are refused by every service within seconds:
        # the list now and periodically, each new revocation by its event (below, once the bus is up).
        tasks.append(asyncio.create_task(sync_revocations(
            verifier, revocations, interval=platform.revocation_sync_seconds,
            horizon=platform.revocation_horizon_seconds), name=f"{spec.name}-revocations"))
        try:
            for hook in spec.on_startup:
                await hook(ctx)

            async def start_workers() -> None:
                await bus_task
                await _subscribe_revocations(bus, verifier)
                app.state.revocations_subscribed = True
                if spec.publishes:
                    relay = OutboxRelay(
                        db, bus, spec.messaging,
                        interval=platform.relay_interval_seconds,
                        idle_interval=platform.relay_idle_interval_seconds,
                        retention=timedelta(days=platform.outbox_retention_days),
                        on_published=lambda n: metrics.events_published.labels(spec.name).inc(n),
                    )
                    app.state.relay = relay
                    stoppables.append(relay)
                    tasks.append(asyncio.create_task(relay.run(), name=f"{spec.name}-relay"))
                for consumer in spec.consumers:
                    worker: PullWorker = InboxConsumer(
                        db, spec.messaging, consumer, bus,
                        max_deliver=platform.max_deliver,
                        ack_wait=platform.ack_wait_seconds,
                        on_result=_count_handled(metrics, spec.name, consumer.name),
                    ).worker()
                    stoppables.append(worker)
                    tasks.append(asyncio.create_task(worker.run(), name=f"{spec.name}-{consumer.name}"))
                for job in spec.background:
                    tasks.append(asyncio.create_task(job(ctx), name=f"{spec.name}-{job.__name__}"))
                tasks.append(asyncio.create_task(run_periodically(
                    f"{spec.name} messaging purge",
                    functools.partial(
                        purge_expired, db, spec.messaging,
                        inbox_older_than=timedelta(days=platform.inbox_retention_days),
                        idempotency_older_than=timedelta(days=platform.idempotency_retention_days)),
                    interval=platform.messaging_purge_seconds, first_after_pause=True,
                ), name=f"{spec.name}-messaging-purge"))
                if not is_sqlite(db.url) and platform.db_upkeep_seconds > 0:
                    tasks.append(asyncio.create_task(run_periodically(
                        f"{spec.name} statistics upkeep", functools.partial(keep_statistics, db),
                        interval=platform.db_upkeep_seconds, first_after_pause=True,
                    ), name=f"{spec.name}-upkeep"))

            if run_workers:
                starter = asyncio.create_task(start_workers())
            yield
        finally:
            for s in stoppables:
                s.stop()
            for t in [starter, bus_task, *tasks]:
                if t is not None and not t.done():
                    t.cancel()
            pending = [t for t in [starter, bus_task, *tasks] if t is not None]
            if pending:
                # A job stuck in a driver thread (SQLite's busy wait) must not hold the shutdown hostage: what it
                # had not committed is redone from the outbox and the bus after a restart.
                _done, stuck = await asyncio.wait(pending, timeout=10)
                for t in stuck:
                    log.warning("shutdown: %s did not stop within 10 s; leaving it", t.get_name())
            await bus.close()
            await http.aclose()
            await db.dispose()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=None,  # served by install_docs, from the platform's own copy of the assets
        redoc_url=None,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
        telemetry=NO_OTEL,
    )
    install_error_handlers(app)
    install_docs(app, prefix)
    _document_problems(app)
    health, liveness = health_router(spec.name, metrics)
    app.include_router(health, prefix=prefix)
    for router in spec.routers:
        app.include_router(router, prefix=f"{prefix}/v1")
    app.state.fast_paths = fast = FastPaths(app, [liveness, *spec.fast])
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=platform.max_body_bytes,
                       budget_seconds=platform.request_budget_seconds, fast=fast)
    return app


def _count_handled(metrics: Metrics, service: str, consumer: str) -> Callable[[str], None]:
    def count(result: str) -> None:
        metrics.events_handled.labels(service, consumer, result).inc()

    return count


async def _subscribe_revocations(bus: Bus, verifier: JWKSVerifier) -> None:
    """A plain (non-durable) subscription in every process: each replica must hear every revocation, whereas a
    durable consumer hands each event to one replica only. nats-py renews it after a reconnect."""

    async def on_revoked(msg: Any) -> None:
        try:
            apply_revocation(verifier, Event.from_json(msg.data).data)
        except Exception as exc:  # a malformed event must not end the subscription
            log.warning("ignoring malformed %s: %r", TOKENS_REVOKED, exc)

    assert bus.nc is not None
    await bus.nc.subscribe(bus.names.subject(TOKENS_REVOKED), cb=on_revoked)


async def _propagate_trace(request: httpx.Request) -> None:
    for name, value in outgoing_headers().items():
        request.headers.setdefault(name, value)


def _document_problems(app: FastAPI) -> None:
    """Every error a route can answer is RFC 9457 problem+json (shared/errors.py renders them all), so the
    OpenAPI says so once for every operation: declared error responses carry the problem schema instead of
    FastAPI's default validation shape, and a `default` response covers the rest (401/403 on a route that
    needs a token, 413 for an oversized body, 400 for a body that is not UTF-8, …)."""
    from fastapi.openapi.utils import get_openapi

    from shared.errors import PROBLEM_JSON, ProblemDetail

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes, tags=app.openapi_tags)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ProblemDetail"] = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in components["ProblemDetail"].pop("$defs", {}).items():
            components.setdefault(sub_name, sub)
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
        for item in schema.get("paths", {}).values():
            for method, op in item.items():
                if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                    continue
                responses = op.setdefault("responses", {})
                for code, resp in responses.items():
                    # `x-yimen-not-a-problem` keeps a body of the route's own (readyz's 503); every other error
                    # response is a problem.
                    if code.isdigit() and int(code) >= 400 and not resp.pop("x-yimen-not-a-problem", False):
                        resp["content"] = problem
                        resp.setdefault("description", "Problem details (RFC 9457)")
                responses.setdefault("default", {"description": "An error, as problem details (RFC 9457).",
                                                 "content": problem})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        finish_security(schema, app.routes)
        finish_headers(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class Liveness(BaseModel):
    status: Literal["ok"]
    service: str


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    service: str
    checks: dict[str, str] = Field(description="Each dependency (`database`, `bus`): `ok`, or why it is down.")


def health_router(name: str, metrics: Metrics) -> tuple[APIRouter, FastGet]:
    """The operations routes, and liveness's fast path (probes and load balancers ask it often)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers", response_model=Liveness)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    alive = Liveness(status="ok", service=name).model_dump_json().encode()

    async def liveness(_request: Request, _params: dict[str, str]) -> Response:
        return Response(alive, media_type="application/json")

    @router.get(
        "/readyz",
        summary="Readiness: the database and the event bus answer",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is down; the body says which.",
                         "x-yimen-not-a-problem": True}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(request.app.state.db.ping(), 3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        checks["bus"] = "ok" if await request.app.state.bus.ready() else "down"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "service": name, "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Any:
        return metrics.render()

    return router, FastGet(router, healthz, liveness)


def run(spec_factory: Callable[[], FastAPI], name: str) -> None:
    """`python -m services.<name>`: serve one service with uvicorn on its port (`shared.serving`)."""
    from shared.serving import serve

    settings = load_service_settings(name)
    configure_logging(settings.platform.log_level, settings.platform.log_json)
    host = os.environ.get("YIMEN_HOST", "127.0.0.1")  # 0.0.0.0 in containers
    serve(spec_factory(), host=host, port=settings.port, log_config=None, access_log=False)
