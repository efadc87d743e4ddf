"""Wiring of the identity service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.identity.api.routes import router
from services.identity.events.handlers import CONSUMERS
from services.identity.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="identity",
    title="Yimen identity",
    description="""People, organisations, accounts, tokens (JWT + JWKS), staff roles, department system clients and delegation (委托代办).""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
