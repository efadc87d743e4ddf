"""Wiring of the catalog service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.catalog.api.routes import router
from services.catalog.events.handlers import CONSUMERS
from services.catalog.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="catalog",
    title="Yimen catalog",
    description="""Public-service items (事项) with their service guides, versions, flowcharts and search; departments and service points.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
