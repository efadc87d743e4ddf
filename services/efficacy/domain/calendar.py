"""Loading a year of the working-day calendar (办事工作日) from the State Council's notice."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from shared.errors import FieldError
from shared.workdays import WorkCalendar, YearTable

#: China keeps one offset all year; working days are counted on the local date.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

HOLIDAY_WORDS = {"holiday", "休", "假", "off"}
WORKDAY_WORDS = {"workday", "班", "work", "调休"}


def local_day(instant: datetime) -> date:
    return instant.astimezone(CHINA).date()


@dataclass(frozen=True)
class YearLoad:
    holidays: frozenset[date]
    workdays: frozenset[date]


def parse_csv(text: str) -> tuple[YearLoad, list[FieldError]]:
    """`date,kind` lines (kind `holiday`/`休` or `workday`/`班`); a header line is allowed."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    errors: list[FieldError] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if n == 1 and row[0].strip().lower() == "date":
            continue
        field = f"body.line{n}"
        if len(row) < 2:
            errors.append(FieldError(field=field, rule="columns", message="Expected `date,kind`."))
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            errors.append(FieldError(field=field, rule="date", message=f"{row[0]!r} is not a YYYY-MM-DD date."))
            continue
        kind = row[1].strip().lower()
        if kind in HOLIDAY_WORDS:
            holidays.add(day)
        elif kind in WORKDAY_WORDS:
            workdays.add(day)
        else:
            errors.append(FieldError(field=field, rule="kind", message="kind must be `holiday` or `workday`."))
    return YearLoad(frozenset(holidays), frozenset(workdays)), errors


def validate_year(year: int, load: YearLoad) -> list[FieldError]:
    """A 调休 working day must be a weekend day of the year; a holiday must fall in the year; no day is both."""
    errors: list[FieldError] = []
    for d in sorted(load.holidays):
        if d.year != year:
            errors.append(FieldError(field="body.holidays", rule="within_year",
                                     message=f"{d} is not in {year}."))
    for d in sorted(load.workdays):
        if d.year != year:
            errors.append(FieldError(field="body.workdays", rule="within_year",
                                     message=f"{d} is not in {year}."))
        elif d.weekday() < 5:
            errors.append(FieldError(field="body.workdays", rule="weekend",
                                     message=f"{d} is a weekday; an adjusted working day (调休) must be a weekend day."))
    for d in sorted(load.holidays & load.workdays):
        errors.append(FieldError(field="body.workdays", rule="conflict",
                                 message=f"{d} is listed both as a holiday and as a working day."))
    return errors


def day_kind(calendar: WorkCalendar, day: date) -> str:
    """`workday`, `weekend`, `holiday` or `adjusted_workday` (调休); in a year without an official table, the
    statutory holidays the fallback computes are holidays too (and the answer says `assumed`)."""
    table = calendar.day_table(day.year)
    if table is not None:
        if day in table.workdays:
            return "adjusted_workday"
        if day in table.holidays:
            return "holiday"
    return "workday" if day.weekday() < 5 else "weekend"


def build_calendar(tables: list[YearTable]) -> WorkCalendar:
    """Our table is the source of truth (seeded from the library); years it lacks are counted with the statutory
    holidays `holidays` computes (shared.workdays.statutory_table), flagged as assumed. The shared calendar
    indexes the tables itself, so every count costs a few lookups for any year."""
    return WorkCalendar({t.year: t for t in tables}, use_library=False)
