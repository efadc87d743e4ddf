"""Writes: drafts, review, publication, withdrawal, new versions (admins and the owning department's
catalogue editors), and the reference data (admins). Drafts carry an `ETag`; changing one needs `If-Match`.
Thin: parse, call `service`, render."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import service
from services.catalog.api.docs import ETAG, ITEM_CODE_EXAMPLES, LOCATION, REPLAYED, ok
from services.catalog.api.schemas import (
    NEW_ITEM,
    RETURNED_ITEM,
    ChangeRead,
    DepartmentRead,
    DepartmentWrite,
    IntermediaryRead,
    IntermediaryWrite,
    ItemCreate,
    ItemRead,
    ItemUpdate,
    LifeEventWrite,
    NegativeEntryRead,
    NegativeEntryWrite,
    Note,
    ServicePointRead,
    ServicePointWrite,
    VersionRow,
)
from services.catalog.domain import lifecycle
from services.catalog.domain.model import ItemContent
from shared.auth import ADMIN, CATALOG_EDITOR, Principal, require_roles
from shared.bounds import VersionInt
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent

router = APIRouter(tags=["editing"])

Editor = Annotated[Principal, require_roles(ADMIN, CATALOG_EDITOR)]
Admin = Annotated[Principal, require_roles(ADMIN)]
ItemCode = Annotated[str, Path(description="The item's 实施编码.", max_length=40, openapi_examples=ITEM_CODE_EXAMPLES)]
DraftCode = Annotated[str, Path(description="The item's 实施编码.", max_length=40, openapi_examples={
    "created": {"summary": "The item the create example makes", "value": NEW_ITEM}})]
#: Submit is shown with both items the create example makes: the first is published next, the second returned.
SubmitCode = Annotated[str, Path(description="The item's 实施编码.", max_length=40, openapi_examples={
    "created": {"summary": "The item the create example makes", "value": NEW_ITEM},
    "to_return": {"summary": "The second item the create example makes (returned next)", "value": RETURNED_ITEM}})]
ReturnCode = Annotated[str, Path(description="The item's 实施编码.", max_length=40, openapi_examples={
    "to_return": {"summary": "The second item the create example makes, once submitted", "value": RETURNED_ITEM}})]
OptionalNote = Annotated[Note | None, Body(openapi_examples={
    "note": {"summary": "Why (kept in the change log)", "value": {"note": "依据新修订的管理办法调整材料清单"}}})]
IfMatch = Annotated[str | None, Header(description="The ETag of the draft as last read; checked when given.")]

#: `If-Match` where its absence answers 428: read by hand so the 428 is ours, declared as required.
IF_MATCH_REQUIRED: dict[str, Any] = {"parameters": [{
    "name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
    "description": "The `ETag` of the draft as last read (`GET /items/{code}/draft`). Without it: 428; stale: 412.",
}]}
VERSION_HEADERS = {**ETAG, **LOCATION}


def _version_response(v: VersionRow, status: int = 200) -> JSONResponse:
    return JSONResponse(ItemRead.of(v).model_dump(mode="json"), status_code=status,
                        headers={"ETag": lifecycle.etag(v.item_code, v.version, v.revision),
                                 "Location": f"/catalog/v1/items/{v.item_code}/versions/{v.version}"})


@router.post("/items", status_code=201, summary="Create an item (its draft version 1)", response_model=ItemRead,
             description="An editor of the item's department (or an admin) creates draft version 1. Every rule of "
                         "the catalogue is checked at once (422 lists each broken rule with field and rule). "
                         "Send an `Idempotency-Key` to make retries safe; a replay answers the first result with "
                         "`Idempotent-Replayed: true`.",
             responses={**ok("The draft.", {**ETAG, **LOCATION, **REPLAYED}, status=201),
                        **problem_responses(401, 403, 409, 422)})
async def create_item(
    request: Request, body: ItemCreate, principal: Editor,
    idempotency_key: Annotated[str | None, Header(max_length=200, description="Any unique string per intended "
                                                                               "creation (a UUID).")] = None,
) -> Response:
    async def work(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        v = await service.create_item(session, code=body.code, content=body.content(), principal=principal)
        return 201, ItemRead.of(v).model_dump(mode="json")

    resp = await run_idempotent(request, key=idempotency_key, scope=f"catalog.items:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work)
    if resp.status_code == 201:
        data = json.loads(bytes(resp.body))
        resp.headers["ETag"] = lifecycle.etag(data["code"], data["version"], 1)
        resp.headers["Location"] = f"/catalog/v1/items/{data['code']}/draft"
    return resp


@router.get("/items/{code}/draft", summary="The version being prepared (draft or in review)", response_model=ItemRead,
            description="Its `ETag` is what `PUT` and `submit` send back as `If-Match`.",
            responses={**ok("The open version.", VERSION_HEADERS), **problem_responses(401, 403, 404)})
async def get_draft(session: SessionDep, code: DraftCode, principal: Editor) -> Response:
    return _version_response(await service.get_draft(session, code=code, principal=principal))


@router.put("/items/{code}/draft", summary="Replace the draft's content (needs If-Match)", response_model=ItemRead,
            description="The whole content replaces the draft's. `If-Match` must carry the draft's current `ETag` "
                        "(428 without it, 412 if someone changed it since). Only a `draft` (not one in review) "
                        "may change (409).",
            openapi_extra=IF_MATCH_REQUIRED,
            responses={**ok("The draft as saved, with its new tag.", VERSION_HEADERS),
                       **problem_responses(401, 403, 404, 409, 412, 422, 428)})
async def update_draft(request: Request, session: SessionDep, code: DraftCode, body: ItemUpdate,
                       principal: Editor) -> Response:
    v = await service.update_draft(session, code=code, content=ItemContent.model_validate(body.model_dump()),
                                   principal=principal, if_match=request.headers.get("if-match"))
    return _version_response(v)


@router.post("/items/{code}/draft/submit", summary="Submit the draft for review (draft → in_review)",
             description="Checks every rule again. `If-Match`, when given, must be the draft's current tag (412).",
             response_model=ItemRead,
             responses={**ok("The version, now in review.", VERSION_HEADERS),
                        **problem_responses(401, 403, 404, 409, 412, 422)})
async def submit(session: SessionDep, code: SubmitCode, principal: Editor, if_match: IfMatch = None) -> Response:
    return _version_response(await service.submit(session, code=code, principal=principal, if_match=if_match))


@router.post("/items/{code}/draft/return", summary="Return a version in review to draft",
             description="The reviewer sends it back with an optional note (kept in the change log).",
             response_model=ItemRead,
             responses={**ok("The version, a draft again.", VERSION_HEADERS), **problem_responses(401, 403, 404, 409)})
async def return_to_draft(session: SessionDep, code: ReturnCode, principal: Editor, body: OptionalNote = None) -> Response:
    v = await service.return_to_draft(session, code=code, principal=principal, note=body.note if body else None)
    return _version_response(v)


@router.post("/items/{code}/publish", summary="Publish the version in review (emits catalog.item.published)",
             description="Rules are checked once more against today's reference data; the previous published "
                         "version becomes `superseded`.",
             response_model=ItemRead,
             responses={**ok("The published version.", VERSION_HEADERS),
                        **problem_responses(401, 403, 404, 409, 422)})
async def publish(session: SessionDep, code: DraftCode, principal: Editor) -> Response:
    return _version_response(await service.publish_item(session, code=code, principal=principal))


@router.post("/items/{code}/withdraw", summary="Withdraw the published version (emits catalog.item.withdrawn)",
             description="The item stops being offered; its versions stay readable.",
             response_model=ItemRead,
             responses={**ok("The withdrawn version.", VERSION_HEADERS), **problem_responses(401, 403, 404, 409)})
async def withdraw(session: SessionDep, code: DraftCode, principal: Editor, body: OptionalNote = None) -> Response:
    v = await service.withdraw_item(session, code=code, principal=principal, note=body.note if body else None)
    return _version_response(v)


@router.post("/items/{code}/versions", status_code=201, summary="Start a new version from the latest one",
             description="A new draft, a copy of the latest version's content (409 while one is still open).",
             response_model=ItemRead,
             responses={**ok("The new draft.", VERSION_HEADERS, status=201), **problem_responses(401, 403, 404, 409)})
async def new_version(session: SessionDep, code: ItemCode, principal: Editor) -> Response:
    return _version_response(await service.new_version(session, code=code, principal=principal), 201)


@router.get("/items/{code}/versions/{version}", summary="Any version of an item (editors see drafts too)",
            response_model=ItemRead,
            responses={**ok("The version.", VERSION_HEADERS), **problem_responses(401, 403, 404, 422)})
async def get_any_version(
    session: SessionDep, code: ItemCode, principal: Editor,
    version: Annotated[VersionInt, Path(openapi_examples={"first": {"summary": "Version 1", "value": 1}})],
) -> Response:
    return _version_response(await service.get_any_version(session, code=code, version=version, principal=principal))


@router.get("/items/{code}/changes", summary="The change log: who changed what and when",
            description="Every action on every version, oldest first, with the top-level fields an edit changed.",
            response_model=list[ChangeRead], responses=problem_responses(401, 403, 404))
async def list_changes(session: SessionDep, code: ItemCode, principal: Editor) -> list[ChangeRead]:
    return [ChangeRead.model_validate(c, from_attributes=True)
            for c in await service.changes(session, code=code, principal=principal)]


@router.put("/departments/{code}", summary="Create or update a department (admin; emits catalog.department.upserted)",
            response_model=DepartmentRead, responses=problem_responses(401, 403, 422))
async def put_department(
    session: SessionDep, body: DepartmentWrite, _: Admin,
    code: Annotated[str, Path(description="Letters, digits or hyphens, at most 32.", openapi_examples={
        "transport": {"summary": "A new department", "value": "LD-JTJ"}})],
) -> DepartmentRead:
    return DepartmentRead.model_validate(await service.put_department(session, code, body.model_dump()))


@router.put("/service-points/{code}",
            summary="Create or update a service point (admin; emits catalog.service_point.upserted)",
            description="A town's parent is the city centre, a village's a town; the city centre is the root.",
            response_model=ServicePointRead, responses=problem_responses(401, 403, 422))
async def put_service_point(
    session: SessionDep, body: ServicePointWrite, _: Admin,
    code: Annotated[str, Path(max_length=32, openapi_examples={
        "village": {"summary": "A new village station under 罗城街道", "value": "LD-LC-09"}})],
) -> ServicePointRead:
    row = await service.put_service_point(session, code, level=body.level, parent_code=body.parent_code,
                                          values=body.model_dump(exclude={"level", "parent_code"}))
    return ServicePointRead.model_validate(row)


@router.put("/life-events/{name}", summary="Create or update a life event (admin)", response_model=LifeEventWrite,
            responses=problem_responses(401, 403, 422))
async def put_life_event(
    session: SessionDep, body: LifeEventWrite, _: Admin,
    name: Annotated[str, Path(description="1 to 100 characters.", openapi_examples={
        "retirement": {"summary": "退休", "value": "办理退休"}})],
) -> LifeEventWrite:
    await service.put_life_event(session, name, body.model_dump())
    return body


@router.put("/intermediary-services/{code}", summary="Create or update an intermediary-service list entry (admin)",
            description="An entry without a legal basis (设定依据) is refused.",
            response_model=IntermediaryRead, responses=problem_responses(401, 403, 422))
async def put_intermediary(
    session: SessionDep, body: IntermediaryWrite, _: Admin,
    code: Annotated[str, Path(max_length=40, openapi_examples={
        "house_safety": {"summary": "A new entry", "value": "ZJ-005"}})],
) -> IntermediaryRead:
    return IntermediaryRead.model_validate(await service.put_intermediary(session, code, body.model_dump()))


@router.put("/negative-list/{code}", summary="Create or update a negative-list entry (admin)",
            description="A `permitted` (许可准入) entry lists the approvals to obtain first; every department and "
                        "item it names must exist.",
            response_model=NegativeEntryRead, responses=problem_responses(401, 403, 422))
async def put_negative_entry(
    session: SessionDep, body: NegativeEntryWrite, _: Admin,
    code: Annotated[str, Path(max_length=40, openapi_examples={
        "internet_cafe": {"summary": "A new entry", "value": "NL-205"}})],
) -> NegativeEntryRead:
    return NegativeEntryRead.model_validate(await service.put_negative_entry(session, code, body.model_dump()))


