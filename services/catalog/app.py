"""Wiring of the catalog service: its routers, tables, consumers and start-up hooks."""

from __future__ import annotations

import dataclasses

from fastapi import FastAPI

from services.catalog.api import public
from services.catalog.api.routes import router
from services.catalog.demo.load import demo_hook
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
    fast=public.FAST,
    consumers=CONSUMERS,
    on_startup=[demo_hook()],
    openapi_tags=[
        {"name": "items", "description": "Public reads of published items, guides and flowcharts (no token)."},
        {"name": "search", "description": "Chinese search over published items."},
        {"name": "organisation", "description": "Departments, service points, life events."},
        {"name": "lists", "description": "Intermediary-service list and market-access negative list."},
        {"name": "open data", "description": "CPSV-AP JSON-LD and the whole catalogue as a dataset."},
        {"name": "editing", "description": "Drafts, review, publication, withdrawal (admin or catalog_editor)."},
        {"name": "projects", "description": "Project types and their stages (企业投资项目), each provider's limit."},
    ],
)


def create_app(settings: ServiceSettings | None = None, *, demo: bool | None = None, **kwargs: object) -> FastAPI:
    """`demo` overrides `YIMEN_CATALOG_DEMO` (whether an empty database gets the demo catalogue)."""
    spec = SPEC if demo is None else dataclasses.replace(SPEC, on_startup=[demo_hook(demo)])
    return create_service_app(spec, settings, **kwargs)  # type: ignore[arg-type]
