"""好差评: the applicant rates the case once (一事一评); a bad rating is rectified, called back and re-rated."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.api.access import department_of, is_applicant, is_overseer
from services.efficacy.casework import current_config
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.ratings import NAMES, SCORES, Level, is_bad, parse_level
from services.efficacy.events.contracts import RATING_BAD, RatingBad
from services.efficacy.store import cases, supervision
from services.efficacy.store import ratings as store
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import rating as rating_table
from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Conflict, Forbidden, NotFound
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.messaging import publish
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow

router = APIRouter(prefix="/ratings", tags=["ratings"])

LevelIn = Annotated[Level, BeforeValidator(parse_level)]


class RatingCreate(BaseModel):
    application_id: str = Field(min_length=1, max_length=64)
    level: LevelIn = Field(description="`very_satisfied` … `very_dissatisfied`, or 非常满意 … 非常不满意.")
    comment: str | None = Field(default=None, max_length=2000)
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=10)

    model_config = {"json_schema_extra": {"examples": [{
        "application_id": "A-20260302-0001", "level": "不满意", "comment": "超过承诺时限",
        "tags": ["未在承诺时限内办结"]}]}}


class CallbackCreate(BaseModel):
    note: str = Field(min_length=2, max_length=4000, description="What the applicant was told on the call-back.")
    outcome: str = Field(pattern="^(rectified|explained)$",
                         description="`rectified`, or `explained` when the demand has no legal basis.")


class ReratingCreate(BaseModel):
    level: LevelIn


class RatingRead(BaseModel):
    rating_id: str
    application_id: str
    department: str | None
    level: Level
    level_name: str
    score: int
    comment: str | None
    tags: list[str]
    created_at: datetime
    rectification_state: str | None = Field(description="`open`, `called_back` or `closed` for bad ratings.")
    rectification_due_on: date | None
    callback_at: datetime | None
    callback_note: str | None
    rerated_level: Level | None


class DepartmentScore(BaseModel):
    department: str | None
    ratings: int
    average_score: float
    bad_ratings: int
    bad_share: float
    rectified: int


def read(row: object) -> RatingRead:
    r = row  # a Row with the rating's columns
    return RatingRead(
        rating_id=r.rating_id, application_id=r.application_id, department=r.department, level=Level(r.level),
        level_name=NAMES[Level(r.level)], score=r.score, comment=r.comment, tags=r.tags, created_at=r.created_at,
        rectification_state=r.rectification_state, rectification_due_on=r.rectification_due_on,
        callback_at=r.callback_at, callback_note=r.callback_note,
        rerated_level=Level(r.rerated_level) if r.rerated_level else None,
    )


@router.post(
    "",
    status_code=201,
    summary="Rate a case (the applicant, once per case)",
    description="Accepts `Idempotency-Key`. Dissatisfied or worse opens a rectification for the department with a deadline in working days, "
                "a supervision item, and the event `yimen.efficacy.rating.bad`.",
    response_model=RatingRead,
    responses=problem_responses(401, 404, 409, 422),
)
async def rate(
    request: Request,
    body: RatingCreate,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, dict[str, object]]:
        return 201, (await _rate(session, body, principal)).model_dump(mode="json")
    return await run_idempotent(request, key=idempotency_key, scope=f"rating:{principal.subject}",
                                payload=body.model_dump(mode="json"), work=work)


async def _rate(session: AsyncSession, body: RatingCreate, principal: Principal) -> RatingRead:
    case_row = await cases.get_case(session, body.application_id)
    # Someone else's case answers like an unknown one: a stranger learns nothing of its existence.
    if case_row is None or case_row.applicant is None or not is_applicant(principal, case_row.applicant):
        raise NotFound("No accepted application with this id.")
    rating_id = uuid.uuid4().hex
    bad = is_bad(body.level)
    due = None
    if bad:
        cal = await current_calendar(session)
        due = cal.add_workdays(datetime.now(CHINA).date(), current_config().rectification_days).value
    added = await store.add_rating(
        session, rating_id=rating_id, application_id=body.application_id, rater=principal.subject,
        department=case_row.department, item_code=case_row.item_code, level=body.level.value,
        score=SCORES[body.level], comment=body.comment, tags=body.tags,
        rectification_state="open" if bad else None, rectification_due_on=due)
    if not added:
        raise Conflict("This case has been rated already (one rating per case online).", slug="already-rated")
    if bad:
        await publish(session, RATING_BAD, subject=body.application_id, data=RatingBad(
            rating_id=rating_id, application_id=body.application_id, department=case_row.department,
            level=body.level.value, tags=body.tags, comment=body.comment))
        await supervision.open_item(
            session, dedupe_key=f"rating:{rating_id}", kind="bad_rating", is_case=True,
            department=case_row.department, application_id=body.application_id,
            detail=f"差评 ({NAMES[body.level]}): call back and rectify by {due}. {body.comment or ''}".strip())
    return read(await store.get_rating(session, rating_id))


async def _rating_for(session: SessionDep, rating_id: str, principal: Principal) -> object:
    row = await store.get_rating(session, rating_id)
    if row is None:
        raise NotFound("No such rating.")
    if not (is_overseer(principal) or principal.subject == row.rater
            or (department_of(principal) is not None and department_of(principal) == row.department)):
        raise NotFound("No such rating.")  # to a stranger, like an unknown rating
    return row


@router.get("/departments", summary="Department scores (public)", response_model=list[DepartmentScore])
async def departments(session: SessionDep) -> list[DepartmentScore]:
    return [DepartmentScore(department=r.department, ratings=r.ratings, average_score=round(float(r.average), 2),
                            bad_ratings=int(r.bad or 0), bad_share=round((r.bad or 0) / r.ratings, 4),
                            rectified=int(r.rectified or 0))
            for r in await store.department_scores(session)]


class ItemScore(DepartmentScore):
    item_code: str | None


def _oversight_scope(principal: Principal) -> str | None:
    """None = every department (supervisors); else the department whose ratings the staff member sees."""
    if is_overseer(principal):
        return None
    dept = department_of(principal)
    if dept is None:
        raise Forbidden("Supervisors see every rating; a department's staff see their own department's.")
    return dept


@router.get("", summary="Ratings, newest first (supervisors; a department's staff see their own)",
            description="For following up bad ratings (差评整改): filter by department, item, application, bad "
                        "only, or rectification state (`open`, `called_back`, `closed`).",
            response_model=Page[RatingRead], responses=problem_responses(401, 403, 422))
async def list_ratings(
    session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    department: Annotated[str | None, Query(max_length=40)] = None,
    item: Annotated[str | None, Query(max_length=80, description="Item code.")] = None,
    application_id: Annotated[str | None, Query(max_length=64)] = None,
    bad_only: bool = False,
    rectification: Annotated[str | None, Query(pattern="^(open|called_back|closed)$")] = None,
) -> Page[RatingRead]:
    scope = _oversight_scope(principal)
    if scope and department and department != scope:
        raise Forbidden("A department's staff see their own department's ratings only.")
    q = store.ratings_query(department=scope or department, item=item, application_id=application_id,
                            bad_only=bad_only, rectification=rectification)
    ids, cursor = await paginate(session, q, key_columns=[rating_table.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    return Page[RatingRead](items=[read(r) for r in await store.ratings_by_id(session, ids)], next_cursor=cursor)


@router.get("/items", summary="Scores per department and item (public)", response_model=list[ItemScore])
async def item_scores(session: SessionDep,
                      department: Annotated[str | None, Query(max_length=40)] = None) -> list[ItemScore]:
    return [ItemScore(department=r.department, item_code=r.item_code, ratings=r.ratings,
                      average_score=round(float(r.average), 2), bad_ratings=int(r.bad or 0),
                      bad_share=round((r.bad or 0) / r.ratings, 4), rectified=int(r.rectified or 0))
            for r in await store.item_scores(session, department)]


@router.get("/{rating_id}", summary="One rating", response_model=RatingRead,
            responses=problem_responses(401, 404))
async def get_rating(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)],
                     principal: CurrentPrincipal) -> RatingRead:
    return read(await _rating_for(session, rating_id, principal))


@router.post(
    "/{rating_id}/callback",
    summary="The department records its call-back on a bad rating (回访)",
    response_model=RatingRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def callback(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)], body: CallbackCreate,
                   principal: CurrentPrincipal) -> RatingRead:
    row = await _rating_for(session, rating_id, principal)
    if principal.subject == row.rater and not is_overseer(principal) and department_of(principal) != row.department:
        raise Forbidden("The department rated records the call-back.")
    if row.rectification_state != "open":
        raise Conflict("Only an open rectification of a bad rating takes a call-back.", slug="not-open")
    await store.update_rating(session, rating_id, callback_at=utcnow(), callback_note=f"[{body.outcome}] {body.note}",
                              rectification_state="called_back")
    return read(await store.get_rating(session, rating_id))


@router.post(
    "/{rating_id}/rerating",
    summary="The applicant rates again after the call-back",
    response_model=RatingRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rerate(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)], body: ReratingCreate,
                 principal: CurrentPrincipal) -> RatingRead:
    row = await _rating_for(session, rating_id, principal)
    if principal.subject != row.rater:
        raise Forbidden("Only the rater rates again.")
    if row.rectification_state != "called_back":
        raise Conflict("A re-rating follows the department's call-back on a bad rating.", slug="not-called-back")
    await store.update_rating(session, rating_id, rerated_level=body.level.value, rerated_at=utcnow(),
                              rectification_state="closed")
    return read(await store.get_rating(session, rating_id))
