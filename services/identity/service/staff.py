"""Staff accounts and department system clients (admin only)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.tokens import new_secret, secret_digest
from services.identity.runtime import IdentityRuntime
from services.identity.service.common import check_new_password
from services.identity.service.tokens import revoke_tokens
from services.identity.store import accounts, people
from services.identity.store.tables import DepartmentClient, Staff
from shared.errors import Conflict, NotFound, invalid
from shared.pagination import PageParams
from shared.principal import WINDOW_CLERK


async def check_department(session: AsyncSession, field: str, code: str | None) -> None:
    """Codes are checked against catalog's departments once catalog has announced any; before that, any code
    is accepted (catalog may start later than identity)."""
    if code and await accounts.known_departments(session) and await accounts.department(session, code) is None:
        raise invalid(field, "unknown_department", f"{code} is not a department catalog knows.")


async def create_staff(session: AsyncSession, rt: IdentityRuntime, *, username: str, name: str, password: str,
                       roles: list[str], department: str | None, service_point: str | None,
                       office_phone: str | None = None, unit: str | None = None, now: datetime) -> Staff:
    """A staff account: by an admin, by the start-up admin and by the CLI."""
    check_new_password("body.password", password, name, username)
    if WINDOW_CLERK in roles and not service_point:
        raise invalid("body.service_point", "required", "A window clerk works at a service point.")
    await check_department(session, "body.department", department)
    staff = Staff(
        id=uuid.uuid4().hex, username=username.lower(), name=name.strip(), roles=sorted(set(roles)),
        department=department, service_point=service_point, password_hash=rt.passwords.hash(password),
        created_at=now, office_phone=office_phone, unit=unit,
    )
    try:
        await people.add_unique(session, staff)
    except people.Duplicate:
        raise Conflict(f"The login name {staff.username} is taken.", slug="staff-exists") from None
    return staff


async def staff_page(session: AsyncSession, page: PageParams, *, department: str | None,
                     role: str | None) -> tuple[list[Staff], str | None]:
    return await accounts.staff_page(session, page, department=department, role=role)


async def staff_by_username(session: AsyncSession, username: str) -> Staff | None:
    return await accounts.staff_by_username(session, username.lower())


async def department_clients(session: AsyncSession, department: str | None) -> list[DepartmentClient]:
    return await accounts.clients_of(session, department)


@dataclass(frozen=True)
class Credentials:
    """A client and its secret, shown once."""

    client: DepartmentClient
    secret: str


async def create_department_client(session: AsyncSession, *, department: str, name: str,
                                   now: datetime) -> Credentials:
    await check_department(session, "body.department", department)
    secret = new_secret()
    client = DepartmentClient(
        client_id=f"{department.lower()}-{secrets.token_hex(6)}", department=department,
        name=name.strip(), secret_hash=secret_digest(secret), created_at=now, secret_rotated_at=now,
    )
    await people.add_unique(session, client)
    return Credentials(client, secret)


async def rotate_client_secret(session: AsyncSession, client_id: str, *, now: datetime) -> Credentials:
    """The old secret stops working at once and tokens got with it end everywhere (a leaked secret)."""
    client = await accounts.client_by_id(session, client_id)
    if client is None:
        raise NotFound(f"No department client {client_id}.")
    secret = new_secret()
    client.secret_hash, client.secret_rotated_at = secret_digest(secret), now
    await revoke_tokens(session, account_kind="department_system", account_id=client.client_id, now=now,
                        reason="secret_rotated")
    return Credentials(client, secret)
