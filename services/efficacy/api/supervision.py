"""红黄牌 and 督办: card forecasts, evaluation, raised cards and the supervision queue."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.efficacy.api.access import department_of, is_overseer
from services.efficacy.api.clocks import as_instant
from services.efficacy.casework import current_config, evaluate, forecast, policy_of
from services.efficacy.domain.calendar import CHINA
from services.efficacy.store import cases, supervision
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import supervision_item
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
from shared.errors import Conflict, Forbidden, NotFound
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate

router = APIRouter(tags=["supervision"])


class Colour(StrEnum):
    yellow = "yellow"
    red = "red"


class CardForecast(BaseModel):
    application_id: str
    task_id: str | None
    department: str | None
    colour: Colour
    reason: str = Field(description="`near_deadline`, `promised_limit_exceeded` or `statutory_limit_exceeded`.")
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
    reason: str
    deadline_at: datetime
    raised_at: datetime
    cleared_at: datetime | None


class Evaluation(BaseModel):
    as_of: datetime
    raised: list[CardRead]


class SupervisionRead(BaseModel):
    id: int
    kind: str = Field(description="`yellow_card`, `red_card` (a 督办 case), `bad_rating` (整改), `repeated_application`, `material_asked_again`, `complaint_overdue`, `rectification_overdue` or `data_access_anomaly` (安全监控: unusual reading of personal data, for the data office).")
    is_case: bool = Field(description="A supervision case (督办) the department must answer.")
    card_id: str | None
    application_id: str | None
    department: str | None
    detail: str
    state: str = Field(description="`open`, `answered` or `cleared` (the case moved on).")
    opened_at: datetime
    answer: str | None
    answered_at: datetime | None


class AnswerCreate(BaseModel):
    answer: str = Field(min_length=2, max_length=4000, description="What the department did and why.")

    model_config = {"json_schema_extra": {"examples": [{"answer": "专家评审延误，已于今日办结并电话告知申请人。"}]}}


def _scope(p: Principal) -> str | None:
    """None = everything (supervisors); else the department whose cards and queue the principal sees."""
    if is_overseer(p):
        return None
    dept = department_of(p)
    if dept is None:
        raise Forbidden("Supervisors see all cards; a department's staff see their own.")
    return dept


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
    scope = _scope(principal)
    day = as_of or datetime.now(CHINA).date()
    at = datetime.combine(day, time(12, 0), CHINA)
    cal = await current_calendar(session)
    out: list[CardForecast] = []
    async for batch in cases.running_clocks(session, day):
        for f in forecast(batch, cal, at, policy_of(current_config())):
            s, v, d = f.view.state, f.view, f.decision
            if colour and d.colour != colour or scope and s.department != scope or department and s.department != department:
                continue
            out.append(CardForecast(application_id=s.application_id, task_id=s.task_id, department=s.department,
                                    colour=Colour(d.colour), reason=d.reason, deadline_on=v.deadline_on,
                                    statutory_deadline_on=v.statutory_deadline_on,
                                    remaining_workdays=v.remaining_workdays, assumed_years=sorted(v.assumed_years)))
    return CardForecastList(as_of=day, items=out)


@router.post(
    "/cards/evaluation",
    summary="Raise the cards due at an instant (supervisor, admin)",
    description="What the background job does every few seconds, at a chosen instant: each threshold crossing "
                "raises one card (row, event, queue row, webhook), however often it is evaluated.",
    response_model=Evaluation,
    responses=problem_responses(401, 403, 422),
)
async def run_evaluation(
    session: SessionDep,
    as_of: Annotated[BoundedInstant | None, Query(description="Instant (default now); naive = Asia/Shanghai.")] = None,
    _: Principal = require_roles(SUPERVISOR, ADMIN),
) -> Evaluation:
    at = as_instant(as_of)
    raised = await evaluate(session, await current_calendar(session), at, current_config())
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
    scope = _scope(principal)
    rows = await supervision.list_cards(session, colour=colour.value if colour else None,
                                        application_id=application_id, open_only=open_only, department=scope)
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
    state: Annotated[str | None, Query(pattern="^(open|answered|cleared)$")] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
    application_id: Annotated[str | None, Query(max_length=64, description="The items of one case.")] = None,
) -> Page[SupervisionRead]:
    scope = _scope(principal)
    q = supervision.items_query(department=scope or department, state=state, kind=kind,
                                application_id=application_id)
    ids, cursor = await paginate(session, q, key_columns=[supervision_item.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    rows = await supervision.items_by_id(session, ids)
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
    item = await supervision.get_item(session, item_id)
    if item is None:
        raise NotFound("No such supervision item.")
    if not is_overseer(principal) and department_of(principal) != item.department:
        raise Forbidden("Only the department concerned answers its supervision items.")
    if item.state == "answered":
        raise Conflict("This item has been answered already.", slug="already-answered")
    await supervision.answer_item(session, item_id, answer=body.answer, by=principal.subject)
    return SupervisionRead.model_validate(await supervision.get_item(session, item_id), from_attributes=True)
