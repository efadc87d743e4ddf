"""Wiring of the datashare service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.datashare.api.routes import router
from services.datashare.events.handlers import CONSUMERS
from services.datashare.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="datashare",
    title="Yimen datashare",
    description="""E-certificates (电子证照), base registries, purpose-bound data sharing with an access log the citizen can read, open data.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
