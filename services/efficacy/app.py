"""Wiring of the efficacy service: its routers, tables, consumers and background jobs."""

from __future__ import annotations

from fastapi import FastAPI

from services.efficacy.api.routes import router
from services.efficacy.events.handlers import CONSUMERS
from services.efficacy.store.tables import Base, messaging
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings

SPEC = ServiceSpec(
    name="efficacy",
    title="Yimen efficacy",
    description="""Working-day calendar, deadline clocks, yellow and red cards (红黄牌) with supervision, KPIs, ratings (好差评), complaints.""",
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
)


def create_app(settings: ServiceSettings | None = None, **kwargs: object) -> FastAPI:
    return create_service_app(SPEC, settings, **kwargs)  # type: ignore[arg-type]
