"""Routes of the access log (数据访问日志): the data subject's view, the supervisor's audit and verification."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.datashare import service
from shared.auth import ADMIN, SUPERVISOR, CurrentPrincipal, Principal, require_roles
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep
from shared.privacy import mask_id_number

router = APIRouter(tags=["access log"])


class AnomalyKind(StrEnum):
    """What the access watch (安全监控) looks for."""

    READS_OUTSIDE_CASES = "reads_outside_cases"
    REFUSED_READS = "refused_reads"
    NIGHT_READS = "night_reads"
    FAILED_VERIFICATIONS = "failed_verifications"


class AccessRead(BaseModel):
    """Who read whose data, through which service, for which application, when."""

    seq: int
    recorded_at: datetime
    accessor_subject: str
    accessor_kind: Literal["person", "staff", "department_system", "service", "public"]
    accessor_department: str | None
    service: str
    action: str
    target: str
    holder: str | None = Field(description="Masked for auditors; in full for the data subject.")
    application_id: str | None
    item_code: str | None
    material_code: str | None
    purpose: str | None
    fields: list[str]
    outcome: str
    hash: str


class ChainVerification(BaseModel):
    intact: bool
    rows_checked: int
    first_broken_seq: int | None
    reason: str | None
    head_seq: int | None


def read(e: Any, *, mask: bool) -> AccessRead:
    return AccessRead(
        seq=e.seq, recorded_at=e.recorded_at, accessor_subject=e.accessor_subject, accessor_kind=e.accessor_kind,
        accessor_department=e.accessor_department, service=e.service, action=e.action, target=e.target,
        holder=mask_id_number(e.holder_id) if mask else e.holder_id, application_id=e.application_id,
        item_code=e.item_code, material_code=e.material_code, purpose=e.purpose, fields=list(e.fields or []), outcome=e.outcome,
        hash=e.hash,
    )


@router.get(
    "/me/access-log", summary="Who read my data, and why",
    description="The data subject's own entries (holder = the token's `hid` or `org`), newest first.",
    responses=problem_responses(401, 403),
)
async def my_access_log(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[AccessRead]:
    rows, cursor = await service.access_log.my_entries(session, principal, page)
    return Page(items=[read(e, mask=False) for e in rows], next_cursor=cursor)


@router.get(
    "/me/lookups", summary="Who looked me up without an application, and why",
    description="The data subject's entries that name no application: look-ups by admins and supervisors with "
    "their written reason (`purpose`), and refused attempts. They are in `GET /me/access-log` too; identity's "
    "`GET /identity/v1/me/lookups` lists the window look-ups of the person's account. Newest first.",
    responses=problem_responses(401, 403),
)
async def my_lookups(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[AccessRead]:
    rows, cursor = await service.access_log.my_lookups(session, principal, page)
    return Page(items=[read(e, mask=False) for e in rows], next_cursor=cursor)


class AnomalyRead(BaseModel):
    """Unusual reading the access watch found (安全监控); the evidence is the access-log entries `entry_seqs`."""

    id: str
    kind: AnomalyKind
    reader: str
    reader_kind: str
    reader_department: str | None
    count: int
    threshold: int
    window_start: datetime
    window_end: datetime
    entry_seqs: list[int]
    detected_at: datetime


@router.get(
    "/access-anomalies", summary="Unusual reading found by the access watch (supervisor)",
    description="Newest first (at most 100). Each one was also published as `yimen.datashare.access.anomaly`, "
    "which opens a supervision item (督办) for the data office in efficacy.",
    responses=problem_responses(401, 403),
)
async def list_anomalies(session: SessionDep, _p: Principal = require_roles(SUPERVISOR, ADMIN)) -> list[AnomalyRead]:
    return [AnomalyRead(id=a.id, kind=AnomalyKind(a.kind), reader=a.reader, reader_kind=a.reader_kind,
                        reader_department=a.reader_department, count=a.count, threshold=a.threshold,
                        window_start=a.window_start, window_end=a.window_end, entry_seqs=list(a.entry_seqs),
                        detected_at=a.detected_at)
            for a in await service.access_log.anomalies(session)]


@router.get(
    "/access-log", summary="Audit reads by department (supervisor)",
    description="Entries whose reader belonged to `department` and/or was the account `accessor` (an anomaly's "
    "`reader`, also `client:<hash>`), all when both are omitted; newest first; holders masked.",
    responses=problem_responses(401, 403),
)
async def audit_access_log(
    session: SessionDep,
    page: PageDep,
    department: Annotated[str | None, Query(max_length=40)] = None,
    accessor: Annotated[str | None, Query(max_length=120, description="The reader's account id.")] = None,
    _p: Principal = require_roles(SUPERVISOR, ADMIN),
) -> Page[AccessRead]:
    rows, cursor = await service.access_log.audit(session, page, department=department, accessor=accessor)
    return Page(items=[read(e, mask=True) for e in rows], next_cursor=cursor)


@router.get(
    "/access-log/verification", summary="Verify the hash chain (supervisor)",
    description="Recomputes every row's hash; names the first row that was edited, removed or reordered.",
    responses=problem_responses(401, 403),
)
async def verify_access_log(session: SessionDep, _p: Principal = require_roles(SUPERVISOR, ADMIN)) -> ChainVerification:
    report, head_seq = await service.verify_access_log(session)
    return ChainVerification(
        intact=report.intact, rows_checked=report.rows_checked, first_broken_seq=report.first_broken_seq,
        reason=report.reason, head_seq=head_seq,
    )
