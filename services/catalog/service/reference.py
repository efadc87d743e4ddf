"""The catalogue's reference data: departments, the service-point tree, life events, the intermediary-service
list (中介服务清单) and the market-access negative list (市场准入负面清单): public reads and admin writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain.model import PointLevel
from services.catalog.domain.rules import (
    ListedEntry,
    Requirement,
    Verdict,
    check_department,
    check_life_event_name,
    check_negative_entry,
    check_point,
    negative_verdict,
)
from services.catalog.domain.search import query_terms
from services.catalog.events.contracts import (
    DEPARTMENT_UPSERTED,
    SERVICE_POINT_UPSERTED,
    DepartmentUpserted,
    ServicePointUpserted,
)
from services.catalog.store import repo
from services.catalog.store.tables import (
    Department,
    IntermediaryService,
    ItemVersion,
    LifeEvent,
    NegativeListEntry,
    ServicePoint,
)
from shared.errors import NotFound, ValidationProblem, invalid
from shared.messaging import publish
from shared.types import utcnow

# --- departments ------------------------------------------------------------------------------------------


async def departments(session: AsyncSession) -> Sequence[Department]:
    return await repo.departments(session)


async def department(session: AsyncSession, code: str) -> Department:
    d = await repo.get_department(session, code)
    if d is None:
        raise NotFound(f"部门 {code} 不存在。", slug="department-not-found")
    return d


async def put_department(session: AsyncSession, code: str, values: dict[str, Any]) -> Department:
    """An admin's write: the code is checked, then as `upsert_department`."""
    if errors := check_department(code, values.get("credit_code")):
        raise ValidationProblem(errors)
    return await upsert_department(session, code=code, **values)


async def upsert_department(session: AsyncSession, **values: Any) -> Department:
    """Create or update a department and announce it (intake and workflow show its name and phone)."""
    dept = await repo.get_department(session, values["code"])
    if dept is None:
        dept = Department(**values, updated_at=utcnow())
        session.add(dept)
    else:
        for k, v in values.items():
            setattr(dept, k, v)
        dept.updated_at = utcnow()
    await publish(session, DEPARTMENT_UPSERTED, subject=dept.code,
                  data=DepartmentUpserted(code=dept.code, name=dept.name, credit_code=dept.credit_code,
                                          phone=dept.phone, kind=dept.kind or "government_department"))
    await session.flush()
    return dept


# --- service points ---------------------------------------------------------------------------------------


async def service_points(session: AsyncSession, *, level: str | None = None,
                         parent: str | None = None) -> Sequence[ServicePoint]:
    return await repo.service_points(session, level=level, parent=parent)


@dataclass(frozen=True)
class PointDetail:
    point: ServicePoint
    children: list[str]
    items: list[str]


async def service_point(session: AsyncSession, code: str) -> PointDetail:
    """A point, the codes of the points right below it and of the published items it accepts."""
    p = await repo.get_service_point(session, code)
    if p is None:
        raise NotFound(f"服务点 {code} 不存在。", slug="service-point-not-found")
    children = [c.code for c in await repo.service_points(session, parent=code)]
    return PointDetail(point=p, children=children, items=await repo.codes_at_point(session, code))


async def put_service_point(session: AsyncSession, code: str, *, level: PointLevel, parent_code: str | None,
                            values: dict[str, Any]) -> ServicePoint:
    """An admin's write: the point must sit one level below an existing parent (the city centre is the root)."""
    parent = await repo.get_service_point(session, parent_code) if parent_code else None
    if errors := check_point(code, level, parent_code, parent.level if parent else None):
        raise ValidationProblem(errors)
    return await upsert_service_point(session, code, {**values, "level": level, "parent_code": parent_code})


async def upsert_service_point(session: AsyncSession, code: str, values: dict[str, Any]) -> ServicePoint:
    """Create or update a service point and tell the platform its name (timelines show units by name)."""
    row: ServicePoint = await repo.upsert(session, ServicePoint, {"code": code}, {**values, "updated_at": utcnow()})
    await publish(session, SERVICE_POINT_UPSERTED, subject=row.code, data=ServicePointUpserted.model_validate(
        {"code": row.code, "name": row.name, "level": row.level, "parent_code": row.parent_code}))
    return row


# --- life events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifeEventItems:
    event: LifeEvent
    items: list[ItemVersion]


async def life_events(session: AsyncSession) -> list[LifeEventItems]:
    """Every life event (主题事件) with the current published versions of its items."""
    published = await repo.all_published(session)
    return [LifeEventItems(e, [v for v in published if e.name in v.content.get("life_events", [])])
            for e in await repo.life_events(session)]


async def put_life_event(session: AsyncSession, name: str, values: dict[str, Any]) -> LifeEvent:
    if errors := check_life_event_name(name):
        raise ValidationProblem(errors)
    row: LifeEvent = await repo.upsert(session, LifeEvent, {"name": name}, values)
    return row


# --- intermediary services and the negative list ----------------------------------------------------------


async def intermediary_services(session: AsyncSession) -> Sequence[IntermediaryService]:
    return await repo.intermediary_services(session)


async def put_intermediary(session: AsyncSession, code: str, values: dict[str, Any]) -> IntermediaryService:
    if await repo.get_department(session, values["department"]) is None:
        raise invalid("body.department", "unknown_department", f"部门 {values['department']} 不在部门目录中。")
    row: IntermediaryService = await repo.upsert(session, IntermediaryService, {"code": code}, values)
    return row


async def put_negative_entry(session: AsyncSession, code: str, values: dict[str, Any]) -> NegativeListEntry:
    reqs = [Requirement(**r) for r in values.get("requirements", [])]
    errors = check_negative_entry(
        values["category"], reqs, departments=await repo.department_codes(session),
        items=await repo.existing_item_codes(session, [r.item for r in reqs if r.item]))
    if errors:
        raise ValidationProblem(errors)
    row: NegativeListEntry = await repo.upsert(session, NegativeListEntry, {"code": code}, values)
    return row


@dataclass(frozen=True)
class NegativeAnswer:
    query: str | None
    verdict: Verdict
    answer: str
    entries: list[NegativeListEntry]


async def negative_list(session: AsyncSession, q: str | None) -> NegativeAnswer:
    """The whole list, or the answer to “may I open X here?” with the entries the words matched."""
    entries = await repo.negative_list(session)
    hits = list(entries) if q is None else repo.negative_match(entries, list(query_terms(q)) or [q])
    verdict, answer = negative_verdict(q, [
        ListedEntry(title=e.title, category=e.category, approvals=tuple(r["approval"] for r in e.requirements))
        for e in hits])
    return NegativeAnswer(query=q, verdict=verdict, answer=answer, entries=hits)
