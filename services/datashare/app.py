"""Wiring of the datashare service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from services.datashare import operations
from services.datashare.api.routes import router
from services.datashare.config import DatashareConfig
from services.datashare.events.handlers import CONSUMERS
from services.datashare.store.tables import Base, messaging
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings


async def seed_reference_data(ctx: ServiceContext) -> None:
    async with ctx.db.transaction() as session:
        await operations.seed_reference_data(session)


SPEC = ServiceSpec(
    name="datashare",
    title="Yimen datashare",
    description="""E-certificates (电子证照), base registries, purpose-bound data sharing with an access log the citizen can read, open data.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
    on_startup=[seed_reference_data],
    openapi_tags=[
        {"name": "certificates", "description": "The certificate directory and electronic certificates (电子证照)."},
        {"name": "sharing", "description": "Purpose-bound requests for an application's materials."},
        {"name": "access log", "description": "Every read of personal data, in a hash chain the subject can read."},
        {"name": "registries", "description": "Population and legal-person base registries."},
        {"name": "archive", "description": "Past applications kept for reuse."},
        {"name": "open data", "description": "Aggregated, non-personal datasets (数据开放)."},
    ],
)


def create_app(settings: ServiceSettings | None = None, *, config: DatashareConfig | None = None,
               **kwargs: object) -> FastAPI:
    config = config or DatashareConfig()
    app = create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]

    @app.middleware("http")
    async def with_config(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        operations.use_config(config)
        return await call_next(request)

    return app
