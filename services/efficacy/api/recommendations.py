"""精准推送: items people also needed, and reminders for certificates about to expire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.efficacy import service
from services.efficacy.domain.calendar import CHINA
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["recommendations"])


class Recommendation(BaseModel):
    item_code: str
    name: str | None
    applicants: int = Field(description="Applicants of the asked item who also applied for this one.")


class RecommendationList(BaseModel):
    item: str
    also_needed: list[Recommendation]


class Reminder(BaseModel):
    certificate_number: str
    type_code: str
    type_name: str | None
    valid_until: date
    days_left: int = Field(description="Negative once expired.")


@router.get("/recommendations", summary="“You may also need”: items applied for together (public)",
            response_model=RecommendationList, responses=problem_responses(422))
async def recommendations(
    session: SessionDep,
    item: Annotated[str, Query(min_length=1, max_length=80)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> RecommendationList:
    return RecommendationList(item=item, also_needed=[
        Recommendation(item_code=code, name=name, applicants=n)
        for code, name, n in await service.reports.also_needed(session, item, limit)])


@router.get("/me/reminders", summary="My certificates about to expire", response_model=list[Reminder],
            responses=problem_responses(401))
async def reminders(session: SessionDep, principal: CurrentPrincipal) -> list[Reminder]:
    rows = await service.reports.expiring_certificates(session, principal)
    today = datetime.now(CHINA).date()
    return [Reminder(certificate_number=r.certificate_number, type_code=r.type_code, type_name=r.type_name,
                     valid_until=r.valid_until, days_left=(r.valid_until - today).days) for r in rows]
