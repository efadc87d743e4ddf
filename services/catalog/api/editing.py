"""Writes: drafts, review, publication, withdrawal, new versions (admins and the owning department's
catalogue editors). Drafts carry an `ETag`; changing one needs `If-Match`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from services.catalog import catalogue
from services.catalog.api.schemas import (
    ChangeRead,
    DepartmentRead,
    DepartmentWrite,
    ItemCreate,
    ItemRead,
    ItemUpdate,
    Note,
)
from services.catalog.domain import lifecycle
from services.catalog.store import repo
from services.catalog.store.tables import ItemVersion
from shared.auth import ADMIN, CATALOG_EDITOR, Principal, require_roles
from shared.db import SessionDep
from shared.errors import problem_responses
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
        import json

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
    from services.catalog.domain.model import ItemContent

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
async def get_any_version(session: SessionDep, code: str, version: int, principal: Editor) -> Response:
    item = await catalogue.item_or_404(session, code)
    catalogue.ensure_may_edit(principal, item.department)
    v = await repo.get_version(session, code, version)
    if v is None:
        from shared.errors import NotFound

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
    from shared.errors import invalid

    if not code.isascii() or len(code) > 32:
        raise invalid("path.code", "format", "部门代码须为不超过 32 个字符的字母、数字或连字符。")
    return DepartmentRead.model_validate(await catalogue.upsert_department(session, code=code, **body.model_dump()))
