"""Wiring of the datashare service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.datashare import service
from services.datashare.api.routes import router
from services.datashare.config import DatashareConfig
from services.datashare.events.handlers import CONSUMERS
from services.datashare.store.tables import Base, messaging
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings


async def seed_reference_data(ctx: ServiceContext) -> None:
    async with ctx.db.transaction() as session:
        await service.seed_reference_data(session)


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


class _WithConfig:
    """Makes this app's settings current for everything it runs (requests, and the lifespan's consumers and
    relay, which inherit the context): two apps in one process, as in tests, keep their own."""

    def __init__(self, app: ASGIApp, config: DatashareConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service.use_config(self.config)
        await self.app(scope, receive, send)


def create_app(settings: ServiceSettings | None = None, *, config: DatashareConfig | None = None,
               **kwargs: object) -> FastAPI:
    app = create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
    app.add_middleware(_WithConfig, config=config or DatashareConfig())
    return app
