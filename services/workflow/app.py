"""Wiring of the workflow service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.workflow.api.routes import router
from services.workflow.events.handlers import CONSUMERS
from services.workflow.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="workflow",
    title="Yimen workflow",
    description="""Process instances and department tasks; parallel approval (并联审批) by events and signed webhooks; corrections (补正); decisions.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
