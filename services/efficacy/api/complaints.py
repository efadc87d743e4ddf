"""投诉举报: complaints about a case, an item, a department or a window, also anonymous."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy import service
from services.efficacy.api.headers import IDEMPOTENCY_KEY, created_headers, with_created_headers
from shared.auth import CurrentPrincipal, OptionalPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.pagination import Page, PageDep
from shared.service import token_or

router = APIRouter(prefix="/complaints", tags=["complaints"])


class AboutKind(StrEnum):
    case = "case"
    item = "item"
    department = "department"
    window = "window"


class ComplaintState(StrEnum):
    open = "open"
    answered = "answered"
    closed = "closed"


class About(BaseModel):
    kind: AboutKind
    ref: str = Field(min_length=1, max_length=120, description="Application id, item code, department or window code.")


class ComplaintCreate(BaseModel):
    about: About
    department: str | None = Field(default=None, max_length=40,
                                   description="The department concerned; found from the case when omitted.")
    text: str = Field(min_length=5, max_length=4000)

    model_config = {"json_schema_extra": {"examples": [{
        "about": {"kind": "department", "ref": "LD-SCJGJ"}, "department": "LD-SCJGJ",
        "text": "窗口要求提供办事指南以外的材料。"}]}}


class ComplaintRead(BaseModel):
    complaint_id: str
    about: About
    department: str
    text: str
    anonymous: bool
    state: ComplaintState = Field(description="`open`, `answered` or `closed` (the complainant rated the answer).")
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


def read(r: Any) -> ComplaintRead:
    return ComplaintRead(complaint_id=r.complaint_id, about=About(kind=r.about_kind, ref=r.about_ref),
                         department=r.department, text=r.text, anonymous=r.complainant is None, state=r.state,
                         created_at=r.created_at, deadline_on=r.deadline_on, answer=r.answer,
                         answered_at=r.answered_at, answer_score=r.answer_score)


#: Anyone may complain, anonymously too: the token is optional, which OpenAPI says with `{}` beside the bearer
#: requirement FastAPI declares from the (optional) principal dependency (`openapi_extra` lists are appended).
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}]}


@router.post("", status_code=201, summary="File a complaint (anonymous allowed)", response_model=ComplaintFiled,
             description="Accepts `Idempotency-Key`: a retry with the same key and body returns the first answer.",
             responses={201: {"headers": created_headers("complaint")}, **problem_responses(401, 409, 422)},
             openapi_extra=OPTIONAL_BEARER)
async def file_complaint(
    request: Request,
    body: ComplaintCreate,
    principal: OptionalPrincipal,
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, dict[str, object]]:
        row, secret = await service.complaints.file(session, principal, about_kind=body.about.kind.value,
                                                    about_ref=body.about.ref, department=body.department,
                                                    text=body.text)
        return 201, ComplaintFiled(**read(row).model_dump(), secret=secret).model_dump(mode="json")
    scope = f"complaint:{principal.subject if principal else 'anonymous'}"
    response = await run_idempotent(request, key=idempotency_key, scope=scope, payload=body.model_dump(mode="json"),
                                    work=work)
    return with_created_headers(response, request, "complaint_id")


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
    state: ComplaintState | None = None,
) -> Page[ComplaintRead]:
    rows, cursor = await service.complaints.list_complaints(
        session, principal, department=department, about_kind=about_kind.value if about_kind else None,
        about_ref=about_ref, state=state.value if state else None, page=page)
    return Page[ComplaintRead](items=[read(r) for r in rows], next_cursor=cursor)


@router.get("/departments", summary="Complaint counts per department (public)", response_model=list[DepartmentCounts])
async def counts(session: SessionDep) -> list[DepartmentCounts]:
    return [DepartmentCounts(department=r.department, received=r.received, answered=int(r.answered or 0),
                             overdue=int(r.overdue or 0)) for r in await service.complaints.counts(session)]


@router.get("/{complaint_id}", summary="One complaint (complainant, department, supervisors)",
            description="With a bearer token, or without one and with the complaint's `secret` (anonymous "
                        "complainants).",
            response_model=ComplaintRead, responses=problem_responses(401, 404, 422), **token_or("ComplaintSecret", {
                "type": "apiKey", "in": "query", "name": "secret",
                "description": "The secret an anonymous complaint's receipt gives (instead of a bearer token)."}))
async def get_complaint(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)],
                        principal: OptionalPrincipal,
                        secret: Annotated[str | None, Query(max_length=100)] = None) -> ComplaintRead:
    return read(await service.complaints.get_complaint(session, principal, complaint_id, secret))


@router.post("/{complaint_id}/answer", summary="The department answers", response_model=ComplaintRead,
             responses=problem_responses(401, 403, 404, 409, 422))
async def answer(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)], body: AnswerCreate,
                 principal: CurrentPrincipal) -> ComplaintRead:
    return read(await service.complaints.answer(session, principal, complaint_id, body.answer))


@router.post("/{complaint_id}/rating", summary="The complainant rates the answer", response_model=ComplaintRead,
             description="With the complainant's bearer token, or without one and with the `secret` (anonymous "
                         "complaints).",
             responses=problem_responses(403, 404, 409, 422), openapi_extra=OPTIONAL_BEARER)
async def rate_answer(session: SessionDep, complaint_id: Annotated[str, Path(max_length=64)], body: AnswerRating,
                      principal: OptionalPrincipal) -> ComplaintRead:
    return read(await service.complaints.rate_answer(session, principal, complaint_id, score=body.score,
                                                     secret=body.secret))
