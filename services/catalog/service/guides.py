"""Public reads of the catalogue: published items, their service guides (办事指南), flowcharts, forms, open
data and search. No token; nothing here changes an item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain import cpsv, flowchart, forms, lifecycle
from services.catalog.domain.model import KIND_NAMES, ItemContent
from services.catalog.domain.rules import check_report_window, offered_points
from services.catalog.domain.search import ItemFilters, miss_key, query_terms
from services.catalog.service.items import published_payload
from services.catalog.store import repo
from services.catalog.store.tables import ItemVersion
from shared.errors import NotFound, ValidationProblem, invalid
from shared.pagination import PageParams, decode_cursor, encode_cursor
from shared.types import utcnow

#: Search misses are counted per day of the city's calendar.
CITY = ZoneInfo("Asia/Shanghai")
PREFIX = "/catalog/v1"


async def list_published(session: AsyncSession, f: ItemFilters, page: PageParams) -> tuple[list[ItemVersion], str | None]:
    """One page of the current published versions matching the filters, by item code."""
    return await repo.page_of_published(session, f, page)


async def public_version(session: AsyncSession, code: str, version: int | None = None) -> ItemVersion:
    """A published (or formerly published) version; the current one when `version` is None."""
    item = await repo.get_item(session, code)
    if item is None:
        raise NotFound(f"事项 {code} 不存在。", slug="item-not-found")
    if version is None:
        if item.published_version is None:
            raise NotFound(f"事项 {code} 当前没有已发布的版本。", slug="not-published")
        version = item.published_version
    v = await repo.get_version(session, code, version)
    if v is None or v.status not in lifecycle.PUBLIC:
        raise NotFound(f"事项 {code} 没有已发布的第 {version} 版。", slug="version-not-found")
    return v


async def public_versions(session: AsyncSession, code: str) -> list[ItemVersion]:
    """Every version the public may read, oldest first."""
    if await repo.get_item(session, code) is None:
        raise NotFound(f"事项 {code} 不存在。", slug="item-not-found")
    return [v for v in await repo.versions(session, code) if v.status in lifecycle.PUBLIC]


def _certificates(code: str, c: ItemContent, names: dict[str, str],
                  issuers: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The certificates (证照) an applicant must already hold, one per type in the order the materials ask
    them, each with the materials that ask it and the published items that issue it (this item aside)."""
    out: dict[str, dict[str, Any]] = {}
    for m in c.materials:
        if not m.certificate_type:
            continue
        entry = out.setdefault(m.certificate_type, {
            "certificate_type": m.certificate_type, "name": names.get(m.certificate_type, m.name),
            "necessity": m.necessity, "materials": [], "issued_by": [],
        })
        entry["materials"].append(m.code)
        if m.necessity == "required":
            entry["necessity"] = "required"
    for type_code, item_code, item_name in issuers:
        if type_code in out and item_code != code:
            out[type_code]["issued_by"].append({"code": item_code, "name": item_name})
    return list(out.values())


async def guide(session: AsyncSession, code: str, version: int | None) -> dict[str, Any]:
    """The whole service guide of a published version, as the `Guide` response model reads it: the editor's
    guide text with the departments named, the points resolved through today's tree, the form fields and the
    certificates the applicant must already hold with the items that issue them."""
    v = await public_version(session, code, version)
    c = ItemContent.model_validate(v.content)
    dept = await repo.get_department(session, c.department)
    names = await repo.department_names(session)
    g = c.guide
    tree = [(p.code, p.parent_code) for p in await repo.service_points(session)]
    offered = offered_points(c.service_points, c.excluded_points, tree)
    collect = offered if c.collection_points is None else offered_points(c.collection_points, c.excluded_points, tree)
    types = list(dict.fromkeys(m.certificate_type for m in c.materials if m.certificate_type))
    certificates = _certificates(code, c, await repo.certificate_type_names(session, types),
                                 await repo.issuers(session, types))
    return {
        "code": code, "version": v.version, "status": v.status, "name": c.name,
        "kind": c.kind, "kind_name": KIND_NAMES[c.kind],
        "department": {"code": c.department, "name": dept.name if dept else None},
        "summary": g.summary, "legal_basis": g.legal_basis, "accepting_unit": g.accepting_unit,
        "implementing_nature": g.implementing_nature, "audience": c.audience, "conditions": g.conditions,
        "case_kind": c.case_kind, "time_limit": {"statutory": c.statutory_limit, "promised": c.promised_limit},
        "visits_required": c.visits_required, "fully_online": c.fully_online,
        "min_assurance_level": c.min_assurance_level, "channels": c.channels,
        "handling_area": g.handling_area, "service_points": c.service_points,
        "excluded_points": c.excluded_points, "offered_at": offered, "collect_at": collect,
        "process": [{**s.model_dump(), "department_names": [names.get(d, d) for d in s.departments]}
                    for s in c.process.steps],
        "special_procedures": c.special_procedures,
        "form_fields": c.form_fields,
        "materials": c.materials,
        "certificates": certificates,
        "forms": g.forms, "samples": g.samples, "common_mistakes": g.common_mistakes,
        "fees": c.fees, "intermediary_services": c.intermediary_services,
        "result": c.result, "accountability": g.accountability,
        "consultation": g.consultation, "complaint": g.complaint,
        "office_hours": g.office_hours, "address": g.address, "transit": g.transit, "status_query": g.status_query,
        "flowchart": {"svg": f"{PREFIX}/items/{code}/flowchart.svg?version={v.version}",
                      "mermaid": f"{PREFIX}/items/{code}/flowchart.mmd?version={v.version}"},
        "published_at": v.published_at,
    }


async def flowchart_svg(session: AsyncSession, code: str, version: int | None) -> str:
    v = await public_version(session, code, version)
    return flowchart.svg(code, v.version, ItemContent.model_validate(v.content), await repo.department_names(session))


async def flowchart_mermaid(session: AsyncSession, code: str, version: int | None) -> str:
    v = await public_version(session, code, version)
    return flowchart.mermaid(ItemContent.model_validate(v.content), await repo.department_names(session))


async def application_form(session: AsyncSession, code: str, version: int | None, *, sample: bool) -> str:
    v = await public_version(session, code, version)
    return forms.application_form_html(code, v.version, ItemContent.model_validate(v.content), sample=sample)


async def cpsv_document(session: AsyncSession, code: str, version: int | None, *, base: str) -> dict[str, Any]:
    """The version as CPSV-AP JSON-LD; `base` is the catalog's public URL (identifiers are IRIs under it)."""
    v = await public_version(session, code, version)
    c = ItemContent.model_validate(v.content)
    dept = await repo.get_department(session, c.department)
    return cpsv.public_service(
        base=base, code=code, version=v.version, item=c,
        department={"code": c.department, "name": dept.name if dept else "",
                    "credit_code": (dept.credit_code or "") if dept else ""},
        published_at=v.published_at.isoformat() if v.published_at else None,
    )


@dataclass(frozen=True)
class SearchResult:
    terms: list[str]
    hits: list[tuple[ItemVersion, int, list[str]]]
    next_cursor: str | None


async def search(session: AsyncSession, q: str, f: ItemFilters, *, cursor: str | None, limit: int) -> SearchResult:
    """Published items ranked for a Chinese query; a first page with no hit is counted by its words (卡点分析)."""
    offset = 0
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], int) or values[0] < 0:
            raise invalid("query.cursor", "cursor", "The cursor is not one this list issued.")
        offset = values[0]
    terms = query_terms(q)
    if not terms:
        raise invalid("query.q", "no_terms", "查询只包含停用词，请换个说法，例如“开饭店”。")
    rows = await repo.search(session, terms, f, offset=offset, limit=limit + 1)
    if not rows and not offset and (key := miss_key(terms)):
        # The evidence for the next round of simplification: what people look for and do not find.
        now = utcnow()
        await repo.record_search_miss(session, day=now.astimezone(CITY).date(), terms=key, at=now)
    return SearchResult(terms=list(terms), hits=rows[:limit],
                        next_cursor=encode_cursor([offset + limit]) if len(rows) > limit else None)


async def search_misses(session: AsyncSession, *, start: date, end: date, limit: int) -> list[Any]:
    """The wordings that found nothing most often in [start, end] (rows of terms, searches, last_on)."""
    if errors := check_report_window(start, end):
        raise ValidationProblem(errors)
    return await repo.search_misses(session, start=start, end=end, limit=limit)


async def open_catalogue(session: AsyncSession) -> dict[str, Any]:
    """The whole published catalogue with its reference data, as one open dataset."""
    points = await repo.service_points(session)
    return {
        "title": "罗定市政务服务事项目录", "publisher": "罗定市政务服务数据管理局", "licence": "CC-BY-4.0",
        "generated_at": utcnow(),
        "departments": await repo.departments(session),
        "service_points": points,
        "life_events": await repo.life_events(session),
        "intermediary_services": await repo.intermediary_services(session),
        "negative_list": await repo.negative_list(session),
        "items": [published_payload(v, points).model_dump(mode="json") | {"status": v.status}
                  for v in await repo.all_published(session)],
    }

