"""The calendar table and the in-process working-day calendar built from it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.calendar import build_calendar
from services.efficacy.store.tables import calendar_year
from shared.messaging import insert_ignore
from shared.types import utcnow
from shared.workdays import WorkCalendar, YearTable, library_table

#: The years the library is asked about when seeding (it knows 2004–2026 in 1.11; later years seed themselves
#: when a newer library knows them).
SEED_YEARS = range(2004, 2031)


async def seed_from_library(session: AsyncSession) -> int:
    """Insert the library's table for every year it knows and we do not have (an admin's load wins)."""
    n = 0
    for year in SEED_YEARS:
        t = library_table(year)
        if t is None:
            continue
        res = await session.execute(insert_ignore(session, calendar_year).values(
            year=year, holidays=sorted(d.isoformat() for d in t.holidays),
            workdays=sorted(d.isoformat() for d in t.workdays), source=t.source, loaded_at=utcnow(),
        ))
        n += res.rowcount or 0
    return n


async def year_tables(session: AsyncSession) -> list[YearTable]:
    rows = (await session.execute(select(calendar_year).order_by(calendar_year.c.year))).all()
    return [
        YearTable(r.year, frozenset(date.fromisoformat(d) for d in r.holidays),
                  frozenset(date.fromisoformat(d) for d in r.workdays), r.source)
        for r in rows
    ]


async def save_year(
    session: AsyncSession, year: int, holidays: frozenset[date], workdays: frozenset[date], source: str, by: str
) -> None:
    values = dict(holidays=sorted(d.isoformat() for d in holidays), workdays=sorted(d.isoformat() for d in workdays),
                  source=source, loaded_at=utcnow(), loaded_by=by)
    existing = (await session.execute(select(calendar_year.c.year).where(calendar_year.c.year == year))).first()
    if existing:
        await session.execute(calendar_year.update().where(calendar_year.c.year == year).values(**values))
    else:
        await session.execute(calendar_year.insert().values(year=year, **values))


class CalendarHolder:
    """The calendar of one database, rebuilt from its table after a load (and periodically, for replicas)."""

    def __init__(self) -> None:
        self.calendar: WorkCalendar | None = None
        self._tables: list[YearTable] = []

    async def reload(self, session: AsyncSession) -> WorkCalendar:
        tables = await year_tables(session)
        # The same tables make the same calendar: the one held is kept with what it has looked up (a year without
        # a table is estimated by the `holidays` package, which is slow), as the card evaluator reloads often.
        if self.calendar is None or tables != self._tables:
            self.calendar, self._tables = build_calendar(tables), tables
        return self.calendar

    async def get(self, session: AsyncSession) -> WorkCalendar:
        return self.calendar if self.calendar is not None else await self.reload(session)


_holders: dict[str, CalendarHolder] = {}


def holder_for(session: AsyncSession) -> CalendarHolder:
    """One holder per database (the handlers get only a session; tests run several apps in one process)."""
    key = str(session.bind.url) if session.bind is not None else ""
    return _holders.setdefault(key, CalendarHolder())


async def current_calendar(session: AsyncSession) -> WorkCalendar:
    return await holder_for(session).get(session)
