"""办事工作日: the working-day calendar, its yearly load, and day-by-day answers."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, ValidationError

from services.efficacy import service
from services.efficacy.domain.calendar import YearLoad, parse_csv
from shared.auth import ADMIN, Principal, require_roles
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.errors import FieldError, ValidationProblem, invalid
from shared.http_errors import problem_responses

router = APIRouter(prefix="/calendar", tags=["calendar"])


class DayKind(StrEnum):
    workday = "workday"
    weekend = "weekend"
    holiday = "holiday"
    adjusted_workday = "adjusted_workday"


class CalendarYearLoad(BaseModel):
    """One year from the State Council's notice: holidays and adjusted working weekends (调休)."""

    holidays: list[BoundedDate] = Field(description="Days off (statutory holidays, including their weekend days).")
    workdays: list[BoundedDate] = Field(description="Weekend days that are working days (调休).")
    source: str = Field(min_length=1, max_length=200, description="Where the table comes from.")

    model_config = {"json_schema_extra": {"examples": [{
        "holidays": ["2027-01-01", "2027-02-05", "2027-02-08"],
        "workdays": ["2027-02-07"],
        "source": "国务院办公厅关于2027年部分节假日安排的通知",
    }]}}


class CalendarYearRead(BaseModel):
    year: int
    holidays: list[date]
    workdays: list[date]
    source: str


class DayRead(BaseModel):
    date: date
    workday: bool
    kind: DayKind = Field(description="`workday`, `weekend`, `holiday` or `adjusted_workday` (调休).")
    assumed: bool = Field(description="True when the year has no table and Monday–Friday was assumed.")


class WorkdaysRead(BaseModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    workdays: int = Field(description="Working days in [from, to].")
    assumed: bool
    assumed_years: list[int] = Field(description="Years counted as Monday–Friday for lack of a table.")
    days: list[DayRead]


@router.put(
    "/{year}",
    summary="Load a year's working-day table (admin)",
    description="JSON `{holidays, workdays, source}` or `text/csv` lines `date,kind` (kind `holiday`/`workday`; "
                "then `?source=` names the notice). A 调休 working day must be a weekend day; every date must be "
                "in the year. Replaces the year's table and reloads the calendar; every open clock counted through the "
                "year (perhaps on the estimate of statutory holidays) is counted again and its cards re-evaluated.",
    response_model=CalendarYearRead,
    responses=problem_responses(401, 403, 422),
    openapi_extra={"requestBody": {"content": {
        # The body is read raw (JSON or CSV), so its schema is given here, whole (FastAPI registers no component).
        "application/json": {"schema": CalendarYearLoad.model_json_schema()},
        "text/csv": {"schema": {"type": "string"}, "example": "date,kind\n2027-01-01,holiday\n2027-02-07,workday\n"},
    }, "required": True}},
)
async def load_year(
    request: Request,
    session: SessionDep,
    year: Annotated[int, Path(ge=1949, le=2200, openapi_examples={"2027": {"summary": "The year the examples load",
                                                                          "value": 2027}})],
    source: Annotated[str | None, Query(max_length=200, description="Source, for CSV bodies.")] = None,
    principal: Principal = require_roles(ADMIN),
) -> CalendarYearRead:
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if "csv" in ctype:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise invalid("body", "encoding", "The CSV must be UTF-8.") from exc
        load, errors = parse_csv(text)
        if errors:
            raise ValidationProblem(errors)
        src = source or "csv upload"
    else:
        try:
            body = CalendarYearLoad.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise ValidationProblem([
                FieldError(field=".".join(["body", *map(str, e["loc"])]), rule=e["type"], message=e["msg"])
                for e in exc.errors()
            ]) from exc
        load, src = YearLoad(frozenset(body.holidays), frozenset(body.workdays)), body.source
    await service.calendar.load_year(session, principal, year, load, src)
    return CalendarYearRead(year=year, holidays=sorted(load.holidays), workdays=sorted(load.workdays), source=src)


@router.get(
    "/workdays",
    summary="Working days between two dates (public)",
    description="Each day with whether it is a working day, the count, and `assumed` with the years that had no "
                "official table and were counted with the statutory holidays the `holidays` package computes "
                "(no 调休 working weekends until the notice is loaded).",
    response_model=WorkdaysRead,
    response_model_by_alias=True,
    responses=problem_responses(422),
)
async def workdays(
    session: SessionDep,
    start: Annotated[BoundedDate, Query(alias="from", description="First day (inclusive).")],
    end: Annotated[BoundedDate, Query(alias="to", description="Last day (inclusive).")],
) -> WorkdaysRead:
    days = await service.calendar.days_between(session, start, end)
    assumed = sorted({d.date.year for d in days if d.assumed})
    return WorkdaysRead(start=start, end=end, workdays=sum(d.workday for d in days), assumed=bool(assumed),
                        assumed_years=assumed,
                        days=[DayRead(date=d.date, workday=d.workday, kind=DayKind(d.kind), assumed=d.assumed)
                              for d in days])
