"""办事工作日: loading a year's official table (and counting every clock through that year again), and answering
day by day whether a date is a working day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.calendar import YearLoad, day_kind, validate_year
from services.efficacy.service.clocks import calendar_loaded
from services.efficacy.service.settings import current_config
from services.efficacy.store import calendar as calendar_store
from shared.errors import ValidationProblem, invalid
from shared.principal import Principal

MAX_RANGE_DAYS = 1100


async def load_year(session: AsyncSession, principal: Principal, year: int, load: YearLoad, source: str) -> None:
    """Replace a year's table (the route admits admins) and count again every open clock and due date counted
    through the year (perhaps on an estimate of its statutory holidays)."""
    errors = validate_year(year, load)
    if errors:
        raise ValidationProblem(errors)
    await calendar_store.save_year(session, year, load.holidays, load.workdays, source, principal.subject)
    await calendar_loaded(session, year, current_config(), holidays=load.holidays, workdays=load.workdays,
                          source=source)


@dataclass(frozen=True)
class Day:
    date: date
    workday: bool
    kind: str
    assumed: bool


async def days_between(session: AsyncSession, start: date, end: date) -> list[Day]:
    """Each day of [start, end] with whether it is a working day, and `assumed` where the year had no table."""
    if end < start:
        raise invalid("query.to", "order", "`to` must not be before `from`.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise invalid("query.to", "max_range", f"At most {MAX_RANGE_DAYS} days per request.")
    cal = await calendar_store.current_calendar(session)
    days: list[Day] = []
    d = start
    while d <= end:
        known = cal.known(d.year)
        days.append(Day(d, cal.is_workday(d), day_kind(cal, d), not known))
        d += timedelta(days=1)
    return days
