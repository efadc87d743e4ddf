"""The working-day calendar every due date counts with: the library's tables overridden by the years efficacy
loaded (the State Council's notices), kept in the database so every replica counts alike."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain.process import recounted_due_at
from services.workflow.store import repository as repo
from services.workflow.store.tables import CalendarYear
from shared.workdays import WorkCalendar, YearTable


class _Current:
    """The calendar this process counts with; replaced whole when a year's table arrives."""

    calendar: WorkCalendar = WorkCalendar()


_current = _Current()


def current() -> WorkCalendar:
    return _current.calendar


def calendar_of(rows: list[CalendarYear]) -> WorkCalendar:
    """The library's tables, overridden by the years efficacy loaded (the State Council's notices)."""
    return WorkCalendar().with_tables(
        YearTable(r.year, frozenset(date.fromisoformat(d) for d in r.holidays),
                  frozenset(date.fromisoformat(d) for d in r.workdays), r.source) for r in rows)


async def reload_calendar(session: AsyncSession) -> None:
    """Every replica counts with the tables in the database (a load reaches one replica's consumer)."""
    _current.calendar = calendar_of(list(await repo.calendar_years(session)))


async def calendar_loaded(session: AsyncSession, *, year: int, holidays: list[str], workdays: list[str], source: str,
                          loaded_at: datetime) -> int:
    """A year's official table arrived: keep it, count with it, and count again the due dates of open tasks
    that reach into that year (they were counted on the estimate, or on an older table). Returns how many
    due dates moved."""
    old = _current.calendar
    await repo.save_calendar_year(session, year=year, holidays=holidays, workdays=workdays, source=source,
                                  loaded_at=loaded_at)
    _current.calendar = new = calendar_of(list(await repo.calendar_years(session)))
    moved = 0
    for task, stage, instance in await repo.open_tasks_due_from(session, datetime(year, 1, 1, tzinfo=UTC)):
        anchor = instance.accepted_at if stage.step_index == 0 else task.assigned_at
        if anchor.astimezone(UTC).year > year:
            continue
        due = recounted_due_at(task.due_at, anchor, old, new)
        if due != task.due_at:
            task.due_at = due
            moved += 1
    await session.flush()
    return moved
