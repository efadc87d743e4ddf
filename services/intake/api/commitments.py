"""Post-verification of commitments (告知承诺): each commitment accepted instead of proof becomes a duty of the
item's department, which checks it afterwards and records the outcome on the application's timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.intake import service
from services.intake.api import schemas as s
from services.intake.api.openapi import DEPARTMENT, responses
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.pagination import Page, PageDep

router = APIRouter(tags=["commitments"])


def _read(a: Any, app: Any) -> s.CommitmentRead:
    return s.CommitmentRead(
        attachment_id=a.id, application_id=app.id, receipt_number=app.receipt_number, item_code=app.item_code,
        material_code=a.material_code, applicant_id=app.applicant_id, statement=(a.details or {}).get("statement"),
        committed_at=a.created_at, verification=a.verification, verified_at=a.verified_at,
    )


@router.get(
    "/commitments", response_model=Page[s.CommitmentRead],
    summary="Commitments of submitted applications that my department must verify (告知承诺核查)",
    responses=responses(200, 401, 403, 422),
)
async def department_commitments(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    pending: Annotated[bool, Query(description="Only those not yet verified.")] = True,
) -> Page[s.CommitmentRead]:
    rows, cursor = await service.commitments.department_commitments(session, principal, page, pending=pending)
    return Page[s.CommitmentRead](items=[_read(a, app) for a, app in rows], next_cursor=cursor)


@router.post(
    "/commitments/{attachment_id}/verification", response_model=s.CommitmentRead,
    openapi_extra=DEPARTMENT,
    summary="Record the outcome of verifying a commitment",
    responses=responses(200, 401, 403, 404, 409, 422),
)
async def verify_commitment(attachment_id: s.RowId, body: s.CommitmentVerification, session: SessionDep,
                            principal: CurrentPrincipal) -> s.CommitmentRead:
    att, app = await service.commitments.verify(session, principal, attachment_id, outcome=body.outcome,
                                                note_text=body.note)
    return _read(att, app)
