"""红黄牌 and 督办: card forecasts, evaluation, raised cards and the supervision queue."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.efficacy import service
from shared.auth import (
    ADMIN,
    DEPARTMENT_REVIEWER,
    DEPARTMENT_SYSTEM,
    SUPERVISOR,
    CurrentPrincipal,
    Principal,
    require_roles,
)
from shared.bounds import BoundedDate, BoundedInstant, RowIdInt
from shared.db import SessionDep
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep

router = APIRouter(tags=["supervision"])


class Colour(StrEnum):
    yellow = "yellow"
    red = "red"


class CardReason(StrEnum):
    """Why a card: the promised deadline near (yellow) or passed (red), the statutory limit passed (a second red),
    and the same for the acceptance step's own limit (受理时限)."""

    near_deadline = "near_deadline"
    promised_limit_exceeded = "promised_limit_exceeded"
    statutory_limit_exceeded = "statutory_limit_exceeded"
    acceptance_near_deadline = "acceptance_near_deadline"
    acceptance_limit_exceeded = "acceptance_limit_exceeded"


class SupervisionKind(StrEnum):
    yellow_card = "yellow_card"
    red_card = "red_card"
    bad_rating = "bad_rating"
    repeated_application = "repeated_application"
    material_asked_again = "material_asked_again"
    complaint_overdue = "complaint_overdue"
    rectification_overdue = "rectification_overdue"
    data_access_anomaly = "data_access_anomaly"


class SupervisionState(StrEnum):
    open = "open"
    answered = "answered"
    cleared = "cleared"


class CardForecast(BaseModel):
    application_id: str
    task_id: str | None
    department: str | None
    colour: Colour
    reason: CardReason
    deadline_on: date | None
    statutory_deadline_on: date | None
    remaining_workdays: int | None
    assumed_years: list[int]


class CardForecastList(BaseModel):
    as_of: date
    items: list[CardForecast]


class CardRead(BaseModel):
    card_id: str
    application_id: str
    task_id: str | None
    department: str | None
    colour: Colour
    reason: CardReason
    deadline_at: datetime
    raised_at: datetime
    cleared_at: datetime | None


class Evaluation(BaseModel):
    as_of: datetime
    raised: list[CardRead]


class SupervisionRead(BaseModel):
    id: int
    kind: SupervisionKind = Field(description="`yellow_card`, `red_card` (a 督办 case), `bad_rating` (整改), `repeated_application`, `material_asked_again`, `complaint_overdue`, `rectification_overdue` or `data_access_anomaly` (安全监控: unusual reading of personal data, for the data office).")
    is_case: bool = Field(description="A supervision case (督办) the department must answer.")
    card_id: str | None
    application_id: str | None
    department: str | None
    detail: str
    state: SupervisionState = Field(description="`open`, `answered` or `cleared` (the case moved on).")
    opened_at: datetime
    answer: str | None
    answered_at: datetime | None


class AnswerCreate(BaseModel):
    answer: str = Field(min_length=2, max_length=4000, description="What the department did and why.")

    model_config = {"json_schema_extra": {"examples": [{"answer": "专家评审延误，已于今日办结并电话告知申请人。"}]}}


@router.get(
    "/cards",
    summary="Forecast which cases carry a yellow or red card on a date",
    description="A pure function of today's clocks and the calendar: no card is raised. `as_of` defaults to today.",
    response_model=CardForecastList,
    responses=problem_responses(401, 403, 422),
)
async def forecast_cards(
    session: SessionDep,
    principal: CurrentPrincipal,
    as_of: Annotated[BoundedDate | None, Query(description="The day to forecast (Asia/Shanghai).")] = None,
    colour: Colour | None = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
) -> CardForecastList:
    day, forecasts = await service.cards.forecast_cards(session, principal, day=as_of,
                                                        colour=colour.value if colour else None,
                                                        department=department)
    return CardForecastList(as_of=day, items=[
        CardForecast(application_id=f.view.state.application_id, task_id=f.view.state.task_id,
                     department=f.view.state.department, colour=Colour(f.decision.colour),
                     reason=CardReason(f.decision.reason), deadline_on=f.view.deadline_on,
                     statutory_deadline_on=f.view.statutory_deadline_on,
                     remaining_workdays=f.view.remaining_workdays, assumed_years=sorted(f.view.assumed_years))
        for f in forecasts])


@router.post(
    "/cards/evaluation",
    summary="Raise the cards due at an instant (supervisor, admin)",
    description="What the background job does, at a chosen instant: each threshold crossing raises one card (row, "
                "event, queue row, webhook), however often it is evaluated. The job runs every few seconds while a "
                "running clock is due today, and otherwise sleeps until the next local midnight (at most "
                "`evaluation_idle_seconds`): watch days and deadlines are whole working days.",
    response_model=Evaluation,
    responses=problem_responses(401, 403, 422),
)
async def run_evaluation(
    session: SessionDep,
    as_of: Annotated[BoundedInstant | None, Query(description="Instant (default now); naive = Asia/Shanghai.")] = None,
    _: Principal = require_roles(SUPERVISOR, ADMIN),
) -> Evaluation:
    at = service.as_instant(as_of)
    raised = await service.cards.evaluate_now(session, at)
    return Evaluation(as_of=at, raised=[CardRead(**r, cleared_at=None) for r in raised])


@router.get(
    "/cards/raised",
    summary="Cards raised so far",
    response_model=list[CardRead],
    responses=problem_responses(401, 403, 422),
)
async def raised_cards(
    session: SessionDep,
    principal: CurrentPrincipal,
    colour: Colour | None = None,
    application_id: Annotated[str | None, Query(max_length=64)] = None,
    open_only: bool = False,
) -> list[CardRead]:
    rows = await service.cards.raised_cards(session, principal, colour=colour.value if colour else None,
                                            application_id=application_id, open_only=open_only)
    return [CardRead.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/supervision",
    summary="The supervision queue (督办)",
    description="Supervisors see every item; a department's staff see their department's.",
    response_model=Page[SupervisionRead],
    responses=problem_responses(401, 403, 422),
)
async def list_supervision(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    state: SupervisionState | None = None,
    kind: SupervisionKind | None = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
    application_id: Annotated[str | None, Query(max_length=64, description="The items of one case.")] = None,
) -> Page[SupervisionRead]:
    rows, cursor = await service.cards.supervision_queue(
        session, principal, state=state.value if state else None, kind=kind.value if kind else None,
        department=department, application_id=application_id, page=page)
    return Page[SupervisionRead](items=[SupervisionRead.model_validate(r, from_attributes=True) for r in rows],
                                 next_cursor=cursor)


@router.post(
    "/supervision/{item_id}/answer",
    summary="The department answers a supervision item",
    response_model=SupervisionRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def answer_supervision(
    session: SessionDep,
    item_id: Annotated[RowIdInt, Path()],
    body: AnswerCreate,
    principal: Principal = require_roles(DEPARTMENT_REVIEWER, DEPARTMENT_SYSTEM, SUPERVISOR, ADMIN),
) -> SupervisionRead:
    row = await service.cards.answer_supervision(session, principal, item_id, body.answer)
    return SupervisionRead.model_validate(row, from_attributes=True)
