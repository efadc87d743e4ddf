"""Post-verification of commitments (告知承诺): each commitment accepted instead of proof becomes a duty of the
item's department, which checks it afterwards and records the outcome on the application's timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.intake import cases
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.store import repository as repo
from services.intake.store.tables import Application, Attachment
from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict, Forbidden, NotFound
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow

router = APIRouter(tags=["commitments"])


def _department_of(principal: Principal) -> str:
    if principal.kind != "staff" or not principal.department or not principal.has(
        DEPARTMENT_REVIEWER, WINDOW_CLERK, SUPERVISOR, ADMIN
    ):
        raise Forbidden("Only a department's staff verify its commitments.")
    return principal.department


def _read(a: Attachment, app: Application) -> s.CommitmentRead:
    return s.CommitmentRead(
        attachment_id=a.id, application_id=app.id, receipt_number=app.receipt_number, item_code=app.item_code,
        material_code=a.material_code, applicant_id=app.applicant_id, statement=(a.details or {}).get("statement"),
        committed_at=a.created_at, verification=a.verification, verified_at=a.verified_at,
    )


@router.get(
    "/commitments", response_model=Page[s.CommitmentRead],
    summary="Commitments of submitted applications that my department must verify (告知承诺核查)",
    responses=problem_responses(401, 403, 422),
)
async def department_commitments(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    pending: Annotated[bool, Query(description="Only those not yet verified.")] = True,
) -> Page[s.CommitmentRead]:
    department = _department_of(principal)
    stmt = repo.commitments_query(department=department, pending_only=pending)
    rows, cursor = await paginate(session, stmt, key_columns=[Attachment.id], params=page,
                                  key_of=lambda a: [a.id], parse_key=deps.parse_id_key)
    apps = await repo.applications_by_id(session, [a.application_id for a in rows])
    return Page[s.CommitmentRead](items=[_read(a, apps[a.application_id]) for a in rows], next_cursor=cursor)


@router.post(
    "/commitments/{attachment_id}/verification", response_model=s.CommitmentRead,
    summary="Record the outcome of verifying a commitment",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def verify_commitment(attachment_id: s.RowId, body: s.CommitmentVerification, session: SessionDep,
                            principal: CurrentPrincipal) -> s.CommitmentRead:
    department = _department_of(principal)
    att = await repo.get_attachment(session, attachment_id)
    app = await repo.get_application(session, att.application_id) if att else None
    if att is None or app is None or att.kind != "commitment" or app.department != department:
        raise NotFound("No commitment of your department with this id.")
    if att.verification is not None:
        raise Conflict("This commitment has already been verified.", slug="already-verified")
    att.verification, att.verified_at = body.outcome, utcnow()
    await session.flush()
    by = deps.responder(principal)
    step = "告知承诺核查：属实" if body.outcome == "kept" else "告知承诺核查：承诺不实"
    await cases.note(session, app, step, unit=department, staff_name=by.name, staff_contact=by.contact, text=body.note)
    return _read(att, app)
