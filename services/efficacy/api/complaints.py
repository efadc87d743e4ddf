"""投诉举报: complaints about a case, an item, a department or a window, also anonymous."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.api.access import department_of, is_overseer
from services.efficacy.casework import current_config
from services.efficacy.domain.calendar import CHINA
from services.efficacy.store import cases
from services.efficacy.store import ratings as store
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import complaint as complaint_table
from shared.auth import CurrentPrincipal, OptionalPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, invalid
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow

router = APIRouter(prefix="/complaints", tags=["complaints"])


class AboutKind(StrEnum):
    case = "case"
    item = "item"
    department = "department"
    window = "window"


class About(BaseModel):
    kind: AboutKind
    ref: str = Field(min_length=1, max_length=120, description="Application id, item code, department or window code.")


class ComplaintCreate(BaseModel):
    about: About
    department: str | None = Field(default=None, max_length=40,
                                   description="The department concerned; found from the case when omitted.")
    text: str = Field(min_length=5, max_length=4000)

    model_config = {"json_schema_extra": {"examples": [{
        "about": {"kind": "window", "ref": "LD-CENTRE-W12"}, "department": "LD-SCJGJ",
        "text": "窗口要求提供办事指南以外的材料。"}]}}


class ComplaintRead(BaseModel):
    complaint_id: str
    about: About
    department: str
    text: str
    anonymous: bool
    state: str = Field(description="`open`, `answered` or `closed` (the complainant rated the answer).")
    created_at: datetime
    deadline_on: date
    answer: str | None
    answered_at: datetime | None
    answer_score: int | None


class ComplaintFiled(ComplaintRead):
    secret: str = Field(description="Keep it: with it, an anonymous complainant reads the answer and rates it.")


class AnswerCreate(BaseModel):
    answer: str = Field(min_length=2, max_length=4000)


class AnswerRating(BaseModel):
    score: int = Field(ge=1, le=5, description="5 = 非常满意 … 1 = 非常不满意.")
    secret: str | None = Field(default=None, max_length=100, description="For anonymous complaints.")


class DepartmentCounts(BaseModel):
    department: str
    received: int
    answered: int
    overdue: int = Field(description="Open past their deadline today.")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def read(r: object) -> ComplaintRead:
    return ComplaintRead(complaint_id=r.complaint_id, about=About(kind=r.about_kind, ref=r.about_ref),
                         department=r.department, text=r.text, anonymous=r.complainant is None, state=r.state,
                         created_at=r.created_at, deadline_on=r.deadline_on, answer=r.answer,
                         answered_at=r.answered_at, answer_score=r.answer_score)


@router.post("", status_code=201, summary="File a complaint (anonymous allowed)", response_model=ComplaintFiled,
             description="Accepts `Idempotency-Key`: a retry with the same key and body returns the first answer.",
             responses=problem_responses(401, 409, 422),
             # Anyone may complain, anonymously too: the token is optional, which OpenAPI says with `{}`.
             openapi_extra={"security": [{}, {"HTTPBearer": []}]})
async def file_complaint(
    request: Request,
    body: ComplaintCreate,
    principal: OptionalPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, dict[str, object]]:
        return 201, (await _file(session, body, principal)).model_dump(mode="json")
    scope = f"complaint:{principal.subject if principal else 'anonymous'}"
    return await run_idempotent(request, key=idempotency_key, scope=scope, payload=body.model_dump(mode="json"),
                                work=work)


async def _file(session: AsyncSession, body: ComplaintCreate, principal: Principal | None) -> ComplaintFiled:
    department = body.department or (body.about.ref if body.about.kind == AboutKind.department else None)
    if department is None and body.about.kind == AboutKind.case:
        case_row = await cases.get_case(session, body.about.ref)
        department = case_row.department if case_row else None
    if not department:
        raise invalid("body.department", "required", "Name the department (it could not be found from the case).")
    cal = await current_calendar(session)
    deadline = cal.add_workdays(datetime.now(CHINA).date(), current_config().complaint_days).value
    secret, complaint_id = secrets.token_urlsafe(16), uuid.uuid4().hex
    await store.add_complaint(session, complaint_id=complaint_id, about_kind=body.about.kind.value,
                              about_ref=body.about.ref, department=department, text=body.text,
                              complainant=principal.subject if principal else None, secret_hash=_hash(secret),
                              deadline_on=deadline)
    return ComplaintFiled(**read(await store.get_complaint(session, complaint_id)).model_dump(), secret=secret)


def _may_see(principal: Principal | None, row: object, secret: str | None) -> bool:
    if secret and hmac.compare_digest(_hash(secret), row.secret_hash):
        return True
    if principal is None:
        return False
    return (is_overseer(principal) or (row.complainant is not None and principal.subject == row.complainant)
            or department_of(principal) == row.department)


@router.get("", summary="Complaints, newest first (supervisors; a department's staff see their own)",
            description="For following complaints up: filter by the department concerned, what it is about "
                        "(`about_kind` + `about_ref`, e.g. `case` and an application id) and state. The "
                        "complainant's identity is never listed; `anonymous` says whether there is one.",
            response_model=Page[ComplaintRead], responses=problem_responses(401, 403, 422))
async def list_complaints(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    department: Annotated[str | None, Query(max_length=40)] = None,
    about_kind: AboutKind | None = None,
    about_ref: Annotated[str | None, Query(max_length=120)] = None,
    state: Annotated[str | None, Query(pattern="^(open|answered|closed)$")] = None,
) -> Page[ComplaintRead]:
    if not is_overseer(principal):
        own = department_of(principal)
        if own is None:
            raise Forbidden("Supervisors see every complaint; a department's staff see their own department's.")
        if department and department != own:
            raise Forbidden("A department's staff see their own department's complaints only.")
        department = own
    q = store.complaints_query(department=department, about_kind=about_kind.value if about_kind else None,
                               about_ref=about_ref, state=state)
    ids, cursor = await paginate(session, q, key_columns=[complaint_table.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    return Page[ComplaintRead](items=[read(r) for r in await store.complaints_by_id(session, ids)],
                               next_cursor=cursor)


@router.get("/departments", summary="Complaint counts per department (public)", response_model=list[DepartmentCounts])
async def counts(session: SessionDep) -> list[DepartmentCounts]:
    today = datetime.now(CHINA).date()
    return [DepartmentCounts(department=r.department, received=r.received, answered=int(r.answered or 0),
                             overdue=int(r.overdue or 0)) for r in await store.complaint_counts(session, today)]


@router.get("/{complaint_id}", summary="One complaint (complainant, department, supervisors)",
            response_model=ComplaintRead, responses=problem_responses(401, 404))
async def get_complaint(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)],
                        principal: OptionalPrincipal,
                        secret: Annotated[str | None, Query(max_length=100)] = None) -> ComplaintRead:
    row = await store.get_complaint(session, complaint_id)
    if row is None or not _may_see(principal, row, secret):
        if principal is None:  # the secret is an anonymous complainant's credential: wrong or missing, unknown or not
            raise Unauthorized("Give a bearer token, or the complaint's secret (anonymous complaints).")
        raise NotFound("No such complaint.")  # to a signed-in stranger, like an unknown complaint
    return read(row)


@router.post("/{complaint_id}/answer", summary="The department answers", response_model=ComplaintRead,
             responses=problem_responses(401, 403, 404, 409, 422))
async def answer(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)], body: AnswerCreate,
                 principal: CurrentPrincipal) -> ComplaintRead:
    row = await store.get_complaint(session, complaint_id)
    if row is None:
        raise NotFound("No such complaint.")
    if not (is_overseer(principal) or department_of(principal) == row.department):
        raise Forbidden("The department concerned answers.")
    if row.state != "open":
        raise Conflict("This complaint has been answered already.", slug="already-answered")
    await store.update_complaint(session, complaint_id, answer=body.answer, answered_at=utcnow(), state="answered")
    return read(await store.get_complaint(session, complaint_id))


@router.post("/{complaint_id}/rating", summary="The complainant rates the answer", response_model=ComplaintRead,
             responses=problem_responses(403, 404, 409, 422))
async def rate_answer(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)], body: AnswerRating,
                      principal: OptionalPrincipal) -> ComplaintRead:
    row = await store.get_complaint(session, complaint_id)
    if row is None:
        raise NotFound("No such complaint.")
    by_secret = body.secret is not None and hmac.compare_digest(_hash(body.secret), row.secret_hash)
    by_token = principal is not None and row.complainant is not None and principal.subject == row.complainant
    if not (by_secret or by_token):
        raise Forbidden("Only the complainant rates the answer (anonymous: with the secret given at filing).")
    if row.state != "answered":
        raise Conflict("Only an answered, unrated complaint can be rated.", slug="not-answered")
    await store.update_complaint(session, complaint_id, answer_score=body.score, state="closed")
    return read(await store.get_complaint(session, complaint_id))
