"""Loads the demo catalogue on an empty database (start-up hook), through the same use cases an editor uses,
so every demo item is published and its event flows."""

from __future__ import annotations

import logging
import os

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import service
from services.catalog.demo.items import ITEMS
from services.catalog.demo.projects import PROJECT_TYPES
from services.catalog.demo.reference import (
    DEPARTMENTS,
    INTERMEDIARY_SERVICES,
    LIFE_EVENTS,
    NEGATIVE_LIST,
    SERVICE_POINTS,
)
from services.catalog.domain.access import actor_of
from services.catalog.domain.model import ItemContent
from services.catalog.domain.project_types import ProjectTypeContent
from services.catalog.service import project_types
from services.catalog.store import repo
from services.catalog.store.tables import IntermediaryService, LifeEvent, NegativeListEntry
from shared.principal import ADMIN, Principal
from shared.service import ServiceContext

log = logging.getLogger("yimen.catalog.demo")
LOADER = Principal(subject="demo-loader", kind="staff", roles=frozenset({ADMIN}))


def demo_enabled() -> bool:
    """`YIMEN_CATALOG_DEMO` (default true) decides whether an empty database gets the demo catalogue."""
    return os.environ.get("YIMEN_CATALOG_DEMO", "true").strip().lower() not in {"0", "false", "no", "off", ""}


async def load_demo_data(session: AsyncSession) -> int:
    for dept in DEPARTMENTS:
        await service.upsert_department(session, **dept)
    for point in SERVICE_POINTS:
        await service.upsert_service_point(session, point["code"], {k: v for k, v in point.items() if k != "code"})
        await session.flush()
    for i, event in enumerate(LIFE_EVENTS):
        session.add(LifeEvent(**event, sort_order=i))
    session.add_all(IntermediaryService(**s) for s in INTERMEDIARY_SERVICES)
    codes = {slug: code for slug, (code, _) in ITEMS.items()}
    for entry in NEGATIVE_LIST:
        reqs = [{**r, "item": codes.get(r.get("item", ""))} for r in entry["requirements"]]
        session.add(NegativeListEntry(**{**entry, "requirements": reqs}))
    await session.flush()
    for code, content in ITEMS.values():
        await service.create_item(session, code=code, content=ItemContent.model_validate(content), principal=LOADER)
        await service.submit(session, code=code, principal=LOADER, if_match=None)
        await service.publish_item(session, code=code, principal=LOADER)
    for key, content in PROJECT_TYPES.items():
        await project_types.upsert(session, key=key, content=ProjectTypeContent.model_validate(content),
                                   actor=actor_of(LOADER))
    return len(ITEMS)


def demo_hook(enabled: bool | None = None):  # type: ignore[no-untyped-def]
    async def load_demo(ctx: ServiceContext) -> None:
        if not (demo_enabled() if enabled is None else enabled):
            return
        try:
            async with ctx.db.transaction() as session:
                if not await repo.is_empty(session):
                    return
                count = await load_demo_data(session)
        except IntegrityError:
            # Another replica starting at the same moment loaded it first; its transaction won.
            log.info("catalog: the demo catalogue was loaded by another replica")
            return
        log.info("catalog: loaded the demo catalogue (%d items)", count)

    return load_demo
