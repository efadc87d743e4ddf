"""Public reads of the catalogue: no token needed (published items, guides, flowcharts, lists, open data)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.catalog.api.schemas import (
    DepartmentRead,
    IntermediaryRead,
    ItemRead,
    ItemSummary,
    LifeEventRead,
    NegativeAnswer,
    NegativeEntryRead,
    SearchHit,
    SearchPage,
    ServicePointDetail,
    ServicePointRead,
    VersionInfo,
)
from services.catalog.catalogue import published_payload
from services.catalog.domain import cpsv, flowchart, forms, lifecycle
from services.catalog.domain.model import KIND_NAMES, THEMES, ItemContent
from services.catalog.domain.rules import offered_points
from services.catalog.domain.search import miss_key, query_terms
from services.catalog.store import repo
from services.catalog.store.tables import ItemVersion
from shared.auth import ADMIN, CATALOG_EDITOR, DEPARTMENT_REVIEWER, SUPERVISOR, Principal, require_roles
from shared.bounds import BoundedDate, VersionInt
from shared.db import SessionDep
from shared.errors import NotFound, invalid
from shared.http_errors import problem_responses
from shared.httpcache import app_cache, respond
from shared.pagination import Page, PageDep, decode_cursor, encode_cursor, paginate
from shared.types import utcnow

CITY = ZoneInfo("Asia/Shanghai")

router = APIRouter()

Audience = Annotated[str | None, Query(pattern="^(natural_person|legal_person)$", description="natural_person | legal_person")]
Channel = Annotated[str | None, Query(pattern="^(online|mobile|kiosk|window|post)$")]


def filters(
    audience: Audience = None,
    theme: Annotated[str | None, Query(max_length=40, description=f"One of {', '.join(THEMES)}")] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    service_point: Annotated[str | None, Query(max_length=32, description="Items accepted at this point.")] = None,
    channel: Channel = None,
    zero_visit: Annotated[bool | None, Query(description="Only items needing no visit (零跑动).")] = None,
    life_event: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(pattern="^[0-9]{2}$", description="Item kind code (01 行政许可 …).")] = None,
) -> repo.ItemFilters:
    return repo.ItemFilters(audience=audience, theme=theme, department=department, service_point=service_point,
                            channel=channel, zero_visit=zero_visit, life_event=life_event, kind=kind)


FiltersDep = Annotated[repo.ItemFilters, Depends(filters)]


@router.get("/items", tags=["items"], summary="List published items (事项目录)", response_model=Page[ItemSummary],
            responses=problem_responses(422))
async def list_items(session: SessionDep, page: PageDep, f: FiltersDep) -> Page[ItemSummary]:
    rows, cursor = await paginate(session, repo.published_versions(f), key_columns=[ItemVersion.item_code],
                                  params=page, key_of=lambda v: [v.item_code])
    return Page(items=[ItemSummary.of(v) for v in rows], next_cursor=cursor)


async def public_version(session: SessionDep, code: str, version: int | None) -> ItemVersion:
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


VersionQ = Annotated[VersionInt | None, Query(description="An earlier published version; default the current one.")]


@router.get("/items/{code}", tags=["items"], summary="An item's current published version (or `?version=`)",
            response_model=ItemRead, responses=problem_responses(404, 422))
async def get_item(session: SessionDep, code: str, version: VersionQ = None) -> Response:
    v = await public_version(session, code, version)
    return JSONResponse(ItemRead.of(v).model_dump(mode="json", exclude={"updated_by"}),
                        headers={"ETag": lifecycle.etag(v.item_code, v.version, v.revision)})


@router.get("/items/{code}/versions", tags=["items"], summary="Every published version of an item, oldest first",
            response_model=list[VersionInfo], responses=problem_responses(404))
async def list_versions(session: SessionDep, code: str) -> list[VersionInfo]:
    if await repo.get_item(session, code) is None:
        raise NotFound(f"事项 {code} 不存在。", slug="item-not-found")
    return [VersionInfo.model_validate(v, from_attributes=True) for v in await repo.versions(session, code)
            if v.status in lifecycle.PUBLIC]


NOT_MODIFIED = {304: {"description": "Not modified: the `If-None-Match` tag is still the current one (no body)."}}


def _cache_control(version: int | None) -> str:
    # A named published version never changes (a department's name in it may, rarely); "the current version"
    # changes on publication, so clients revalidate it — and a revalidation costs a 304 from memory.
    return "public, max-age=300" if version is not None else "public, no-cache"


async def _cached(request: Request, key: tuple[Any, ...], version: int | None, media_type: str,
                  render: Any) -> Response:
    cache = app_cache(request, "published")
    entry = cache.get(key)
    if entry is None:
        body = await render()
        if not isinstance(body, bytes):
            body = json.dumps(jsonable_encoder(body), ensure_ascii=False, separators=(",", ":")).encode()
        entry = cache.put(key, body, media_type)
    return respond(request, entry, _cache_control(version))


@router.get("/items/{code}/guide", tags=["items"], summary="The service guide (办事指南) of a published version",
            description="Cached by version: answers carry a strong `ETag` and `Cache-Control`; a request with "
                        "`If-None-Match` of the current tag gets `304` without a body.",
            response_class=JSONResponse, responses={**NOT_MODIFIED, **problem_responses(404, 422)})
async def get_guide(request: Request, session: SessionDep, code: str, version: VersionQ = None) -> Response:
    return await _cached(request, ("guide", code, version), version, "application/json",
                         lambda: _guide(session, code, version))


async def _guide(session: SessionDep, code: str, version: int | None) -> dict[str, Any]:
    v = await public_version(session, code, version)
    c = ItemContent.model_validate(v.content)
    dept = await repo.get_department(session, c.department)
    names = await repo.department_names(session)
    g = c.guide
    tree = [(p.code, p.parent_code) for p in await repo.service_points(session)]
    offered = offered_points(c.service_points, c.excluded_points, tree)
    collect = offered if c.collection_points is None else offered_points(c.collection_points, c.excluded_points, tree)
    return {
        "code": code, "version": v.version, "status": v.status, "name": c.name,
        "kind": c.kind, "kind_name": KIND_NAMES[c.kind],
        "department": {"code": c.department, "name": dept.name if dept else None},
        "summary": g.summary, "legal_basis": g.legal_basis, "accepting_unit": g.accepting_unit,
        "implementing_nature": g.implementing_nature, "audience": c.audience, "conditions": g.conditions,
        "case_kind": c.case_kind, "time_limit": {"statutory": c.statutory_limit.model_dump(),
                                                 "promised": c.promised_limit.model_dump()},
        "visits_required": c.visits_required, "fully_online": c.fully_online, "channels": c.channels,
        "handling_area": g.handling_area, "service_points": c.service_points,
        "excluded_points": c.excluded_points, "offered_at": offered, "collect_at": collect,
        "process": [{**s.model_dump(), "department_names": [names.get(d, d) for d in s.departments]}
                    for s in c.process.steps],
        "special_procedures": [s.model_dump() for s in c.special_procedures],
        "materials": [m.model_dump() for m in c.materials],
        "forms": [f.model_dump() for f in g.forms], "samples": [s.model_dump() for s in g.samples],
        "common_mistakes": g.common_mistakes,
        # Amounts stay decimal strings ("20.00"), never floats.
        "fees": c.fees.model_dump(mode="json"), "intermediary_services": [i.model_dump() for i in c.intermediary_services],
        "result": c.result.model_dump(), "accountability": g.accountability,
        "consultation": [x.model_dump() for x in g.consultation], "complaint": [x.model_dump() for x in g.complaint],
        "office_hours": g.office_hours, "address": g.address, "transit": g.transit, "status_query": g.status_query,
        "flowchart": {"svg": f"/catalog/v1/items/{code}/flowchart.svg?version={v.version}",
                      "mermaid": f"/catalog/v1/items/{code}/flowchart.mmd?version={v.version}"},
        "published_at": v.published_at,
    }


@router.get("/items/{code}/flowchart.svg", tags=["items"], summary="The process flowchart as SVG",
            description="Cached by version, with `ETag`; `If-None-Match` of the current tag gets `304`.",
            response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}, **NOT_MODIFIED,
                                                **problem_responses(404)})
async def get_flowchart_svg(request: Request, session: SessionDep, code: str, version: VersionQ = None) -> Response:
    async def render() -> bytes:
        v = await public_version(session, code, version)
        return flowchart.svg(code, v.version, ItemContent.model_validate(v.content),
                             await repo.department_names(session)).encode()

    return await _cached(request, ("svg", code, version), version, "image/svg+xml; charset=utf-8", render)


@router.get("/items/{code}/flowchart.mmd", tags=["items"], summary="The process flowchart as Mermaid text",
            description="Cached by version, with `ETag`; `If-None-Match` of the current tag gets `304`.",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}, **NOT_MODIFIED,
                                                **problem_responses(404)})
async def get_flowchart_mermaid(request: Request, session: SessionDep, code: str, version: VersionQ = None) -> Response:
    async def render() -> bytes:
        v = await public_version(session, code, version)
        return flowchart.mermaid(ItemContent.model_validate(v.content), await repo.department_names(session)).encode()

    return await _cached(request, ("mmd", code, version), version, "text/plain; charset=utf-8", render)


@router.get("/items/{code}/application-form.html", tags=["items"],
            summary="The application form to print: blank, or a filled sample with `?sample=true`",
            response_class=Response, responses={200: {"content": {"text/html": {}}}, **problem_responses(404)})
async def get_application_form(session: SessionDep, code: str, version: VersionQ = None, sample: bool = False) -> Response:
    v = await public_version(session, code, version)
    html = forms.application_form_html(code, v.version, ItemContent.model_validate(v.content), sample=sample)
    return Response(html, media_type="text/html; charset=utf-8")


@router.get("/items/{code}/cpsv", tags=["open data"], summary="The item as CPSV-AP JSON-LD",
            responses={200: {"content": {"application/ld+json": {}}}, **problem_responses(404)})
async def get_cpsv(request: Request, session: SessionDep, code: str, version: VersionQ = None) -> Response:
    v = await public_version(session, code, version)
    c = ItemContent.model_validate(v.content)
    dept = await repo.get_department(session, c.department)
    doc = cpsv.public_service(
        base=str(request.base_url).rstrip("/") + "/catalog/v1", code=code, version=v.version, item=c,
        department={"code": c.department, "name": dept.name if dept else "", "credit_code": dept.credit_code or ""
                    if dept else ""},
        published_at=v.published_at.isoformat() if v.published_at else None,
    )
    return JSONResponse(doc, media_type="application/ld+json")


@router.get("/search", tags=["search"], summary="Search published items in Chinese (“我想开饭店”)",
            response_model=SearchPage, responses=problem_responses(422))
async def search_items(
    session: SessionDep, f: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="What the person wants, in their words.")],
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchPage:
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
    hits = [SearchHit(score=s, matched=m, item=ItemSummary.of(v)) for v, s, m in rows[:limit]]
    return SearchPage(query=q, terms=list(terms), items=hits,
                      next_cursor=encode_cursor([offset + limit]) if len(rows) > limit else None)


class SearchMissRead(BaseModel):
    terms: str = Field(description="The words typed (segmented, sorted; digits and Latin letters dropped).")
    searches: int
    last_on: date


@router.get("/search/misses", tags=["search"], response_model=list[SearchMissRead],
            summary="Searches that found nothing, most frequent first (staff)",
            description="Where people get stuck before they even find the item (卡点分析): each wording that found "
                        "nothing, with how often and when last. No person, no address, no raw query is kept.",
            responses=problem_responses(401, 403, 422))
async def search_misses(
    session: SessionDep,
    start: Annotated[BoundedDate, Query(alias="from")],
    end: Annotated[BoundedDate, Query(alias="to")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    _: Principal = require_roles(ADMIN, CATALOG_EDITOR, SUPERVISOR, DEPARTMENT_REVIEWER),
) -> list[SearchMissRead]:
    if end < start:
        raise invalid("query.to", "order", "`to` must not be before `from`.")
    if (end - start).days > 366:
        raise invalid("query.to", "max_range", "At most 366 days.")
    return [SearchMissRead(terms=r.terms, searches=int(r.searches), last_on=r.last_on)
            for r in await repo.search_misses(session, start=start, end=end, limit=limit)]


@router.get("/departments", tags=["organisation"], summary="Departments of the city", response_model=list[DepartmentRead])
async def list_departments(session: SessionDep) -> list[DepartmentRead]:
    return [DepartmentRead.model_validate(d) for d in await repo.departments(session)]


@router.get("/departments/{code}", tags=["organisation"], summary="One department", response_model=DepartmentRead,
            responses=problem_responses(404))
async def get_department(session: SessionDep, code: str) -> DepartmentRead:
    d = await repo.get_department(session, code)
    if d is None:
        raise NotFound(f"部门 {code} 不存在。", slug="department-not-found")
    return DepartmentRead.model_validate(d)


@router.get("/service-points", tags=["organisation"], summary="Service points (city centre, 镇街, 村居)",
            response_model=list[ServicePointRead], responses=problem_responses(422))
async def list_service_points(
    session: SessionDep,
    level: Annotated[str | None, Query(pattern="^(city|town|village)$")] = None,
    parent: Annotated[str | None, Query(max_length=32, description="Children of this point.")] = None,
) -> list[ServicePointRead]:
    return [ServicePointRead.model_validate(p) for p in await repo.service_points(session, level=level, parent=parent)]


@router.get("/service-points/{code}", tags=["organisation"], summary="A service point, its children and the items it accepts",
            response_model=ServicePointDetail, responses=problem_responses(404))
async def get_service_point(session: SessionDep, code: str) -> ServicePointDetail:
    p = await repo.get_service_point(session, code)
    if p is None:
        raise NotFound(f"服务点 {code} 不存在。", slug="service-point-not-found")
    children = [c.code for c in await repo.service_points(session, parent=code)]
    items = await repo.codes_at_point(session, code)
    return ServicePointDetail(**ServicePointRead.model_validate(p).model_dump(), children=children, items=items)


@router.get("/life-events", tags=["organisation"], summary="Life events (主题事件) and their published items",
            response_model=list[LifeEventRead])
async def list_life_events(session: SessionDep) -> list[LifeEventRead]:
    published = await repo.all_published(session)
    return [
        LifeEventRead(name=e.name, description=e.description, audience=e.audience,
                      items=[ItemSummary.of(v) for v in published if e.name in v.content.get("life_events", [])])
        for e in await repo.life_events(session)
    ]


@router.get("/intermediary-services", tags=["lists"], summary="Intermediary-service list (中介服务清单)",
            response_model=list[IntermediaryRead])
async def list_intermediaries(session: SessionDep) -> list[IntermediaryRead]:
    return [IntermediaryRead.model_validate(s) for s in await repo.intermediary_services(session)]


@router.get("/negative-list", tags=["lists"], summary="Market-access negative list; `?q=` asks “may I open X here?”",
            response_model=NegativeAnswer, responses=problem_responses(422))
async def negative_list(
    session: SessionDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="e.g. 开饭店, 放贷")] = None,
) -> NegativeAnswer:
    entries = await repo.negative_list(session)
    if q is None:
        return NegativeAnswer(query=None, verdict="all", answer="市场准入负面清单全部条目。",
                              entries=[NegativeEntryRead.model_validate(e) for e in entries])
    words = list(query_terms(q)) or [q]
    hits = repo.negative_match(entries, words)
    prohibited = [e for e in hits if e.category == "prohibited"]
    if prohibited:
        verdict, answer = "prohibited", "该经营活动属于禁止准入事项：" + "；".join(e.title for e in prohibited)
    elif hits:
        needs = [r["approval"] for e in hits for r in e.requirements]
        verdict, answer = "permitted_with_approval", "可以经营，但须先取得：" + "、".join(dict.fromkeys(needs))
    else:
        verdict, answer = "not_listed", "负面清单以外的行业、领域，各类市场主体可依法平等进入。"
    return NegativeAnswer(query=q, verdict=verdict, answer=answer,
                          entries=[NegativeEntryRead.model_validate(e) for e in hits])


@router.get("/open/catalogue.json", tags=["open data"], summary="The whole published catalogue as one dataset")
async def open_catalogue(session: SessionDep) -> Response:
    points = await repo.service_points(session)
    items = [published_payload(v, points).model_dump(mode="json") | {"status": v.status}
             for v in await repo.all_published(session)]
    body = {
        "title": "罗定市政务服务事项目录", "publisher": "罗定市政务服务数据管理局", "licence": "CC-BY-4.0",
        "generated_at": utcnow().isoformat(),
        "departments": [DepartmentRead.model_validate(d).model_dump() for d in await repo.departments(session)],
        "service_points": [ServicePointRead.model_validate(p).model_dump() for p in await repo.service_points(session)],
        "life_events": [{"name": e.name, "description": e.description, "audience": e.audience}
                        for e in await repo.life_events(session)],
        "intermediary_services": [IntermediaryRead.model_validate(s).model_dump()
                                  for s in await repo.intermediary_services(session)],
        "negative_list": [NegativeEntryRead.model_validate(e).model_dump() for e in await repo.negative_list(session)],
        "items": items,
    }
    return JSONResponse(body, headers={"Content-Disposition": 'attachment; filename="catalogue.json"'})
