"""Routes of the archive for reuse (办件归档): an applicant's past applications, for them and for intake's prefill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.datashare import operations
from services.datashare.api.common import check_holder_level, own_holder_ids
from services.datashare.domain import purpose
from services.datashare.store import archive as store
from services.datashare.store.tables import ArchivedApplication
from shared.auth import WINDOW_CLERK, CurrentPrincipal
from shared.db import SessionDep
from shared.errors import Forbidden
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate

router = APIRouter(tags=["archive"])


class ArchivedApplicationRead(BaseModel):
    application_id: str
    receipt_number: str | None
    holder_id: str | None
    item_code: str
    item_version: int | None
    item_name: str | None
    department: str | None
    channel: str | None
    form: dict[str, Any]
    materials: list[Any]
    accepted_at: datetime | None
    decided_at: datetime | None
    outcome: str | None
    certificate_number: str | None


def read(a: ArchivedApplication, *, masked: bool = False) -> ArchivedApplicationRead:
    """`masked`: for staff, every phone and ID number (the holder's too) masked; the applicant sees them in full."""
    return ArchivedApplicationRead(
        application_id=a.application_id, receipt_number=a.receipt_number,
        holder_id=purpose.mask_values(a.holder_id) if masked else a.holder_id,
        item_code=a.item_code, item_version=a.item_version, item_name=a.item_name, department=a.department,
        channel=a.channel, form=purpose.mask_values(a.form or {}) if masked else a.form or {},
        materials=purpose.mask_values(a.materials or []) if masked else a.materials or [], accepted_at=a.accepted_at,
        decided_at=a.decided_at, outcome=a.outcome, certificate_number=a.certificate_number,
    )


async def _page(session: SessionDep, holders: set[str], page: PageDep, *,
                masked: bool = False) -> Page[ArchivedApplicationRead]:
    rows, cursor = await paginate(
        session, store.holder_query(holders), key_columns=[ArchivedApplication.application_id], params=page,
        key_of=lambda a: [a.application_id],
    )
    return Page(items=[read(a, masked=masked) for a in rows], next_cursor=cursor)


@router.get("/me/archive", summary="My past applications", responses=problem_responses(401, 403))
async def my_archive(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[ArchivedApplicationRead]:
    holders = own_holder_ids(principal)
    if not holders:
        raise Forbidden("This token names no holder (hid or org).")
    check_holder_level(principal)
    return await _page(session, holders, page)


@router.get(
    "/archive", summary="A holder's past applications (intake's prefill)",
    description="With the applicant's token forwarded only their own holder ids are answered (assurance level 2 "
    "or more); a window clerk may ask for any holder, that read is logged, and phone and ID numbers come masked.",
    responses=problem_responses(401, 403),
)
async def archive_for_holder(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    holder_id: Annotated[str, Query(min_length=1, max_length=18)],
) -> Page[ArchivedApplicationRead]:
    holder_id = holder_id.upper()
    if holder_id not in own_holder_ids(principal):
        if not (principal.is_staff and principal.has(WINDOW_CLERK)):
            raise Forbidden("Only the applicant's own history is answered; window clerks may look one up.",
                            slug="not-holder")
        await operations.log_access(session, principal, action="archive_read", target="archive",
                                    holder_id=holder_id, outcome="listed", purpose="window")
        return await _page(session, {holder_id}, page, masked=True)
    check_holder_level(principal)
    return await _page(session, {holder_id}, page)
