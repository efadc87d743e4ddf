"""好差评: the applicant rates the case once (一事一评); a bad rating is rectified, called back and re-rated."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy import service
from services.efficacy.api.headers import IDEMPOTENCY_KEY, created_headers, with_created_headers
from services.efficacy.domain.ratings import NAMES, Level, parse_level
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.idempotency import run_idempotent
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/ratings", tags=["ratings"])

#: A grade by its code or its Chinese name (非常满意 … 非常不满意); the schema lists both.
LevelIn = Annotated[Level, BeforeValidator(parse_level), WithJsonSchema({
    "type": "string", "enum": [*(lv.value for lv in Level), *(NAMES[lv] for lv in Level)],
    "description": "`very_satisfied` … `very_dissatisfied`, or 非常满意 … 非常不满意."})]
#: The grades' Chinese names, as shown.
LevelName = StrEnum("LevelName", {lv.value: NAMES[lv] for lv in Level})  # type: ignore[misc]


class RatingCreate(BaseModel):
    application_id: str = Field(min_length=1, max_length=64)
    level: LevelIn = Field(description="`very_satisfied` … `very_dissatisfied`, or 非常满意 … 非常不满意.")
    comment: str | None = Field(default=None, max_length=2000)
    tags: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=10)

    # The application id in the format intake issues (32 hexadecimal characters).
    model_config = {"json_schema_extra": {"examples": [{
        "application_id": "5b0f3c9e2d8a4e7f9c1b6a2d4e8f0a13", "level": "不满意", "comment": "超过承诺时限",
        "tags": ["未在承诺时限内办结"]}]}}


class CallbackOutcome(StrEnum):
    rectified = "rectified"
    explained = "explained"


class RectificationState(StrEnum):
    open = "open"
    called_back = "called_back"
    closed = "closed"


class CallbackCreate(BaseModel):
    note: str = Field(min_length=2, max_length=4000, description="What the applicant was told on the call-back.")
    outcome: CallbackOutcome = Field(description="`rectified`, or `explained` when the demand has no legal basis.")


class ReratingCreate(BaseModel):
    level: LevelIn


class RatingRead(BaseModel):
    rating_id: str
    application_id: str
    department: str | None
    level: Level
    level_name: LevelName = Field(description="非常满意, 满意, 基本满意, 不满意 or 非常不满意.")
    score: int
    comment: str | None
    tags: list[str]
    created_at: datetime
    rectification_state: RectificationState | None = Field(description="`open`, `called_back` or `closed` for bad "
                                                                       "ratings.")
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


def read(r: Any) -> RatingRead:
    """A row with the rating's columns, as the API shows it."""
    return RatingRead(
        rating_id=r.rating_id, application_id=r.application_id, department=r.department, level=Level(r.level),
        level_name=LevelName(NAMES[Level(r.level)]), score=r.score, comment=r.comment, tags=r.tags, created_at=r.created_at,
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
    responses={201: {"headers": created_headers("rating")}, **problem_responses(401, 404, 409, 422)},
)
async def rate(
    request: Request,
    body: RatingCreate,
    principal: CurrentPrincipal,
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> JSONResponse:
    async def work(session: AsyncSession) -> tuple[int, dict[str, object]]:
        row = await service.ratings.rate(session, principal, application_id=body.application_id, level=body.level,
                                         comment=body.comment, tags=body.tags)
        return 201, read(row).model_dump(mode="json")
    response = await run_idempotent(request, key=idempotency_key, scope=f"rating:{principal.subject}",
                                    payload=body.model_dump(mode="json"), work=work)
    return with_created_headers(response, request, "rating_id")


def _score(r: Any) -> dict[str, Any]:
    return dict(department=r.department, ratings=r.ratings, average_score=round(float(r.average), 2),
                bad_ratings=int(r.bad or 0), bad_share=round((r.bad or 0) / r.ratings, 4),
                rectified=int(r.rectified or 0))


@router.get("/departments", summary="Department scores (public)", response_model=list[DepartmentScore],
            responses=problem_responses(422))
async def departments(session: SessionDep) -> list[DepartmentScore]:
    return [DepartmentScore(**_score(r)) for r in await service.ratings.department_scores(session)]


class ItemScore(DepartmentScore):
    item_code: str | None


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
    rectification: RectificationState | None = None,
) -> Page[RatingRead]:
    rows, cursor = await service.ratings.list_ratings(
        session, principal, department=department, item=item, application_id=application_id, bad_only=bad_only,
        rectification=rectification.value if rectification else None, page=page)
    return Page[RatingRead](items=[read(r) for r in rows], next_cursor=cursor)


@router.get("/items", summary="Scores per department and item (public)", response_model=list[ItemScore],
            responses=problem_responses(422))
async def item_scores(session: SessionDep,
                      department: Annotated[str | None, Query(max_length=40)] = None) -> list[ItemScore]:
    return [ItemScore(item_code=r.item_code, **_score(r)) for r in await service.ratings.item_scores(session, department)]


@router.get("/{rating_id}", summary="One rating", response_model=RatingRead,
            responses=problem_responses(401, 404, 422))
async def get_rating(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)],
                     principal: CurrentPrincipal) -> RatingRead:
    return read(await service.ratings.get_rating(session, principal, rating_id))


@router.post(
    "/{rating_id}/callback",
    summary="The department records its call-back on a bad rating (回访)",
    response_model=RatingRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def callback(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)], body: CallbackCreate,
                   principal: CurrentPrincipal) -> RatingRead:
    return read(await service.ratings.record_callback(session, principal, rating_id, outcome=body.outcome.value,
                                                      note=body.note))


@router.post(
    "/{rating_id}/rerating",
    summary="The applicant rates again after the call-back",
    response_model=RatingRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rerate(session: SessionDep, rating_id: Annotated[str, Path(max_length=64)], body: ReratingCreate,
                 principal: CurrentPrincipal) -> RatingRead:
    return read(await service.ratings.rerate(session, principal, rating_id, body.level))
