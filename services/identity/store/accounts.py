"""Queries on staff, department clients, departments, login throttling, signing keys and refresh tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.lockout import LoginThrottle
from services.identity.store.tables import (
    Department,
    DepartmentClient,
    LoginThrottleRow,
    RefreshToken,
    SigningKeyRow,
    Staff,
    TokenRevocation,
)
from shared.messaging import insert_ignore
from shared.pagination import PageParams, paginate


async def staff_by_username(session: AsyncSession, username: str) -> Staff | None:
    return (await session.execute(select(Staff).where(Staff.username == username))).scalar_one_or_none()


async def staff_by_id(session: AsyncSession, staff_id: str) -> Staff | None:
    return await session.get(Staff, staff_id)


async def staff_page(session: AsyncSession, params: PageParams, *, department: str | None,
                     role: str | None) -> tuple[list[Staff], str | None]:
    stmt = select(Staff)
    if department:
        stmt = stmt.where(Staff.department == department)
    rows, cursor = await paginate(session, stmt, key_columns=[Staff.created_at, Staff.id], params=params,
                                  key_of=lambda r: [r.created_at.isoformat(), r.id],
                                  parse_key=lambda v: [datetime.fromisoformat(v[0]), v[1]])
    # Roles are a JSON list (portable across SQLite and PostgreSQL): filtered here, within the page.
    return ([r for r in rows if role in r.roles] if role else rows), cursor


async def clients_of(session: AsyncSession, department: str | None) -> list[DepartmentClient]:
    stmt = select(DepartmentClient).order_by(DepartmentClient.department, DepartmentClient.created_at)
    if department:
        stmt = stmt.where(DepartmentClient.department == department)
    return list((await session.execute(stmt)).scalars())


async def client_by_id(session: AsyncSession, client_id: str) -> DepartmentClient | None:
    return await session.get(DepartmentClient, client_id)


async def known_departments(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Department))).scalar_one())


async def department(session: AsyncSession, code: str) -> Department | None:
    return await session.get(Department, code)


async def upsert_department(session: AsyncSession, code: str, name: str, credit_code: str | None,
                            now: datetime) -> None:
    row = await session.get(Department, code)
    if row is None:
        session.add(Department(code=code, name=name, credit_code=credit_code, updated_at=now))
    else:
        row.name, row.credit_code, row.updated_at = name, credit_code, now
    await session.flush()


# Login throttling -------------------------------------------------------------------------------------------

async def throttle(session: AsyncSession, username: str) -> LoginThrottle:
    row = await session.get(LoginThrottleRow, username)
    return LoginThrottle() if row is None else LoginThrottle(row.failures, row.locked_until, row.last_failure_at)


async def record_failure(
    session: AsyncSession, username: str, update_state: Callable[[LoginThrottle], LoginThrottle]
) -> LoginThrottle:
    """Count one failed login under a row lock, so parallel guesses cannot slip past the threshold by reading
    the same count (PostgreSQL `FOR UPDATE`; SQLite has one writer anyway)."""
    await session.execute(insert_ignore(session, LoginThrottleRow.__table__).values(username=username, failures=0))
    q = select(LoginThrottleRow).where(LoginThrottleRow.username == username).with_for_update()
    row = (await session.execute(q.execution_options(populate_existing=True))).scalar_one()
    state = update_state(LoginThrottle(row.failures, row.locked_until, row.last_failure_at))
    row.failures, row.locked_until, row.last_failure_at = state.failures, state.locked_until, state.last_failure_at
    await session.flush()
    return state


async def clear_throttle(session: AsyncSession, username: str) -> None:
    row = await session.get(LoginThrottleRow, username)
    if row is not None:
        await session.delete(row)
        await session.flush()


async def purge_throttles(session: AsyncSession, before: datetime) -> int:
    """Forget failure counts nobody has added to since `before` (guessed usernames would pile up otherwise)."""
    res = await session.execute(
        delete(LoginThrottleRow).where(
            LoginThrottleRow.last_failure_at < before,
            or_(LoginThrottleRow.locked_until.is_(None), LoginThrottleRow.locked_until < before),
        )
    )
    return res.rowcount or 0


# Signing keys -----------------------------------------------------------------------------------------------

async def current_key(session: AsyncSession) -> SigningKeyRow | None:
    q = select(SigningKeyRow).where(SigningKeyRow.rotated_out_at.is_(None)).order_by(SigningKeyRow.created_at.desc())
    return (await session.execute(q.limit(1))).scalar_one_or_none()


async def published_keys(session: AsyncSession, now: datetime) -> list[SigningKeyRow]:
    """The current key and the rotated-out ones whose tokens may still be alive."""
    q = (
        select(SigningKeyRow)
        .where(or_(SigningKeyRow.retire_at.is_(None), SigningKeyRow.retire_at > now))
        .order_by(SigningKeyRow.created_at.desc())
    )
    return list((await session.execute(q)).scalars())


async def add_key(session: AsyncSession, row: SigningKeyRow) -> None:
    session.add(row)
    await session.flush()


async def rotate_out(session: AsyncSession, now: datetime, retire_at: datetime, *, retire_all: bool) -> None:
    """Rotate out the current key; with `retire_all`, also withdraw every earlier key at once."""
    await session.execute(
        update(SigningKeyRow).where(SigningKeyRow.rotated_out_at.is_(None)).values(rotated_out_at=now, retire_at=retire_at)
    )
    if retire_all:
        await session.execute(
            update(SigningKeyRow)
            .where(or_(SigningKeyRow.retire_at.is_(None), SigningKeyRow.retire_at > now))
            .values(retire_at=now)
        )


# Refresh tokens ---------------------------------------------------------------------------------------------

async def add_refresh(session: AsyncSession, row: RefreshToken) -> None:
    session.add(row)
    await session.flush()


async def refresh_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    q = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.execute(q)).scalar_one_or_none()


async def mark_refresh_used(session: AsyncSession, token_id: int, now: datetime) -> bool:
    """Claim a refresh token for one use; False when another request already used or revoked it."""
    res = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
    )
    return bool(res.rowcount)


async def revoke_family(session: AsyncSession, family_id: str, now: datetime) -> int:
    res = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return res.rowcount or 0


async def revoke_account(session: AsyncSession, account_kind: str, account_id: str, now: datetime) -> int:
    res = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.account_kind == account_kind,
            RefreshToken.account_id == account_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return res.rowcount or 0


async def purge_refresh_tokens(session: AsyncSession, expired_before: datetime) -> int:
    res = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < expired_before))
    return res.rowcount or 0


# Token revocations ------------------------------------------------------------------------------------------

async def record_revocation(session: AsyncSession, account_kind: str, account_id: str, not_before: datetime,
                            reason: str) -> None:
    row = await session.get(TokenRevocation, (account_kind, account_id))
    if row is None:
        session.add(TokenRevocation(account_kind=account_kind, account_id=account_id, not_before=not_before,
                                    reason=reason))
    elif not_before > row.not_before:
        row.not_before, row.reason = not_before, reason
    await session.flush()


async def revocations_since(session: AsyncSession, since: datetime) -> list[TokenRevocation]:
    q = select(TokenRevocation).where(TokenRevocation.not_before > since).order_by(TokenRevocation.not_before)
    return list((await session.execute(q)).scalars())


async def purge_revocations(session: AsyncSession, before: datetime) -> int:
    res = await session.execute(delete(TokenRevocation).where(TokenRevocation.not_before < before))
    return res.rowcount or 0


async def revocation_of(session: AsyncSession, account_kind: str, account_id: str) -> TokenRevocation | None:
    return await session.get(TokenRevocation, (account_kind, account_id))
