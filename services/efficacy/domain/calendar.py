"""Loading a year of the working-day calendar (办事工作日) from the State Council's notice."""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from shared.errors import FieldError
from shared.workdays import WorkCalendar, WorkdayCount, WorkdayResult, YearTable

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
    holidays `holidays` computes (shared.workdays.statutory_table), flagged as assumed."""
    return IndexedCalendar({t.year: t for t in tables}, use_library=False)


class IndexedCalendar(WorkCalendar):
    """The same answers as `WorkCalendar`, in constant time inside [first_year, last_year]: a running count of
    working days per day turns "working days between" into a subtraction and "add working days" into a binary
    search. Evaluating 100,000 open clocks every few seconds needs that; outside the span it counts day by day."""

    def __init__(self, overrides: Mapping[int, YearTable] | None = None, *, use_library: bool = True,
                 first_year: int = 2000, last_year: int = 2060, **kw: Any) -> None:
        super().__init__(overrides, use_library=use_library, **kw)
        self._origin = date(first_year, 1, 1)
        self._end = date(last_year, 12, 31)
        count, running = [], 0
        d = self._origin
        while d <= self._end:
            running += super().is_workday(d)
            count.append(running)  # working days in [origin, d]
            d += timedelta(days=1)
        self._count = count
        self._unknown = frozenset(y for y in range(first_year, last_year + 1) if not self.known(y))

    def _inside(self, *days: date) -> bool:
        return all(self._origin <= d <= self._end for d in days)

    def _idx(self, d: date) -> int:
        return (d - self._origin).days

    def _assumed(self, lo: date, hi: date) -> frozenset[int]:
        """Unknown years among the days in [lo, hi]."""
        return frozenset(y for y in range(lo.year, hi.year + 1) if y in self._unknown) if lo <= hi else frozenset()

    def workdays_between(self, start: date, end: date) -> WorkdayCount:
        if not self._inside(start, end):
            return super().workdays_between(start, end)
        lo, hi, sign = (start, end, 1) if start <= end else (end, start, -1)
        n = self._count[self._idx(hi)] - self._count[self._idx(lo)]
        return WorkdayCount(sign * n, self._assumed(lo + timedelta(days=1), hi))

    def add_workdays(self, start: date, days: int) -> WorkdayResult:
        if not self._inside(start) or self._end - start < timedelta(days=3 * max(days, 0) + 30):
            return super().add_workdays(start, days)
        i = self._idx(start)
        if days <= 0:
            before = self._count[i - 1] if i > 0 else 0
            j = bisect_left(self._count, before + 1, lo=i)
            end = self._origin + timedelta(days=j)
            return WorkdayResult(end, self._assumed(start, end))
        j = bisect_left(self._count, self._count[i] + days, lo=i + 1)
        end = self._origin + timedelta(days=j)
        return WorkdayResult(end, self._assumed(start + timedelta(days=1), end))
