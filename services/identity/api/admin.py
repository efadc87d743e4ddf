"""Staff accounts and department system clients (admin only)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.api.common import check_new_password
from services.identity.api.schemas import (
    DepartmentClientCreate,
    DepartmentClientCredentials,
    DepartmentClientRead,
    StaffCreate,
    StaffRead,
)
from services.identity.domain.tokens import new_secret, secret_digest
from services.identity.runtime import RuntimeDep
from services.identity.service import revoke_tokens
from services.identity.store import accounts, people
from services.identity.store.tables import DepartmentClient, Staff
from shared.auth import ADMIN, WINDOW_CLERK, Principal, require_roles
from shared.db import SessionDep
from shared.errors import Conflict, NotFound, invalid
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep
from shared.types import utcnow

router = APIRouter(tags=["staff and department systems"])


async def check_department(session: AsyncSession, field: str, code: str | None) -> None:
    """Codes are checked against catalog's departments once catalog has announced any; before that, any code
    is accepted (catalog may start later than identity)."""
    if code and await accounts.known_departments(session) and await accounts.department(session, code) is None:
        raise invalid(field, "unknown_department", f"{code} is not a department catalog knows.")


def staff_read(staff: Staff) -> StaffRead:
    return StaffRead(id=staff.id, username=staff.username, name=staff.name, roles=list(staff.roles),
                     department=staff.department, service_point=staff.service_point, office_phone=staff.office_phone,
                     unit=staff.unit, created_at=staff.created_at)


async def create_staff_account(session: AsyncSession, rt: RuntimeDep, body: StaffCreate) -> Staff:
    """Shared by the route, the start-up admin and the CLI."""
    check_new_password("body.password", body.password, body.name, body.username)
    if WINDOW_CLERK in body.roles and not body.service_point:
        raise invalid("body.service_point", "required", "A window clerk works at a service point.")
    await check_department(session, "body.department", body.department)
    staff = Staff(
        id=uuid.uuid4().hex, username=body.username.lower(), name=body.name.strip(), roles=sorted(set(body.roles)),
        department=body.department, service_point=body.service_point, password_hash=rt.passwords.hash(body.password),
        created_at=utcnow(), office_phone=body.office_phone, unit=body.unit,
    )
    try:
        await people.add_unique(session, staff)
    except people.Duplicate:
        raise Conflict(f"The login name {staff.username} is taken.", slug="staff-exists") from None
    return staff


@router.post(
    "/staff", status_code=201, response_model=StaffRead, summary="Create a staff account (admin)",
    description="Roles: window_clerk (综合窗口, needs `service_point`), department_reviewer, supervisor, admin, "
    "catalog_editor. Staff tokens carry `kind=staff`, `dept`, `point`.",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_staff(body: StaffCreate, session: SessionDep, rt: RuntimeDep,
                       principal: Principal = require_roles(ADMIN)) -> StaffRead:
    return staff_read(await create_staff_account(session, rt, body))


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
    rows, cursor = await accounts.staff_page(session, page, department=department, role=role)
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
            for c in await accounts.clients_of(session, department)]


@router.post(
    "/department-clients", status_code=201, response_model=DepartmentClientCredentials,
    summary="Register a department system (OAuth2 client credentials, admin)",
    description="The secret is shown once and only its hash is kept. Tokens from the `client_credentials` grant "
    "carry `kind=department_system`, `roles=[department_system]`, `dept`.",
    responses=problem_responses(401, 403, 422),
)
async def create_department_client(body: DepartmentClientCreate, session: SessionDep,
                                   principal: Principal = require_roles(ADMIN)) -> DepartmentClientCredentials:
    await check_department(session, "body.department", body.department)
    now = utcnow()
    secret = new_secret()
    client = DepartmentClient(
        client_id=f"{body.department.lower()}-{secrets.token_hex(6)}", department=body.department,
        name=body.name.strip(), secret_hash=secret_digest(secret), created_at=now, secret_rotated_at=now,
    )
    await people.add_unique(session, client)
    return DepartmentClientCredentials(client_id=client.client_id, client_secret=secret, department=client.department,
                                       name=client.name, created_at=now)


@router.post(
    "/department-clients/{client_id}/secret", response_model=DepartmentClientCredentials,
    summary="Rotate a department system's secret (admin)",
    description="The old secret stops working at once, and tokens already issued with it are refused by every "
    "service within seconds (`yimen.identity.account.tokens_revoked`).",
    responses=problem_responses(401, 403, 404),
)
async def rotate_client_secret(client_id: str, session: SessionDep,
                               principal: Principal = require_roles(ADMIN)) -> DepartmentClientCredentials:
    client = await accounts.client_by_id(session, client_id)
    if client is None:
        raise NotFound(f"No department client {client_id}.")
    secret = new_secret()
    now = utcnow()
    client.secret_hash, client.secret_rotated_at = secret_digest(secret), now
    # A rotation is what an admin does when the secret leaked: tokens got with it end now, everywhere.
    await revoke_tokens(session, account_kind="department_system", account_id=client.client_id, now=now,
                        reason="secret_rotated")
    return DepartmentClientCredentials(client_id=client.client_id, client_secret=secret, department=client.department,
                                       name=client.name, created_at=client.created_at)
