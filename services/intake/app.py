"""Wiring of the intake service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.api.routes import router
from services.intake.events.handlers import CONSUMERS
from services.intake.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="intake",
    title="Yimen intake",
    description="""Applications (办件): one-window acceptance online and at any window, one-time notice, reuse, receipts, status, appointments, consultations.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
