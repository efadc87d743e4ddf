"""The access log (数据访问日志) as its readers see it: the data subject, the supervisor's audit, the chain's
verification, and the anomalies the access watch found; and the archive for reuse (办件归档)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import purpose
from services.datashare.service.common import check_holder_level, log_access
from services.datashare.store import access_log
from services.datashare.store import anomalies as anomaly_store
from services.datashare.store import archive as archive_store
from services.datashare.store.tables import AccessAnomaly, AccessLogEntry, ArchivedApplication
from shared.errors import Forbidden
from shared.pagination import PageParams, paginate
from shared.principal import WINDOW_CLERK, Principal

Rows = tuple[list[AccessLogEntry], str | None]


def _holders(principal: Principal) -> set[str]:
    holders = purpose.own_holder_ids(principal)
    if not holders:
        raise Forbidden("This token names no holder (hid or org).")
    return holders


async def my_entries(session: AsyncSession, principal: Principal, page: PageParams) -> Rows:
    """The data subject's own entries, newest first."""
    rows, cursor = await paginate(
        session, access_log.holder_query(_holders(principal)), key_columns=[AccessLogEntry.seq], params=page,
        key_of=lambda e: [e.seq], descending=True,
    )
    return rows, cursor


async def my_lookups(session: AsyncSession, principal: Principal, page: PageParams) -> Rows:
    """The data subject's entries that name no application (reasoned look-ups, refusals), newest first."""
    rows, cursor = await paginate(
        session, access_log.lookups_query(_holders(principal)), key_columns=[AccessLogEntry.seq], params=page,
        key_of=lambda e: [e.seq], descending=True,
    )
    return rows, cursor


async def audit(session: AsyncSession, page: PageParams, *, department: str | None, accessor: str | None) -> Rows:
    rows, cursor = await paginate(
        session, access_log.department_query(department, accessor), key_columns=[AccessLogEntry.seq], params=page,
        key_of=lambda e: [e.seq], descending=True,
    )
    return rows, cursor


async def anomalies(session: AsyncSession) -> list[AccessAnomaly]:
    return await anomaly_store.list_anomalies(session)


# ---- the archive for reuse ----------------------------------------------------------------------------------

async def _archive_page(session: AsyncSession, holders: set[str],
                        page: PageParams) -> tuple[list[ArchivedApplication], str | None]:
    rows, cursor = await paginate(
        session, archive_store.holder_query(holders), key_columns=[ArchivedApplication.application_id], params=page,
        key_of=lambda a: [a.application_id],
    )
    return rows, cursor


async def my_archive(session: AsyncSession, principal: Principal,
                     page: PageParams) -> tuple[list[ArchivedApplication], str | None]:
    holders = _holders(principal)
    check_holder_level(principal)
    return await _archive_page(session, holders, page)


async def archive_of_holder(session: AsyncSession, principal: Principal, holder_id: str,
                            page: PageParams) -> tuple[list[ArchivedApplication], str | None, bool]:
    """A holder's past applications for intake's prefill: the applicant's own, or (logged, to be shown masked) a
    window clerk's look-up. The last value says whether to mask."""
    holder_id = holder_id.upper()
    if holder_id not in purpose.own_holder_ids(principal):
        if not (principal.is_staff and principal.has(WINDOW_CLERK)):
            raise Forbidden("Only the applicant's own history is answered; window clerks may look one up.",
                            slug="not-holder")
        await log_access(session, principal, action="archive_read", target="archive",
                         holder_id=holder_id, outcome="listed", purpose="window")
        return (*await _archive_page(session, {holder_id}, page), True)
    check_holder_level(principal)
    return (*await _archive_page(session, {holder_id}, page), False)
