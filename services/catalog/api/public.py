"""Public reads of the catalogue: no token needed (published items, guides, flowcharts, lists, open data).
Thin: parse, call `service`, render."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import service
from services.catalog.api.docs import CACHED, ETAG, ITEM_CODE_EXAMPLES, NOT_MODIFIED, header, ok
from services.catalog.api.schemas import (
    DepartmentRead,
    Guide,
    IntermediaryRead,
    ItemRead,
    ItemSummary,
    LifeEventRead,
    NegativeAnswer,
    NegativeEntryRead,
    SearchHit,
    SearchMissRead,
    SearchPage,
    ServicePointDetail,
    ServicePointRead,
    VersionInfo,
)
from services.catalog.domain import lifecycle
from services.catalog.domain.model import THEMES, Audience, Channel, Kind, PointLevel, Theme
from services.catalog.events.contracts import ItemPublished
from shared.auth import ADMIN, CATALOG_EDITOR, DEPARTMENT_REVIEWER, SUPERVISOR, Principal, require_roles
from shared.bounds import BoundedDate, VersionInt
from shared.db import SessionDep
from shared.fastpath import Answer, FastGet
from shared.http_errors import problem_responses
from shared.httpcache import app_cache, respond
from shared.pagination import Page, PageDep

router = APIRouter()
#: These reads need no token: declared with an empty security requirement, so no client sends one.
PUBLIC: dict[str, Any] = {"security": []}

ITEM_CODE_MAX = 40
ItemCode = Annotated[str, Path(description="The item's 实施编码 (31 characters).", max_length=ITEM_CODE_MAX,
                               openapi_examples=ITEM_CODE_EXAMPLES)]


def filters(
    audience: Annotated[Audience | None, Query(description="Who may apply.")] = None,
    theme: Annotated[Theme | None, Query(description="A theme (主题分类): " + ", ".join(
        f"{k} {v}" for k, v in THEMES.items()))] = None,
    department: Annotated[str | None, Query(max_length=32, description="A department code (LD-SCJGJ …).")] = None,
    service_point: Annotated[str | None, Query(max_length=32, description="Items accepted at this point.")] = None,
    channel: Annotated[Channel | None, Query(description="Items offered through this channel.")] = None,
    zero_visit: Annotated[bool | None, Query(description="Only items needing no visit (零跑动).")] = None,
    life_event: Annotated[str | None, Query(max_length=100, description="A life event's name (开办餐饮店 …).")] = None,
    kind: Annotated[Kind | None, Query(description="Item kind code (01 行政许可 … 20 公共服务).")] = None,
) -> service.ItemFilters:
    return service.ItemFilters(audience=audience, theme=theme, department=department, service_point=service_point,
                               channel=channel, zero_visit=zero_visit, life_event=life_event, kind=kind)


FiltersDep = Annotated[service.ItemFilters, Depends(filters)]
VersionQ = Annotated[VersionInt | None, Query(description="An earlier published version; default the current one.")]


@router.get("/items", openapi_extra=PUBLIC, tags=["items"], summary="List published items (事项目录)", response_model=Page[ItemSummary],
            description="The current published version of every item matching all the filters given, by item code, "
                        "in cursor pages (pass `next_cursor` back as `cursor`).",
            responses=problem_responses(422))
async def list_items(session: SessionDep, page: PageDep, f: FiltersDep) -> Page[ItemSummary]:
    rows, cursor = await service.list_published(session, f, page)
    return Page(items=[ItemSummary.of(v) for v in rows], next_cursor=cursor)


@router.get("/items/{code}", openapi_extra=PUBLIC, tags=["items"], summary="An item's current published version (or `?version=`)",
            description="Everything the editor wrote about the version (materials, form fields, process, result, "
                        "fees, guide text). For the citizen-facing guide with names resolved, read `/guide`.",
            response_model=ItemRead, responses={**ok("The published version.", ETAG), **problem_responses(404, 422)})
async def get_item(session: SessionDep, code: ItemCode, version: VersionQ = None) -> Response:
    v = await service.public_version(session, code, version)
    return JSONResponse(ItemRead.of(v).model_dump(mode="json", exclude={"updated_by"}),
                        headers={"ETag": lifecycle.etag(v.item_code, v.version, v.revision)})


@router.get("/items/{code}/versions", openapi_extra=PUBLIC, tags=["items"], summary="Every published version of an item, oldest first",
            description="Current, superseded and withdrawn versions with their dates; drafts are never listed here.",
            response_model=list[VersionInfo], responses=problem_responses(404))
async def list_versions(session: SessionDep, code: ItemCode) -> list[VersionInfo]:
    return [VersionInfo.model_validate(v, from_attributes=True) for v in await service.public_versions(session, code)]


def _cache_control(version: int | None) -> str:
    # A named published version never changes (a department's name in it may, rarely); "the current version"
    # changes on publication, so clients revalidate it — and a revalidation costs a 304 from memory.
    return "public, max-age=300" if version is not None else "public, no-cache"


async def _cached(request: Request, key: tuple[Any, ...], version: int | None, media_type: str,
                  render: Callable[[AsyncSession], Awaitable[bytes]]) -> Response:
    """The rendered body from the cache, or rendered now in a transaction of its own: a hit opens no session
    (these routes take no `SessionDep`, whose set-up and commit cost more than the rest of a hit)."""
    cache = app_cache(request, "published")
    entry = cache.get(key)
    if entry is None:
        async with request.app.state.db.transaction() as session:
            body = await render(session)
        entry = cache.put(key, body, media_type)
    return respond(request, entry, _cache_control(version))


def _fast_cached(kind: str) -> Answer:
    """A cached route's answer without the router (shared/fastpath.py) when its current version is in the cache:
    the same `respond` as `_cached`. A `?version=`, any other query, a miss: the route's."""

    async def answer(request: Request, params: dict[str, str]) -> Response | None:
        code = params["code"]
        if request.scope["query_string"] or len(code) > ITEM_CODE_MAX:
            return None
        entry = app_cache(request, "published").get((kind, code, None), count_miss=False)
        return None if entry is None else respond(request, entry, _cache_control(None))

    return answer


def _json(body: Any) -> bytes:
    return json.dumps(jsonable_encoder(body), ensure_ascii=False, separators=(",", ":")).encode()


@router.get("/items/{code}/guide", openapi_extra=PUBLIC, tags=["items"], summary="The service guide (办事指南) of a published version",
            description="What a citizen reads before applying: conditions, materials, the application form's fields "
                        "(`form_fields`), the certificates they must already hold with the items that issue them "
                        "(`certificates`), process with department names, time limits, fees, points where it is "
                        "handled and where results are collected, contacts.\n\n"
                        "Cached by version: answers carry a strong `ETag` and `Cache-Control`; a request with "
                        "`If-None-Match` of the current tag gets `304` without a body.",
            response_model=Guide,
            responses={**ok("The guide.", CACHED), **NOT_MODIFIED, **problem_responses(404, 422)})
async def get_guide(request: Request, code: ItemCode, version: VersionQ = None) -> Response:
    async def render(session: AsyncSession) -> bytes:
        return _json(Guide.model_validate(await service.guide(session, code, version)).model_dump(mode="json"))

    return await _cached(request, ("guide", code, version), version, "application/json", render)


@router.get("/items/{code}/flowchart.svg", openapi_extra=PUBLIC, tags=["items"], summary="The process flowchart as SVG",
            description="Cached by version, with `ETag`; `If-None-Match` of the current tag gets `304`.",
            response_class=Response,
            responses={**ok("The flowchart.", CACHED, content={"image/svg+xml": {"schema": {"type": "string"}}}),
                       **NOT_MODIFIED, **problem_responses(404)})
async def get_flowchart_svg(request: Request, code: ItemCode, version: VersionQ = None) -> Response:
    async def render(session: AsyncSession) -> bytes:
        return (await service.flowchart_svg(session, code, version)).encode()

    return await _cached(request, ("svg", code, version), version, "image/svg+xml; charset=utf-8", render)


@router.get("/items/{code}/flowchart.mmd", openapi_extra=PUBLIC, tags=["items"], summary="The process flowchart as Mermaid text",
            description="Cached by version, with `ETag`; `If-None-Match` of the current tag gets `304`.",
            response_class=Response,
            responses={**ok("The flowchart.", CACHED, content={"text/plain": {"schema": {"type": "string"}}}),
                       **NOT_MODIFIED, **problem_responses(404)})
async def get_flowchart_mermaid(request: Request, code: ItemCode, version: VersionQ = None) -> Response:
    async def render(session: AsyncSession) -> bytes:
        return (await service.flowchart_mermaid(session, code, version)).encode()

    return await _cached(request, ("mmd", code, version), version, "text/plain; charset=utf-8", render)


#: The published reads a citizen's browser asks most, answered from the cache without the router.
FAST = [FastGet(router, get_guide, _fast_cached("guide")), FastGet(router, get_flowchart_svg, _fast_cached("svg")),
        FastGet(router, get_flowchart_mermaid, _fast_cached("mmd"))]


@router.get("/items/{code}/application-form.html", openapi_extra=PUBLIC, tags=["items"],
            summary="The application form to print: blank, or a filled sample with `?sample=true`",
            description="Rendered from the version's form fields and materials, so the printed form always "
                        "matches the published version.",
            response_class=Response,
            responses={200: {"description": "The form as HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
                       **problem_responses(404, 422)})
async def get_application_form(session: SessionDep, code: ItemCode, version: VersionQ = None,
                               sample: Annotated[bool, Query(description="Fill it with sample values.")] = False,
                               ) -> Response:
    html = await service.application_form(session, code, version, sample=sample)
    return Response(html, media_type="text/html; charset=utf-8")


class CpsvText(BaseModel):
    language: str = Field(alias="@language", examples=["zh-CN"])
    value: str = Field(alias="@value")


class CpsvPublicService(BaseModel):
    """A CPSV-AP 3 `PublicService` (JSON-LD); the main terms, others may follow."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    context: dict[str, Any] | str = Field(alias="@context", description="The JSON-LD context (CPSV-AP terms).")
    id: str = Field(alias="@id", description="The item's IRI with its version.")
    type: Literal["PublicService"] = Field(alias="@type")
    identifier: str = Field(description="The item's 实施编码.")
    name: CpsvText
    description: CpsvText
    keyword: list[str]
    language: str
    hasCompetentAuthority: dict[str, Any] = Field(description="The department, a `PublicOrganisation`.")


class OpenLifeEvent(BaseModel):
    name: str
    description: str | None = None
    audience: str | list[str] | None = None


class PublishedItemStatus(ItemPublished):
    status: str = Field(description="`published`, `superseded` or `withdrawn`.")


class OpenCatalogue(BaseModel):
    """The open dataset: the catalogue's published items and its reference data (CC-BY-4.0)."""

    title: str
    publisher: str
    licence: str
    generated_at: datetime
    departments: list[DepartmentRead]
    service_points: list[ServicePointRead]
    life_events: list[OpenLifeEvent]
    intermediary_services: list[IntermediaryRead]
    negative_list: list[NegativeEntryRead]
    items: list[PublishedItemStatus]


CPSV_SCHEMA = {"$ref": "#/components/schemas/CpsvPublicService"}


class LdJSONResponse(JSONResponse):
    media_type = "application/ld+json"


@router.get("/items/{code}/cpsv", response_model=CpsvPublicService, response_class=LdJSONResponse, openapi_extra=PUBLIC, tags=["open data"], summary="The item as CPSV-AP JSON-LD",
            description="The EU Core Public Service Vocabulary (CPSV-AP 3), for open-data portals.",
            responses={200: {"description": "A `PublicService` JSON-LD document.",
                             "content": {"application/ld+json": {"schema": CPSV_SCHEMA}}},
                       **problem_responses(404, 422)})
async def get_cpsv(request: Request, session: SessionDep, code: ItemCode, version: VersionQ = None) -> Response:
    doc = await service.cpsv_document(session, code, version, base=str(request.base_url).rstrip("/") + "/catalog/v1")
    return LdJSONResponse(doc)


@router.get("/search", openapi_extra=PUBLIC, tags=["search"], summary="Search published items in Chinese (“我想开饭店”)",
            description="Segments the query (jieba), drops words of intent (我想, 怎么办 …), adds the catalogue's "
                        "synonyms and ranks items by where the words hit (name, keyword, life event, theme, "
                        "department). Takes the same filters as `/items`. A first page with no hit is counted by "
                        "its words for `/search/misses`.",
            response_model=SearchPage, responses=problem_responses(422))
async def search_items(
    session: SessionDep, f: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="What the person wants, in their words.",
                            openapi_examples={"restaurant": {"summary": "Open a restaurant", "value": "我想开饭店"}})],
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchPage:
    found = await service.search(session, q, f, cursor=cursor, limit=limit)
    return SearchPage(query=q, terms=found.terms, next_cursor=found.next_cursor,
                      items=[SearchHit(score=s, matched=m, item=ItemSummary.of(v)) for v, s, m in found.hits])


@router.get("/search/misses", tags=["search"], response_model=list[SearchMissRead],
            summary="Searches that found nothing, most frequent first (staff)",
            description="Where people get stuck before they even find the item (卡点分析): each wording that found "
                        "nothing, with how often and when last. No person, no address, no raw query is kept. "
                        "Needs admin, catalog_editor, supervisor or department_reviewer.",
            responses=problem_responses(401, 403, 422))
async def search_misses(
    session: SessionDep,
    start: Annotated[BoundedDate, Query(alias="from", description="First day (YYYY-MM-DD), inclusive.")],
    end: Annotated[BoundedDate, Query(alias="to", description="Last day, inclusive; at most 366 days after `from`.")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    _: Principal = require_roles(ADMIN, CATALOG_EDITOR, SUPERVISOR, DEPARTMENT_REVIEWER),
) -> list[SearchMissRead]:
    return [SearchMissRead(terms=r.terms, searches=int(r.searches), last_on=r.last_on)
            for r in await service.search_misses(session, start=start, end=end, limit=limit)]


@router.get("/departments", openapi_extra=PUBLIC, tags=["organisation"], summary="Departments of the city",
            description="Every department with its credit code and public contacts, by code.",
            response_model=list[DepartmentRead])
async def list_departments(session: SessionDep) -> list[DepartmentRead]:
    return [DepartmentRead.model_validate(d) for d in await service.departments(session)]


@router.get("/departments/{code}", openapi_extra=PUBLIC, tags=["organisation"], summary="One department", response_model=DepartmentRead,
            responses=problem_responses(404))
async def get_department(
    session: SessionDep,
    code: Annotated[str, Path(max_length=32, openapi_examples={"market": {"summary": "罗定市市场监督管理局",
                                                                          "value": "LD-SCJGJ"}})],
) -> DepartmentRead:
    return DepartmentRead.model_validate(await service.department(session, code))


@router.get("/service-points", openapi_extra=PUBLIC, tags=["organisation"], summary="Service points (city centre, 镇街, 村居)",
            description="The three-level service-point tree, by code; narrow it to one level or to the children "
                        "of one point.",
            response_model=list[ServicePointRead], responses=problem_responses(422))
async def list_service_points(
    session: SessionDep,
    level: Annotated[PointLevel | None, Query(description="Only points of this level.")] = None,
    parent: Annotated[str | None, Query(max_length=32, description="Children of this point.")] = None,
) -> list[ServicePointRead]:
    return [ServicePointRead.model_validate(p) for p in await service.service_points(session, level=level, parent=parent)]


@router.get("/service-points/{code}", openapi_extra=PUBLIC, tags=["organisation"],
            summary="A service point, its children and the items it accepts",
            response_model=ServicePointDetail, responses=problem_responses(404))
async def get_service_point(
    session: SessionDep,
    code: Annotated[str, Path(max_length=32, openapi_examples={"centre": {"summary": "罗定市政务服务中心",
                                                                          "value": "LD-CENTRE"}})],
) -> ServicePointDetail:
    d = await service.service_point(session, code)
    return ServicePointDetail(**ServicePointRead.model_validate(d.point).model_dump(), children=d.children,
                              items=d.items)


@router.get("/life-events", openapi_extra=PUBLIC, tags=["organisation"], summary="Life events (主题事件) and their published items",
            description="What a person goes through (开办餐饮店, 新生儿出生 …) with every item it involves.",
            response_model=list[LifeEventRead])
async def list_life_events(session: SessionDep) -> list[LifeEventRead]:
    return [LifeEventRead.model_validate({"name": e.event.name, "description": e.event.description,
                                          "audience": e.event.audience,
                                          "items": [ItemSummary.of(v) for v in e.items]})
            for e in await service.life_events(session)]


@router.get("/intermediary-services", openapi_extra=PUBLIC, tags=["lists"], summary="Intermediary-service list (中介服务清单)",
            description="The only intermediary services an item may ask an applicant to obtain, each with its "
                        "legal basis.",
            response_model=list[IntermediaryRead])
async def list_intermediaries(session: SessionDep) -> list[IntermediaryRead]:
    return [IntermediaryRead.model_validate(s) for s in await service.intermediary_services(session)]


@router.get("/negative-list", openapi_extra=PUBLIC, tags=["lists"], summary="Market-access negative list; `?q=` asks “may I open X here?”",
            description="Without `q`, every active entry (`verdict: all`). With `q`, the entries whose keywords "
                        "match and a verdict: `prohibited`, `permitted_with_approval` (the answer lists the "
                        "approvals to obtain first) or `not_listed` (free to enter, 非禁即入).",
            response_model=NegativeAnswer, responses=problem_responses(422))
async def negative_list(
    session: SessionDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="e.g. 开饭店, 放贷",
                                   openapi_examples={"restaurant": {"summary": "Open a restaurant",
                                                                    "value": "开饭店"}})] = None,
) -> NegativeAnswer:
    a = await service.negative_list(session, q)
    return NegativeAnswer(query=a.query, verdict=a.verdict, answer=a.answer,
                          entries=[NegativeEntryRead.model_validate(e) for e in a.entries])


@router.get("/open/catalogue.json", openapi_extra=PUBLIC, response_model=OpenCatalogue, tags=["open data"], summary="The whole published catalogue as one dataset",
            description="Every published item as `yimen.catalog.item.published` carries it (plus its status), with "
                        "departments, service points, life events, intermediary services and the negative list "
                        "(CC-BY-4.0). Served as a download.",
            responses=ok("The dataset.", {"Content-Disposition": header('`attachment; filename="catalogue.json"`')},
                         content={"application/json": {"schema": {"$ref": "#/components/schemas/OpenCatalogue"}}}))
async def open_catalogue(session: SessionDep) -> Response:
    data = await service.open_catalogue(session)
    body = {
        **data,
        "departments": [DepartmentRead.model_validate(d).model_dump() for d in data["departments"]],
        "service_points": [ServicePointRead.model_validate(p).model_dump() for p in data["service_points"]],
        "life_events": [{"name": e.name, "description": e.description, "audience": e.audience}
                        for e in data["life_events"]],
        "intermediary_services": [IntermediaryRead.model_validate(s).model_dump()
                                  for s in data["intermediary_services"]],
        "negative_list": [NegativeEntryRead.model_validate(e).model_dump() for e in data["negative_list"]],
    }
    return JSONResponse(jsonable_encoder(body), headers={"Content-Disposition": 'attachment; filename="catalogue.json"'})

