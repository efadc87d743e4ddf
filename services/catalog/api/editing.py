"""Writes: drafts, review, publication, withdrawal, new versions (admins and the owning department's
catalogue editors). Drafts carry an `ETag`; changing one needs `If-Match`."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from services.catalog import catalogue
from services.catalog.api.schemas import (
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
)
from services.catalog.domain import lifecycle
from services.catalog.domain.model import ItemContent
from services.catalog.domain.rules import check_point_parent
from services.catalog.store import repo
from services.catalog.store.tables import (
    IntermediaryService,
    ItemVersion,
    LifeEvent,
    NegativeListEntry,
)
from shared.auth import ADMIN, CATALOG_EDITOR, Principal, require_roles
from shared.bounds import VersionInt
from shared.db import SessionDep
from shared.errors import FieldError, NotFound, ValidationProblem, invalid
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent

router = APIRouter(tags=["editing"])

Editor = Annotated[Principal, require_roles(ADMIN, CATALOG_EDITOR)]
Admin = Annotated[Principal, require_roles(ADMIN)]
IfMatch = Annotated[str | None, Header(description="The ETag of the draft as last read.")]


def _version_response(v: ItemVersion, status: int = 200) -> JSONResponse:
    return JSONResponse(ItemRead.of(v).model_dump(mode="json"), status_code=status,
                        headers={"ETag": lifecycle.etag(v.item_code, v.version, v.revision),
                                 "Location": f"/catalog/v1/items/{v.item_code}/versions/{v.version}"})


@router.post("/items", status_code=201, summary="Create an item (its draft version 1)", response_model=ItemRead,
             responses=problem_responses(401, 403, 409, 422))
async def create_item(
    request: Request, body: ItemCreate, principal: Editor,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    catalogue.ensure_may_edit(principal, body.department)

    async def work(session):  # type: ignore[no-untyped-def]
        v = await catalogue.create_item(session, code=body.code, content=body.content(),
                                        actor=catalogue.actor_of(principal))
        return 201, ItemRead.of(v).model_dump(mode="json")

    resp = await run_idempotent(request, key=idempotency_key, scope=f"catalog.items:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work)
    if resp.status_code == 201:
        data = json.loads(bytes(resp.body))
        resp.headers["ETag"] = lifecycle.etag(data["code"], data["version"], 1)
        resp.headers["Location"] = f"/catalog/v1/items/{data['code']}/draft"
    return resp


@router.get("/items/{code}/draft", summary="The version being prepared (draft or in review)", response_model=ItemRead,
            responses=problem_responses(401, 403, 404))
async def get_draft(session: SessionDep, code: str, principal: Editor) -> Response:
    item = await catalogue.item_or_404(session, code)
    catalogue.ensure_may_edit(principal, item.department)
    return _version_response(await catalogue.open_version(session, item))


@router.put("/items/{code}/draft", summary="Replace the draft's content (needs If-Match)", response_model=ItemRead,
            responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def update_draft(session: SessionDep, code: str, body: ItemUpdate, principal: Editor,
                       if_match: IfMatch = None) -> Response:
    v = await catalogue.update_draft(session, code=code, content=ItemContent.model_validate(body.model_dump()),
                                     principal=principal, if_match=if_match)
    return _version_response(v)


@router.post("/items/{code}/draft/submit", summary="Submit the draft for review (draft → in_review)",
             response_model=ItemRead, responses=problem_responses(401, 403, 404, 409, 412, 422))
async def submit(session: SessionDep, code: str, principal: Editor, if_match: IfMatch = None) -> Response:
    return _version_response(await catalogue.submit(session, code=code, principal=principal, if_match=if_match))


@router.post("/items/{code}/draft/return", summary="Return a version in review to draft",
             response_model=ItemRead, responses=problem_responses(401, 403, 404, 409))
async def return_to_draft(session: SessionDep, code: str, principal: Editor, body: Note | None = None) -> Response:
    v = await catalogue.return_to_draft(session, code=code, principal=principal, note=body.note if body else None)
    return _version_response(v)


@router.post("/items/{code}/publish", summary="Publish the version in review (emits catalog.item.published)",
             response_model=ItemRead, responses=problem_responses(401, 403, 404, 409, 422))
async def publish(session: SessionDep, code: str, principal: Editor) -> Response:
    return _version_response(await catalogue.publish_item(session, code=code, principal=principal))


@router.post("/items/{code}/withdraw", summary="Withdraw the published version (emits catalog.item.withdrawn)",
             response_model=ItemRead, responses=problem_responses(401, 403, 404, 409))
async def withdraw(session: SessionDep, code: str, principal: Editor, body: Note | None = None) -> Response:
    v = await catalogue.withdraw_item(session, code=code, principal=principal, note=body.note if body else None)
    return _version_response(v)


@router.post("/items/{code}/versions", status_code=201, summary="Start a new version from the latest one",
             response_model=ItemRead, responses=problem_responses(401, 403, 404, 409))
async def new_version(session: SessionDep, code: str, principal: Editor) -> Response:
    return _version_response(await catalogue.new_version(session, code=code, principal=principal), 201)


@router.get("/items/{code}/versions/{version}", summary="Any version of an item (editors see drafts too)",
            response_model=ItemRead, responses=problem_responses(401, 403, 404))
async def get_any_version(session: SessionDep, code: str, version: VersionInt, principal: Editor) -> Response:
    item = await catalogue.item_or_404(session, code)
    catalogue.ensure_may_edit(principal, item.department)
    v = await repo.get_version(session, code, version)
    if v is None:
        raise NotFound(f"事项 {code} 没有第 {version} 版。", slug="version-not-found")
    return _version_response(v)


@router.get("/items/{code}/changes", summary="The change log: who changed what and when",
            response_model=list[ChangeRead], responses=problem_responses(401, 403, 404))
async def list_changes(session: SessionDep, code: str, principal: Editor) -> list[ChangeRead]:
    item = await catalogue.item_or_404(session, code)
    catalogue.ensure_may_edit(principal, item.department)
    return [ChangeRead.model_validate(c, from_attributes=True) for c in await repo.changes(session, code)]


@router.put("/departments/{code}", summary="Create or update a department (admin; emits catalog.department.upserted)",
            response_model=DepartmentRead, responses=problem_responses(401, 403, 422))
async def put_department(session: SessionDep, code: str, body: DepartmentWrite, _: Admin) -> DepartmentRead:
    if not code.isascii() or len(code) > 32:
        raise invalid("path.code", "format", "部门代码须为不超过 32 个字符的字母、数字或连字符。")
    return DepartmentRead.model_validate(await catalogue.upsert_department(session, code=code, **body.model_dump()))


@router.put("/service-points/{code}", summary="Create or update a service point (admin; emits catalog.service_point.upserted)", response_model=ServicePointRead,
            responses=problem_responses(401, 403, 422))
async def put_service_point(session: SessionDep, code: str, body: ServicePointWrite, _: Admin) -> ServicePointRead:
    parent = await repo.get_service_point(session, body.parent_code) if body.parent_code else None
    errors = check_point_parent(body.level, parent.level if parent else None, body.parent_code is not None)
    if body.parent_code == code:
        errors.append(FieldError(field="body.parent_code", rule="tree_level", message="服务点不能是自己的上级。"))
    if errors:
        raise ValidationProblem(errors)
    row = await catalogue.upsert_service_point(session, code, body.model_dump())
    return ServicePointRead.model_validate(row)


@router.put("/life-events/{name}", summary="Create or update a life event (admin)", response_model=LifeEventWrite,
            responses=problem_responses(401, 403, 422))
async def put_life_event(session: SessionDep, name: str, body: LifeEventWrite, _: Admin) -> LifeEventWrite:
    if not 1 <= len(name) <= 100:
        raise invalid("path.name", "max_length", "主题事件名称须为 1 到 100 个字符。")
    await repo.upsert(session, LifeEvent, {"name": name}, body.model_dump())
    return body


@router.put("/intermediary-services/{code}", summary="Create or update an intermediary-service list entry (admin)",
            response_model=IntermediaryRead, responses=problem_responses(401, 403, 422))
async def put_intermediary(session: SessionDep, code: str, body: IntermediaryWrite, _: Admin) -> IntermediaryRead:
    if await repo.get_department(session, body.department) is None:
        raise invalid("body.department", "unknown_department", f"部门 {body.department} 不在部门目录中。")
    row = await repo.upsert(session, IntermediaryService, {"code": code}, body.model_dump())
    return IntermediaryRead.model_validate(row)


@router.put("/negative-list/{code}", summary="Create or update a negative-list entry (admin)",
            response_model=NegativeEntryRead, responses=problem_responses(401, 403, 422))
async def put_negative_entry(session: SessionDep, code: str, body: NegativeEntryWrite, _: Admin) -> NegativeEntryRead:
    errors: list[FieldError] = []
    if body.category == "permitted" and not body.requirements:
        errors.append(FieldError(field="body.requirements", rule="approval_required",
                                 message="许可准入类条目必须列明须先取得的许可。"))
    for i, req in enumerate(body.requirements):
        if req.department and await repo.get_department(session, req.department) is None:
            errors.append(FieldError(field=f"body.requirements.{i}.department", rule="unknown_department",
                                     message=f"部门 {req.department} 不在部门目录中。"))
        if req.item and await repo.get_item(session, req.item) is None:
            errors.append(FieldError(field=f"body.requirements.{i}.item", rule="unknown_item",
                                     message=f"事项 {req.item} 不存在。"))
    if errors:
        raise ValidationProblem(errors)
    row = await repo.upsert(session, NegativeListEntry, {"code": code}, body.model_dump())
    return NegativeEntryRead.model_validate(row)
