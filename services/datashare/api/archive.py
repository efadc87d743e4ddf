"""Routes of the archive for reuse (办件归档): an applicant's past applications, for them and for intake's prefill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.datashare import service
from services.datashare.domain import purpose
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep

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


def read(a: Any, *, masked: bool = False) -> ArchivedApplicationRead:
    """`masked`: for staff, every phone and ID number (the holder's too) masked; the applicant sees them in full."""
    return ArchivedApplicationRead(
        application_id=a.application_id, receipt_number=a.receipt_number,
        holder_id=purpose.mask_values(a.holder_id) if masked else a.holder_id,
        item_code=a.item_code, item_version=a.item_version, item_name=a.item_name, department=a.department,
        channel=a.channel, form=purpose.mask_values(a.form or {}) if masked else a.form or {},
        materials=purpose.mask_values(a.materials or []) if masked else a.materials or [], accepted_at=a.accepted_at,
        decided_at=a.decided_at, outcome=a.outcome, certificate_number=a.certificate_number,
    )


@router.get("/me/archive", summary="My past applications", response_model=Page[ArchivedApplicationRead],
            responses=problem_responses(401, 403))
async def my_archive(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[ArchivedApplicationRead]:
    rows, cursor = await service.access_log.my_archive(session, principal, page)
    return Page(items=[read(a) for a in rows], next_cursor=cursor)


@router.get(
    "/archive", summary="A holder's past applications (intake's prefill)", response_model=Page[ArchivedApplicationRead],
    description="With the applicant's token forwarded only their own holder ids are answered (assurance level 2 "
    "or more); a window clerk may ask for any holder, that read is logged, and phone and ID numbers come masked.",
    responses=problem_responses(401, 403, 422),
)
async def archive_for_holder(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    holder_id: Annotated[str, Query(min_length=1, max_length=18)],
) -> Page[ArchivedApplicationRead]:
    rows, cursor, masked = await service.access_log.archive_of_holder(session, principal, holder_id, page)
    return Page(items=[read(a, masked=masked) for a in rows], next_cursor=cursor)
