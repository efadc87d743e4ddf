"""Staff accounts and department system clients (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.identity.api.common import NO_STORE_HEADERS, created, model_etag
from services.identity.api.schemas import (
    DepartmentClientCreate,
    DepartmentClientCredentials,
    DepartmentClientRead,
    StaffCreate,
    StaffRead,
)
from services.identity.runtime import RuntimeDep
from services.identity.service import staff as staff_cases
from shared.auth import ADMIN, Principal, require_roles
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep
from shared.types import utcnow

router = APIRouter(tags=["staff and department systems"])


def staff_read(staff: Any) -> StaffRead:
    return StaffRead(id=staff.id, username=staff.username, name=staff.name, roles=list(staff.roles),
                     department=staff.department, service_point=staff.service_point, office_phone=staff.office_phone,
                     unit=staff.unit, created_at=staff.created_at)


def credentials(c: staff_cases.Credentials, created_at: Any) -> DepartmentClientCredentials:
    return DepartmentClientCredentials(client_id=c.client.client_id, client_secret=c.secret,
                                       department=c.client.department, name=c.client.name, created_at=created_at)


@router.post(
    "/staff", status_code=201, response_model=StaffRead, summary="Create a staff account (admin)",
    description="Roles: window_clerk (综合窗口, needs `service_point`), department_reviewer, supervisor, admin, "
    "catalog_editor. Staff tokens carry `kind=staff`, `dept`, `point`.",
    responses={**problem_responses(401, 403, 409, 422), **created(StaffRead, "The account is created.")},
)
async def create_staff(body: StaffCreate, session: SessionDep, rt: RuntimeDep, response: Response,
                       principal: Principal = require_roles(ADMIN)) -> StaffRead:
    staff = await staff_cases.create_staff(
        session, rt, username=body.username, name=body.name, password=body.password, roles=list(body.roles),
        department=body.department, service_point=body.service_point, office_phone=body.office_phone,
        unit=body.unit, now=utcnow())
    read = staff_read(staff)
    response.headers["ETag"] = model_etag(read)
    return read


@router.get(
    "/staff", response_model=Page[StaffRead], summary="Staff accounts (admin)",
    description="Oldest first, cursor-paginated; filter by `department`, and by `role` within each page.",
    responses=problem_responses(401, 403, 422),
)
async def list_staff(
    session: SessionDep, page: PageDep,
    department: Annotated[str | None, Query(max_length=40)] = None,
    role: Annotated[str | None, Query(max_length=40)] = None,
    principal: Principal = require_roles(ADMIN),
) -> Page[StaffRead]:
    rows, cursor = await staff_cases.staff_page(session, page, department=department, role=role)
    return Page[StaffRead](items=[staff_read(r) for r in rows], next_cursor=cursor)


@router.get(
    "/department-clients", response_model=list[DepartmentClientRead], summary="Department systems (admin)",
    description="Never shows secrets (only their hashes are kept).", responses=problem_responses(401, 403),
)
async def list_department_clients(
    session: SessionDep, department: Annotated[str | None, Query(max_length=40)] = None,
    principal: Principal = require_roles(ADMIN),
) -> list[DepartmentClientRead]:
    return [DepartmentClientRead(client_id=c.client_id, department=c.department, name=c.name, created_at=c.created_at,
                                 secret_rotated_at=c.secret_rotated_at)
            for c in await staff_cases.department_clients(session, department)]


@router.post(
    "/department-clients", status_code=201, response_model=DepartmentClientCredentials,
    summary="Register a department system (OAuth2 client credentials, admin)",
    description="The secret is shown once and only its hash is kept. Tokens from the `client_credentials` grant "
    "carry `kind=department_system`, `roles=[department_system]`, `dept`.",
    responses={**problem_responses(401, 403, 422),
               **created(DepartmentClientCredentials, "The client is registered; its secret is shown once.",
                         secret=True)},
)
async def create_department_client(body: DepartmentClientCreate, session: SessionDep, response: Response,
                                   principal: Principal = require_roles(ADMIN)) -> DepartmentClientCredentials:
    now = utcnow()
    c = await staff_cases.create_department_client(session, department=body.department, name=body.name, now=now)
    read = credentials(c, now)
    response.headers["ETag"] = model_etag(read)
    response.headers["Cache-Control"] = "no-store"
    return read


@router.post(
    "/department-clients/{client_id}/secret", response_model=DepartmentClientCredentials,
    summary="Rotate a department system's secret (admin)",
    description="The old secret stops working at once, and tokens already issued with it are refused by every "
    "service within seconds (`yimen.identity.account.tokens_revoked`).",
    responses={**problem_responses(401, 403, 404),
               200: {"description": "The new secret, shown once.", "headers": NO_STORE_HEADERS}},
)
async def rotate_client_secret(client_id: str, session: SessionDep, response: Response,
                               principal: Principal = require_roles(ADMIN)) -> DepartmentClientCredentials:
    c = await staff_cases.rotate_client_secret(session, client_id, now=utcnow())
    response.headers["Cache-Control"] = "no-store"
    return credentials(c, c.client.created_at)
